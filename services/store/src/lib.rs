//! # yws-store
//!
//! Durable documents for a standalone gateway (`YPERSISTENCE=DIR`): [`StoreBackend`] is a
//! [`yws_core::RoomBackend`] over an embedded database file, `DIR/yws-store.redb`.
//!
//! ## Layout
//! - [`config`]: [`StoreConfig`], the `[persistence]` section, and its environment name.
//! - `schema` (private): the tables and every transaction on them — synchronous, run on
//!   blocking threads.
//! - `writer` (private): the single writer; group commit of appends, deletions and snapshots.
//! - `snapshotter` (private): compaction in the background, a room's updates merged into one
//!   snapshot.
//! - `tracking` (private): per-room counters in memory (queued updates, log size).
//! - [`backend`]: [`StoreBackend`], tying them together behind `RoomBackend`.
//! - [`metrics`]: Prometheus metrics, [`StoreMetrics`].
//! - [`error`]: the crate's one error type, [`StoreError`].
//!
//! ## Why redb
//! [redb](https://www.redb.org) is a pure-Rust, single-file embedded key-value store with
//! ACID transactions, a stable file format (1.0 since 2023, kept compatible since), no
//! mandatory dependencies and no threads of its own — so every task of ours stays owned and
//! cancellable. Its copy-on-write B-trees give MVCC: a room loads, or a compaction reads, from
//! a consistent snapshot while the writer commits. Freed pages are reused, so compaction keeps
//! the file from growing without bound. An LSM store such as fjall writes small entries more
//! cheaply, but our group commit already turns many small appends into one transaction, and
//! fjall brings background flush and compaction threads, more files per store and a format that
//! changed with each major version. One write transaction at a time suits our single writer.
//!
//! ## Data model
//! Per room: an append-only list of updates keyed `(room, seq)` — contiguous per room, any
//! UTF-8 name — and at most one snapshot, the merged state up to some `seq`. A room's state is
//! its snapshot plus the updates after it. `seq` comes from one store-wide counter and is never
//! reused, which lets a compaction delete exactly what it merged.
//!
//! ## Durability: what a crash can lose
//! [`RoomBackend::append`](yws_core::RoomBackend::append) returns once the update is in the
//! writer's bounded queue — *before* it is on disk; the gateway then applies and broadcasts it.
//! The writer commits (one fsync'd transaction per batch) at most `commit_interval_ms`
//! (default 50, at most 100) after the oldest update of a batch was accepted, or earlier when
//! the batch reaches `max_batch_bytes`. Therefore:
//!
//! - **SIGTERM / orderly shutdown loses nothing**: `Rooms::close_all` → [`StoreBackend::shutdown`]
//!   commits everything queued before the process exits.
//! - **SIGKILL, a panic abort or power loss** loses the updates accepted but not yet committed:
//!   those accepted within the last `commit_interval_ms` plus the duration of the commit in
//!   progress (typically a few milliseconds of fsync). Under sustained overload the queue fills
//!   and appends wait, so the loss is also bounded by `queue_capacity` updates. Clients that
//!   were connected still hold those changes and send them again when they reconnect (sync
//!   step 1/2), so in practice a change is lost only if every client that had it is gone too.
//! - A commit is atomic: after a crash the store holds a prefix of the accepted updates of each
//!   room, never a torn entry.
//!
//! ## Compaction
//! See `snapshotter`: a room with `compact_after_updates` updates (or `compact_after_bytes`
//! bytes) since its snapshot gets a new snapshot in the background; appends continue meanwhile
//! and are never lost. Unreadable entries are skipped with a warning and counted
//! (`yws_store_entries_skipped_total`) — while loading they never make a room unloadable.

pub mod backend;
pub mod config;
pub mod error;
pub mod metrics;

mod schema;
mod snapshotter;
mod tracking;
mod writer;

pub use backend::StoreBackend;
pub use config::StoreConfig;
pub use error::StoreError;
pub use metrics::StoreMetrics;

#[cfg(test)]
mod tests;
