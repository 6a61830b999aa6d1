//! # yws-e2e
//!
//! Helpers for end-to-end tests that run the real binaries: a `yws-gateway` or
//! `yws-compactor` process on a free loopback port, a real `redis-server` (single or a
//! 3-master cluster), and the real npm `y-websocket` client through the scenarios in
//! `tests/interop`. Everything listens on 127.0.0.1 only, and every wait has a timeout.
//!
//! ## Layout
//! - [`process`]: spawning our binaries, reading their logs, signals.
//! - [`redis`]: `redis-server` instances and a local Redis Cluster (which master owns a key).
//! - [`interop`]: running a Node interop scenario (to completion, or in the background while
//!   the test acts on the servers) and reading its JSON verdict.
//! - [`browser`]: running a browser scenario (`tests/browser`: Debian's chromium driven by
//!   npm `playwright-core`) against the gateway's pages; screenshots under
//!   `target/browser-artifacts/`.
//! - [`http`]: a tiny HTTP/1.1 client for probes, metrics and the document API.
//! - [`ws`]: a raw y-websocket client (tokio-tungstenite) for byte-level checks, and a
//!   `Follower` that keeps its own copy of a room's document.
//! - [`wait_until`]: bounded polling for conditions.
//! - [`peer`]: a y-websocket peer with a yrs document (exact state at sync, driving edits).
//! - [`docs`]: yrs documents: an author of exact updates, whole-state comparisons.
//! - [`resp`]: a tiny binary-safe RESP client for reading and writing Redis keys directly.
//! - [`redis_keys`]: a room's Redis keys read and written directly (log, snapshot, meta,
//!   lease, compaction queue).
//! - [`metrics`]: Prometheus samples from `/metrics`, peak RSS from `/proc`.
//! - [`monitor`]: Redis `MONITOR`, every executed command in order (scripts included).
//! - [`leases`]: compactor claims, releases and snapshot writes in a `MONITOR` trace.
// Real processes are polled from plain threads here: `std::thread::sleep` is fine.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods,
    reason = "a panic with a message is a test failure; tests print what they measured; real processes are polled from plain threads, where std::thread::sleep is right"
)]

pub mod browser;
pub mod docs;
pub mod http;
pub mod interop;
pub mod leases;
pub mod metrics;
pub mod monitor;
pub mod peer;
pub mod process;
pub mod redis;
pub mod redis_keys;
pub mod resp;
pub mod ws;

use std::net::TcpListener;
use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root exists")
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// Polls `condition` every 25 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: std::time::Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

/// A room name unique to this test run.
pub fn unique_room(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}
