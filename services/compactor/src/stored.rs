//! Snapshots in object storage (`storage.url`): where a compaction starts when Redis lost a
//! room's snapshot, and writing a merged snapshot — the object first, then Redis records it
//! as current (fenced), then the superseded objects are deleted.

use crate::fault::{self, Point};
use bytes::Bytes;
use yws_objects::{LogId, ObjectStorage, Snapshot, SnapshotId, StorageError};
use yws_redis::entry::{now_ms, StreamId};
use yws_redis::fencing::{LeasedRoom, LogCounts, WriteOutcome};
use yws_redis::queue::{Queue, When};
use yws_redis::stored::Evicted;

use crate::task::Context;

/// Why a compaction task failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A Redis call failed.
    #[error(transparent)]
    Redis(#[from] yws_redis::Error),
    /// An object storage call failed.
    #[error("object storage: {0}")]
    Storage(#[from] StorageError),
}

/// Where a compaction starts when Redis holds no snapshot of the room: the newest stored one.
#[derive(Debug)]
pub struct ColdBase {
    /// Its state; `None` for a room deleted since (its objects are stale: only their epoch
    /// counts, so that the next object is newer than any of them).
    pub doc: Option<Bytes>,
    /// The last log id it covers (`0-0` without a state).
    pub upto: StreamId,
    /// Its epoch.
    pub epoch: u64,
    /// Its object.
    pub id: SnapshotId,
}

/// The newest stored snapshot of a room that has none in Redis (after a `FLUSHALL`, or a
/// Redis replaced by an empty one); `None` when nothing is stored. A room deleted since
/// (`generation > 0`) never takes its content back from storage.
pub async fn cold_base(
    storage: &ObjectStorage,
    room: &str,
    generation: u64,
) -> Result<Option<ColdBase>, StorageError> {
    let Some(id) = storage.list_snapshots(room).await?.last().copied() else {
        return Ok(None);
    };
    if generation > 0 {
        return Ok(Some(ColdBase {
            doc: None,
            upto: StreamId::ZERO,
            epoch: id.epoch,
            id,
        }));
    }
    let snapshot = storage.get_snapshot(room, &id).await?;
    Ok(Some(ColdBase {
        doc: Some(snapshot.state),
        upto: stream_id(snapshot.covered),
        epoch: snapshot.epoch,
        id,
    }))
}

/// Records a stored snapshot that Redis does not hold (see [`cold_base`]) as the room's
/// current one, fenced like any write, before the log entries it covers are trimmed: Redis
/// and storage then agree again without writing a new object.
pub async fn adopt(
    room: &LeasedRoom<'_>,
    base: &ColdBase,
    doc: &Bytes,
    epoch_read: u64,
) -> Result<WriteOutcome, TaskError> {
    Ok(room
        .record(
            doc.to_vec(),
            base.upto,
            epoch_read,
            base.epoch,
            &base.id.file_name(),
            LogCounts::default(),
        )
        .await?)
}

/// What [`write()`] needs besides the room.
#[derive(Debug)]
pub struct Merged {
    /// The merged state.
    pub state: Vec<u8>,
    /// The last log id it covers.
    pub upto: StreamId,
    /// The epoch Redis held when the snapshot was read (the fence).
    pub epoch_read: u64,
    /// The highest epoch known, in Redis or in storage; the new object gets the next one.
    pub epoch_floor: u64,
    /// Log bytes merged.
    pub merged_bytes: u64,
    /// Log entries merged.
    pub merged_entries: u64,
    /// The object Redis named as current when the snapshot was read.
    pub previous: Option<String>,
}

/// Puts the merged snapshot as a new object, then records it in Redis (fenced by lease and
/// epoch), then deletes the room's older snapshot objects. Nothing is recorded, and nothing
/// deleted, unless the put succeeded; a replica that lost its lease records nothing.
pub async fn write(
    storage: &ObjectStorage,
    room: &LeasedRoom<'_>,
    merged: Merged,
) -> Result<WriteOutcome, TaskError> {
    let epoch = merged.epoch_floor + 1;
    let object = Snapshot {
        room: room.room().to_string(),
        epoch,
        covered: LogId::new(merged.upto.ms, merged.upto.seq),
        written_at_ms: now_ms(),
        state: Bytes::from(merged.state),
    };
    let id = object.id();
    storage.put_snapshot(&object).await?;
    fault::hit(Point::AfterPut);
    fault::pause(Point::AfterPut).await;
    let outcome = room
        .record(
            object.state.to_vec(),
            merged.upto,
            merged.epoch_read,
            epoch,
            &id.file_name(),
            LogCounts {
                bytes: merged.merged_bytes,
                entries: merged.merged_entries,
            },
        )
        .await?;
    if outcome == WriteOutcome::Written {
        if let Err(e) = prune(storage, room.room(), id).await {
            // Garbage only: an older object is never read once a newer one is current.
            tracing::warn!(room = %room.room(), previous = ?merged.previous, error = %e, "could not delete superseded snapshot objects");
        }
    }
    Ok(outcome)
}

/// Deletes the room's snapshot objects older than `current` (superseded ones, and objects of
/// attempts that crashed before Redis recorded them).
async fn prune(
    storage: &ObjectStorage,
    room: &str,
    current: SnapshotId,
) -> Result<(), StorageError> {
    for id in storage.list_snapshots(room).await? {
        if id < current {
            storage.delete_snapshot(room, &id).await?;
        }
    }
    Ok(())
}

/// After a run that found nothing new and deleted the empty log: evicts the room from Redis
/// if it is idle — no entry for `evict_after_ms`, no client on any gateway — and its current
/// snapshot is stored and named by Redis. A room not idle yet is queued for the moment it will
/// be. Returns whether it was evicted.
pub async fn evict_if_idle(
    ctx: &Context,
    room: &LeasedRoom<'_>,
    snapshot: &yws_redis::fencing::Snapshot,
) -> Result<bool, TaskError> {
    let Some(object) = &snapshot.object else {
        return Ok(false); // a snapshot only Redis holds (written before storage was on)
    };
    if snapshot.generation > 0 {
        return Ok(false); // deleted once: its generation key, and so its hash, stay
    }
    let queue = Queue::new(&ctx.redis);
    let idle_at = snapshot.upto.ms.saturating_add(ctx.evict_after_ms);
    let now = now_ms();
    if now < idle_at {
        queue.set(room.room(), idle_at, When::NotQueued).await?;
        return Ok(false);
    }
    if room.connections_anywhere().await? > 0 {
        queue
            .set(room.room(), now + ctx.evict_after_ms, When::NotQueued)
            .await?;
        return Ok(false);
    }
    // Queued again first: a replica that dies before the eviction leaves a task behind.
    queue
        .set(room.room(), now + ctx.evict_after_ms, When::NotQueued)
        .await?;
    fault::hit(Point::BeforeEvict);
    match room.evict(snapshot.epoch, object).await? {
        Evicted::Yes => {
            queue.remove(room.room()).await?;
            ctx.metrics.rooms_evicted.inc();
            tracing::debug!(room = %room.room(), "idle room evicted from redis");
            Ok(true)
        }
        Evicted::No(why) => {
            tracing::debug!(room = %room.room(), why, "room not evicted");
            Ok(false)
        }
    }
}

fn stream_id(id: LogId) -> StreamId {
    StreamId {
        ms: id.ms,
        seq: id.seq,
    }
}
