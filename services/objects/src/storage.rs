//! [`ObjectStorage`]: snapshots and log segments of rooms in object storage — write-once
//! puts, reads by name, listings by room, deletion of a room.

use crate::backend;
use crate::config::{redact_url, StorageConfig, StorageEnv, StorageLocation};
use crate::error::{Corruption, StorageError};
use crate::format::{self, Encoded, Header, Segment, Snapshot};
use crate::io::{Io, Multipart};
use crate::layout::{Layout, LogId, SegmentId, SnapshotId};
use crate::metrics::StorageMetrics;
use bytes::Bytes;
use object_store::path::Path;
use std::sync::Arc;

/// What a write-once put found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The object was written.
    Written {
        /// Its size in bytes.
        bytes: u64,
    },
    /// An object with the same content was already there (an earlier attempt succeeded).
    AlreadyPresent,
}

/// Rooms' objects in one bucket (or directory). Cheap to clone.
#[derive(Debug, Clone)]
pub struct ObjectStorage {
    io: Io,
    layout: Layout,
    location: Arc<StorageLocation>,
    url: Arc<str>,
}

impl ObjectStorage {
    /// Opens the store `config.url` points to, with credentials from `env`. Checks nothing
    /// over the network (see [`ObjectStorage::probe`]); warns about cloud variables that have
    /// no effect.
    pub fn open(
        config: &StorageConfig,
        env: &StorageEnv,
        metrics: StorageMetrics,
    ) -> Result<Self, StorageError> {
        let (store, location) = backend::build(config, env)?;
        let ignored = backend::ignored_env(&location, env);
        if !ignored.is_empty() {
            tracing::warn!(
                variables = ?ignored,
                "these environment variables are not used by object storage (credentials come from keys, web identity, container or instance metadata — not from profiles)"
            );
        }
        let layout = Layout::new(location.prefix())?;
        let ordered_listing = !matches!(location, StorageLocation::Dir { .. });
        Ok(ObjectStorage {
            io: Io {
                store,
                metrics,
                deadline: config.call_deadline(),
                multipart: Multipart {
                    threshold: config.multipart_threshold_bytes,
                    part: config.multipart_part_bytes,
                    concurrency: config.multipart_concurrency,
                },
                ordered_listing,
            },
            layout,
            location: Arc::new(location),
            url: redact_url(config.url.as_deref().unwrap_or_default()).into(),
        })
    }

    /// The storage URL, for logs.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the URL points.
    pub fn location(&self) -> &StorageLocation {
        &self.location
    }

    /// The object layout (names of a room's objects).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The underlying store, for tools and tests. Writes through it bypass the write-once
    /// checks and the object format: use the methods of [`ObjectStorage`] instead.
    pub fn raw_store(&self) -> Arc<dyn object_store::ObjectStore> {
        Arc::clone(&self.io.store)
    }

    /// The metrics this storage reports to.
    pub fn metrics(&self) -> &StorageMetrics {
        &self.io.metrics
    }

