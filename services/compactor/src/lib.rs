//! # yws-compactor
//!
//! Takes rooms from the compaction queue in Redis, merges each room's snapshot and update log
//! into a new snapshot with yrs, writes it (fenced), and trims the log. Run one replica or
//! ten: a room is compacted by one replica at a time (a lease), a replica that dies mid-task
//! has its task taken over once its lease expires, and a write by a replica that lost its
//! lease is refused.
//!
//! ## Layout
//! - [`config`]: `[compactor]`, `[admin]`, `[redis]`, `[log]`.
//! - [`merge`]: the pure part — snapshot + entries → merged state (yrs, GC on by default); an
//!   entry that makes yrs panic is quarantined and the state rebuilt without it.
//! - [`task`]: one compaction task — one room, step by step — with the test-only fault points
//!   of [`fault`].
//! - [`stored`]: with `storage.url`, snapshots written to object storage first, then recorded
//!   in Redis; where a compaction starts when Redis lost a room's snapshot.
//! - [`worker`]: the polling loop, queue metrics, the sweep for unqueued logs.
//! - [`metrics`]: compactor metrics.

pub mod config;
pub mod fault;
pub mod merge;
pub mod metrics;
pub mod stored;
pub mod task;
pub mod worker;
