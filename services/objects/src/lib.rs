//! # yws-objects
//!
//! Documents in object storage — Amazon S3 (and S3-compatible servers), Google Cloud Storage,
//! Azure Blob Storage or a directory — through the Apache Arrow `object_store` crate. Redis
//! holds the hot set; a room's snapshots (and, for history, its archived log segments) live
//! here as immutable objects. This crate is the storage layer only: which object is current
//! is recorded in Redis by its callers.
//!
//! ## Layout
//! - [`config`]: [`StorageConfig`], the `[storage]` section; [`StorageLocation`], where its
//!   URL points; [`StorageEnv`], the `AWS_*` / `GOOGLE_*` / `AZURE_*` variables (redacted).
//! - [`layout`]: object names — `<prefix>/rooms/<shard>/<room>/snap/<epoch>-<covered>.bin`
//!   and `…/log/<last>_<first>.bin`; [`LogId`], [`SnapshotId`], [`SegmentId`]. Pure.
//! - [`format`](mod@format): the versioned object format (header with magic, version, room, epoch,
//!   covered log ids, write time, checksums; then the payload). Pure, property-tested.
//! - [`storage`]: [`ObjectStorage`] — write-once puts, reads by name, latest snapshot,
//!   segments in a range, deletion of a room.
//! - `io` (private): each store call timed, bounded by a deadline, counted; multipart
//!   uploads for large objects.
//! - `backend` (private): the `object_store` client for a URL, fed from [`StorageEnv`].
//! - [`metrics`]: [`StorageMetrics`], `yws_storage_…`.
//! - [`error`]: the crate's one error type, [`StorageError`] (and [`Corruption`], why an
//!   object does not decode).
//! - `testing` (feature `test-server`): a real S3-protocol server process (`s3s-fs`) on a
//!   free loopback port, for tests.
//!
//! ## Durability and crashes
//! A put returns once the object is stored (S3/GCS/Azure acknowledge durable writes; a
//! directory is written to a staging file, fsync'd and renamed). Objects are write-once: a
//! put never replaces an existing object with different content. A SIGKILL can leave
//! objects that nothing in Redis names yet (orphans) and, for multipart uploads, unfinished
//! uploads; `docs/storage.md` says how they are cleaned.

pub mod config;
pub mod error;
pub mod format;
pub mod layout;
pub mod metrics;
pub mod storage;

mod backend;
mod io;

#[cfg(feature = "test-server")]
pub mod testing;

pub use config::{StorageConfig, StorageEnv, StorageLocation, ENV};
pub use error::{Corruption, StorageError};
pub use format::{Segment, SegmentEntry, Snapshot};
pub use layout::{LogId, SegmentId, SnapshotId};
pub use metrics::StorageMetrics;
pub use storage::{ObjectStorage, PutOutcome};