    /// Checks that the store answers (one metadata request for an object that need not
    /// exist): for readiness checks.
    pub async fn probe(&self) -> Result<(), StorageError> {
        match self.io.head(&self.layout.rooms().join(".probe")).await {
            Ok(_) | Err(StorageError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Writes a snapshot, once: if its object exists with the same content the put succeeds
    /// as [`PutOutcome::AlreadyPresent`]; with different content it fails with
    /// [`StorageError::Conflict`] and the existing object is left alone.
    pub async fn put_snapshot(&self, snapshot: &Snapshot) -> Result<PutOutcome, StorageError> {
        let path = self.layout.snapshot(&snapshot.room, &snapshot.id())?;
        self.put_once(&path, format::encode_snapshot(snapshot)?)
            .await
    }

    /// Reads one snapshot of `room`; its header must match the name.
    pub async fn get_snapshot(
        &self,
        room: &str,
        id: &SnapshotId,
    ) -> Result<Snapshot, StorageError> {
        let path = self.layout.snapshot(room, id)?;
        let data = self.io.get(&path).await?;
        let snapshot = format::decode_snapshot(&data).map_err(|p| self.corrupt(&path, p))?;
        if snapshot.room != room || snapshot.id() != *id {
            return Err(self.corrupt(
                &path,
                Corruption::Misplaced(format!(
                    "holds room {:?} epoch {} covered {}",
                    snapshot.room, snapshot.epoch, snapshot.covered
                )),
            ));
        }
        Ok(snapshot)
    }

    /// The snapshots of `room`, by epoch (oldest first). Objects with other names in the
    /// room's snapshot directory are skipped.
    pub async fn list_snapshots(&self, room: &str) -> Result<Vec<SnapshotId>, StorageError> {
        let dir = self.layout.snapshot_dir(room)?;
        let mut ids: Vec<SnapshotId> = self
            .io
            .list(&dir, None)
            .await?
            .iter()
            .filter_map(|meta| file_name(&meta.location).and_then(SnapshotId::from_file_name))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The snapshot of `room` with the highest epoch, if any. A corrupt latest snapshot is an
    /// error, never a reason to fall back to an older one (that would lose what it covered).
    pub async fn latest_snapshot(&self, room: &str) -> Result<Option<Snapshot>, StorageError> {
        match self.list_snapshots(room).await?.last() {
            Some(id) => self.get_snapshot(room, id).await.map(Some),
            None => Ok(None),
        }
    }

    /// Deletes one snapshot; a missing one is not an error.
    pub async fn delete_snapshot(&self, room: &str, id: &SnapshotId) -> Result<(), StorageError> {
        let path = self.layout.snapshot(room, id)?;
        self.io.delete(&path, vec![path.clone()]).await.map(|_| ())
    }

    /// Writes a log segment, once (as [`ObjectStorage::put_snapshot`]).
    pub async fn put_segment(&self, segment: &Segment) -> Result<PutOutcome, StorageError> {
        let encoded = format::encode_segment(segment)?;
        let id = segment.id().ok_or_else(|| {
            StorageError::InvalidObject("a segment needs at least one entry".into())
        })?;
        let path = self.layout.segment(&segment.room, &id)?;
        self.put_once(&path, encoded).await
    }

    /// Reads one log segment of `room`; its header must match the name.
    pub async fn get_segment(&self, room: &str, id: &SegmentId) -> Result<Segment, StorageError> {
        let path = self.layout.segment(room, id)?;
        let data = self.io.get(&path).await?;
        let segment = format::decode_segment(&data).map_err(|p| self.corrupt(&path, p))?;
        if segment.room != room || segment.id() != Some(*id) {
            return Err(self.corrupt(
                &path,
                Corruption::Misplaced(format!("holds room {:?}", segment.room)),
            ));
        }
        Ok(segment)
    }

    /// The segments of `room` holding entries with ids in `from..=to`, in log order (by last
    /// id); for a time range use [`LogId::first_at`] and [`LogId::last_at`]. Reads only the listing pages from `from` on, and stops at the first segment that
    /// starts after `to` — segments never nest (each starts after the snapshot current when
    /// it was archived, and that only moves forward), so none after it can hold such entries.
    pub async fn list_segments(
        &self,
        room: &str,
        from: LogId,
        to: LogId,
    ) -> Result<Vec<SegmentId>, StorageError> {
        let dir = self.layout.segment_dir(room)?;
        let offset = self.layout.segments_from(room, from)?;
        let metas = self
            .io
            .list_while(&dir, &offset, |meta| {
                let id = file_name(&meta.location).and_then(SegmentId::from_file_name);
                // Foreign names are passed over (filtered below), never a reason to stop.
                id.is_none_or(|id| id.first <= to)
            })
            .await?;
        Ok(metas
            .iter()
            .filter_map(|meta| file_name(&meta.location).and_then(SegmentId::from_file_name))
            .filter(|id| id.overlaps(from, to))
            .collect())
    }

    /// Deletes every object of `room` (snapshots, segments, anything else in its directory);
    /// returns how many. Deleting a room that has none is not an error.
    pub async fn delete_room(&self, room: &str) -> Result<u64, StorageError> {
        let dir = self.layout.room_dir(room)?;
        let paths: Vec<Path> = self
            .io
            .list(&dir, None)
            .await?
            .into_iter()
            .map(|meta| meta.location)
            .collect();
        self.io.delete(&dir, paths).await
    }

    /// Writes `object` at `path` unless it exists; an existing object with the same content
    /// makes the put a success (a retry of a put whose answer was lost).
    async fn put_once(&self, path: &Path, object: Encoded) -> Result<PutOutcome, StorageError> {
        match self.io.put_new(path, &object).await {
            Ok(()) => Ok(PutOutcome::Written {
                bytes: object.len() as u64,
            }),
            Err(StorageError::Conflict { .. }) => {
                let existing = self.io.get(path).await?;
                if same_content(&existing, &object).map_err(|p| self.corrupt(path, p))? {
                    Ok(PutOutcome::AlreadyPresent)
                } else {
                    Err(StorageError::Conflict {
                        name: path.to_string(),
                    })
                }
            }
            Err(e) => Err(e),
        }
    }

    fn corrupt(&self, path: &Path, problem: Corruption) -> StorageError {
        self.io.metrics.corrupt_objects.inc();
        tracing::warn!(object = %path, %problem, "stored object is unreadable");
        StorageError::Corrupt {
            name: path.to_string(),
            problem,
        }
    }
}

/// Whether an existing object holds what `object` would: the same header apart from the
/// write time, and the same payload bytes.
fn same_content(existing: &Bytes, object: &Encoded) -> Result<bool, Corruption> {
    let (theirs, payload) = format::decode_object(existing)?;
    let (ours, _) = format::decode_header(&object.header)?;
    let identity = |h: &Header| {
        (
            h.kind,
            h.room.clone(),
            h.epoch,
            h.from,
            h.upto,
            h.entries,
            h.payload_len,
            h.payload_crc,
        )
    };
    Ok(identity(&theirs) == identity(&ours) && payload == object.payload)
}

/// The last segment of a path.
fn file_name(path: &Path) -> Option<&str> {
    path.as_ref().rsplit('/').next()
}
