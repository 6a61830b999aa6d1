//! # yws-redis
//!
//! Rooms shared between gateways through Redis — a single server or a Redis Cluster.
//!
//! ## Layout
//! - [`config`]: the `[redis]` section (`REDIS_URL`, `REDIS_CLUSTER_NODES`, `YWS_REDIS_PREFIX`).
//! - [`keys`]: the key layout; every room key carries the room in one hash tag.
//! - [`entry`]: stream ids and the live (pub/sub) message format; property-tested, and fuzzed
//!   with `fuzz/` (`cargo +nightly fuzz run live_message`, findings kept in `fuzz/regressions`).
//! - [`awareness`]: the awareness hash value format (`clock ms node state`).
//! - [`scripts`]: the Lua scripts (append, load, awareness, …); each touches one slot.
//! - [`op`]: [`Op`], every kind of Redis call with its metric label and its timeout.
//! - [`client`]: [`Redis`], the deadpool-redis pool with a timeout and metrics around every call.
//! - [`pool`]: connections recycled without a `PING` per checkout.
//! - [`error`]: [`Error`], the crate's one error type; it becomes a
//!   [`BackendError`](yws_core::BackendError) at the `RoomBackend` edge.
//! - [`reader`]: reading a room's snapshot and log consistently (loading, catching up).
//! - [`backend`]: [`RedisBackend`], the gateway's `RoomBackend` for cluster mode.
//! - [`queue`]: the compaction queue: when gateways queue a room, what the compactor takes, the
//!   sweep for logs without a task.
//! - [`sentinel`]: Redis Sentinel: where the primary is now.
//! - [`fencing`]: a room under a compactor's lease: fenced snapshot writes and log trims.
//! - [`stored`]: snapshots in object storage, the Redis side: recording the current object,
//!   seeding a room that loads cold.
//! - [`metrics`]: Redis client metrics.
//! - `feed` (private): live delivery of other nodes' changes, with gap detection.
//! - `pubsub` (private): the pub/sub connection and the subscription rules.
//! - `directory` (private): room existence, deletion, presence listings, callback claims.
//! - `fault` (private): test-only fault points (`YWS_REDIS_FAULT`).
//! - `watchdog` (private): the convergence watchdog, which catches up rooms left behind their
//!   log whatever the cause.

pub mod awareness;
pub mod backend;
pub mod client;
pub mod config;
pub mod entry;
pub mod error;
mod fault;
pub mod fencing;
pub mod keys;
pub mod metrics;
pub mod op;
pub mod pool;
pub mod queue;
pub mod reader;
pub mod scripts;
pub mod sentinel;
pub mod stored;

mod directory;
mod feed;
mod pubsub;
mod watchdog;

pub use directory::PRESENCE_TTL_MS;

pub use backend::RedisBackend;

/// Installs the TLS provider used for `rediss://` (rustls with ring). Call once at startup,
/// before connecting; calling it again is harmless.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
pub use client::Redis;
pub use config::RedisConfig;
pub use error::Error;
pub use metrics::RedisMetrics;
pub use op::Op;
