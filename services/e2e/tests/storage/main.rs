//! Object storage (`YWS_STORAGE_URL`) with the real binaries, a real `redis-server` and a real
//! store — an S3-protocol server process (s3s-fs, installed by `scripts/test.sh`) on a
//! loopback port, or a directory (`file://`): compactors write each snapshot as an object
//! before Redis records it, then trim; a compactor killed at each step loses nothing; after
//! `FLUSHALL` (Redis as a cache) every document comes back from storage, loaded once per node
//! however many clients join at once; the document API reads stored rooms; a deleted room's
//! objects are deleted and it never comes back; an unreachable store stops no edits, makes the
//! compactor unready, and nothing is lost when it returns.
// Real processes and Redis are polled from plain threads here: `std::thread::sleep` is fine.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods,
    reason = "a panic with a message is a test failure; tests print what they measured; real processes are polled from plain threads, where std::thread::sleep is right"
)]

mod compaction;
mod eviction;
mod recovery;
mod support;
