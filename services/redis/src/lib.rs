//! # yws-redis
//!
//! Rooms shared between gateways through Redis — a single server or a Redis Cluster.
//!
//! ## Layout
//! - [`config`]: the `[redis]` section (`REDIS_URL`, `REDIS_CLUSTER_NODES`, `YWS_REDIS_PREFIX`).
//! - [`keys`]: the key layout; every room key carries the room in one hash tag.
//! - [`entry`]: stream ids and the live (pub/sub) message format.
//! - [`scripts`]: the Lua scripts (append, load, awareness); each touches one slot.
//! - [`client`]: the deadpool-redis pool with a timeout and metrics around every call.
//! - [`store`]: reading a room's snapshot and log consistently.
//! - [`backend`]: [`RedisBackend`], the gateway's `RoomBackend` for cluster mode.
//! - [`compaction`]: the compaction queue, leases and fenced snapshot writes (the compactor).
//! - [`metrics`]: Redis client metrics.
//! - `feed` (private): live delivery of other nodes' changes, with gap detection.
//! - `pubsub` (private): the pub/sub connection and the subscription rules.
//! - `directory` (private): room existence, deletion, presence listings, callback claims.

pub mod backend;
pub mod client;
pub mod compaction;
pub mod config;
pub mod entry;
pub mod keys;
pub mod metrics;
pub mod scripts;
pub mod store;

mod directory;
mod feed;
mod pubsub;

pub use directory::PRESENCE_TTL_MS;

pub use backend::RedisBackend;

/// Installs the TLS provider used for `rediss://` (rustls with ring). Call once at startup,
/// before connecting; calling it again is harmless.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
pub use client::Redis;
pub use config::RedisConfig;
pub use metrics::RedisMetrics;
