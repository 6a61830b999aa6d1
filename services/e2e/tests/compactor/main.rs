//! `yws-compactor` against a real `redis-server`, real gateways and real clients: merged
//! snapshots are exact and logs are trimmed, late joiners get everything from a snapshot,
//! replicas never hold a room at once, a crash at any step loses nothing and is finished by
//! another replica, joins racing compactions get the complete state, empty logs disappear and
//! come back, a 20 MiB document is compacted in bounded memory, and an update that makes yrs
//! panic is served by no gateway and left out of the snapshot.
//!
//! Rooms are written either through a gateway by [`Peer`]s or straight into the stream
//! ([`RedisKeys::append`]) when a test needs exact control; the source of truth is always a yrs
//! document ([`Author`]) compared with what Redis or a joining client holds.
// Real processes and Redis are polled from plain threads here: `std::thread::sleep` is fine.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods,
    reason = "a panic with a message is a test failure; tests print what they measured; real processes are polled from plain threads, where std::thread::sleep is right"
)]

mod faults;
mod gateways;
mod memory;
mod merge;
mod poison;
mod replicas;
mod support;
