//! Snapshots kept in object storage (`storage.url`): the Redis side.
//!
//! With storage on, a compactor writes each merged snapshot as an object first and then
//! records it here — [`RECORD_SNAPSHOT`], fenced by the lease and the epoch exactly as
//! [`WRITE_SNAPSHOT`](crate::scripts::WRITE_SNAPSHOT) is — so Redis names an object only once
//! it is stored, and a replica that lost its lease can never make its (older) object current.
//! The snapshot hash then holds, besides `doc`, `upto` and `epoch`, the field `obj`: the
//! file name of the current object (`<epoch>-<covered>.bin`, see `yws_objects::layout`).
//!
//! A room whose snapshot hash is gone — Redis was flushed or replaced by an empty one — loads
//! cold: the gateway reads the newest stored snapshot and writes it back with
//! [`SEED_SNAPSHOT`] (only into a room that still has no snapshot and was never deleted), so
//! the next compaction continues from its epoch and covered id.

use crate::client::Redis;
use crate::entry::StreamId;
use crate::error::Error;
use crate::keys::RoomKeys;
use crate::op::Op;
use crate::reader::{self, Stored};
use redis::Script;
use std::sync::LazyLock;
use tokio::time::Instant;
use yws_core::BackendError;
use yws_objects::{ObjectStorage, Snapshot, StorageError};

/// Records a snapshot whose object is stored, only if the writer still holds the lease and
/// nobody wrote a snapshot since it read the old one.
///
/// KEYS: snap, lease, meta. ARGV: token, doc, upto, epoch read, new epoch, object name, bytes
/// merged, entries merged (the log's counters go down by them, as in `WRITE_SNAPSHOT`). Returns `ok`, `lease_lost` or `stale`.
pub static RECORD_SNAPSHOT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 'lease_lost'
end
local epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if epoch ~= tonumber(ARGV[4]) or tonumber(ARGV[5]) <= epoch then
  return 'stale'
end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'upto', ARGV[3], 'epoch', ARGV[5], 'obj', ARGV[6])
local c = redis.call('HMGET', KEYS[3], 'bytes', 'n')
local bytes = math.max((tonumber(c[1] or '0') or 0) - tonumber(ARGV[7]), 0)
local n = math.max((tonumber(c[2] or '0') or 0) - tonumber(ARGV[8] or '0'), 0)
redis.call('HSET', KEYS[3], 'bytes', string.format('%d', bytes), 'n', string.format('%d', n))
return 'ok'
"#,
    )
});

/// Writes a snapshot read from storage into a room that has none: only if the snapshot hash
/// has no epoch yet and the room was never deleted (a deleted room's stale objects must not
/// bring it back).
///
/// KEYS: snap, generation. ARGV: doc, upto, epoch, object name. Returns 1 when written, 0 when
/// the room already has a snapshot or was deleted.
pub static SEED_SNAPSHOT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if (redis.call('GET', KEYS[2]) or '0') ~= '0' then
  return 0
end
if redis.call('HEXISTS', KEYS[1], 'epoch') == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'upto', ARGV[2], 'epoch', ARGV[3], 'obj', ARGV[4])
return 1
"#,
    )
});

/// A stored snapshot to write into Redis ([`seed`]).
#[derive(Debug, Clone)]
pub struct Seed {
    /// The merged state (one v1 update).
    pub doc: Vec<u8>,
    /// The last log id it covers.
    pub upto: StreamId,
    /// Its epoch.
    pub epoch: u64,
    /// Its object's file name.
    pub object: String,
}

/// Writes `seed` as the room's snapshot unless the room has one or was deleted
/// ([`SEED_SNAPSHOT`]); `true` when written.
pub async fn seed(redis: &Redis, keys: &RoomKeys, seed: Seed) -> Result<bool, Error> {
    let (snap, generation) = (keys.snap.clone(), keys.generation.clone());
    let written: i64 = redis
        .call(Op::SeedSnapshot, |mut c| async move {
            SEED_SNAPSHOT
                .key(&snap)
                .key(&generation)
                .arg(seed.doc)
                .arg(seed.upto.to_string())
                .arg(seed.epoch)
                .arg(&seed.object)
                .invoke_async(&mut c)
                .await
        })
        .await?;
    Ok(written == 1)
}

/// Loads a room ([`reader::load`]); with object storage, a room that has no snapshot in Redis
/// and was never deleted loads cold: the newest stored snapshot is written back into Redis
/// ([`seed`]) and the room read again, so snapshot and log stay consistent however a compactor
/// or a deletion interleaves.
pub(crate) async fn load_room(
    redis: &Redis,
    storage: Option<&ObjectStorage>,
    keys: &RoomKeys,
    room: &str,
    page: usize,
) -> Result<Stored, BackendError> {
    let stored = reader::load(redis, keys, page).await?;
    let Some(storage) = storage else {
        return Ok(stored);
    };
    if stored.snapshot.is_some() || stored.epoch > 0 || stored.generation > 0 {
        return Ok(stored);
    }
    let started = Instant::now();
    let Some(snapshot) = latest(storage, room).await? else {
        return Ok(stored);
    };
    let seed_value = Seed {
        upto: StreamId {
            ms: snapshot.covered.ms,
            seq: snapshot.covered.seq,
        },
        epoch: snapshot.epoch,
        object: snapshot.id().file_name(),
        doc: snapshot.state.to_vec(),
    };
    let seeded = seed(redis, keys, seed_value).await?;
    let stored = reader::load(redis, keys, page).await?;
    redis.metrics.cold_loads.inc();
    redis
        .metrics
        .cold_load_seconds
        .observe(started.elapsed().as_secs_f64());
    tracing::info!(
        room,
        epoch = snapshot.epoch,
        seeded,
        ms = started.elapsed().as_millis() as u64,
        "room loaded cold from object storage"
    );
    Ok(stored)
}

/// Whether `room` has a stored snapshot it could load cold from (for a room Redis does not
/// hold): one listing; a room deleted since never counts.
pub(crate) async fn exists_in_storage(
    redis: &Redis,
    storage: &ObjectStorage,
    keys: &RoomKeys,
    room: &str,
) -> Result<bool, BackendError> {
    let generation = keys.generation.clone();
    let generation: Option<u64> = redis
        .call(Op::Exists, |mut c| async move {
            redis::cmd("GET").arg(&generation).query_async(&mut c).await
        })
        .await?;
    if generation.unwrap_or(0) > 0 {
        return Ok(false);
    }
    let snapshots = storage.list_snapshots(room).await.map_err(unavailable)?;
    Ok(!snapshots.is_empty())
}

/// Deletes every stored object of `room` (the deletion itself is in Redis first, which
/// fences compactors and cold loads): listing and deleting until nothing is left.
pub(crate) async fn delete_objects(
    storage: &ObjectStorage,
    room: &str,
) -> Result<(), BackendError> {
    for _ in 0..5 {
        if storage.delete_room(room).await.map_err(unavailable)? == 0 {
            return Ok(());
        }
    }
    Err(BackendError::Unavailable(format!(
        "objects of {room:?} kept appearing while being deleted"
    )))
}

/// The newest stored snapshot of `room`. A compaction may delete the object that was newest
/// between the listing and the read (it recorded a newer one): list again, a few times.
async fn latest(storage: &ObjectStorage, room: &str) -> Result<Option<Snapshot>, BackendError> {
    let mut last_error = None;
    for _ in 0..3 {
        match storage.latest_snapshot(room).await {
            Ok(found) => return Ok(found),
            Err(e @ StorageError::NotFound { .. }) => last_error = Some(e),
            Err(e) => return Err(unavailable(e)),
        }
    }
    Err(last_error.map_or_else(
        || BackendError::Unavailable("object storage".into()),
        unavailable,
    ))
}

fn unavailable(e: StorageError) -> BackendError {
    match e {
        StorageError::Corrupt { .. } => BackendError::Corrupt(e.to_string()),
        e => BackendError::Unavailable(format!("object storage: {e}")),
    }
}

/// Removes an idle room from Redis — snapshot hash, log, metadata, awareness, callback claim
/// and lease — when its current snapshot is the stored object `object` at `epoch`, the log is
/// empty, the caller holds the lease and the room was never deleted (a deleted room's
/// generation key must stay, and with it the room's snapshot hash: see `load_room`).
///
/// KEYS: snap, log, meta, awareness, callback, lease, generation. ARGV: token, epoch, object.
/// Returns `evicted`, `lease_lost`, `deleted`, `busy` (entries in the log) or `stale` (another
/// snapshot is current).
pub static EVICT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[6]) ~= ARGV[1] then
  return 'lease_lost'
end
if (redis.call('GET', KEYS[7]) or '0') ~= '0' then
  return 'deleted'
end
if redis.call('XLEN', KEYS[2]) > 0 then
  return 'busy'
end
local s = redis.call('HMGET', KEYS[1], 'epoch', 'obj')
if s[1] ~= ARGV[2] or s[2] ~= ARGV[3] then
  return 'stale'
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
return 'evicted'
"#,
    )
});

/// What [`evict`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evicted {
    /// The room has no key in Redis any more.
    Yes,
    /// It stays: the answer of [`EVICT`] says why.
    No(&'static str),
}

/// Evicts a room ([`EVICT`]) under the lease `token`.
pub async fn evict(
    redis: &Redis,
    keys: &RoomKeys,
    token: &str,
    epoch: u64,
    object: &str,
) -> Result<Evicted, Error> {
    let (k, token, object) = (keys.clone(), token.to_string(), object.to_string());
    let answer: String = redis
        .call(Op::Cleanup, |mut c| async move {
            EVICT
                .key(&k.snap)
                .key(&k.log)
                .key(&k.meta)
                .key(&k.awareness)
                .key(&k.callback)
                .key(&k.lease)
                .key(&k.generation)
                .arg(&token)
                .arg(epoch)
                .arg(&object)
                .invoke_async(&mut c)
                .await
        })
        .await?;
    match answer.as_str() {
        "evicted" => Ok(Evicted::Yes),
        "lease_lost" => Ok(Evicted::No("lease_lost")),
        "deleted" => Ok(Evicted::No("deleted")),
        "busy" => Ok(Evicted::No("busy")),
        "stale" => Ok(Evicted::No("stale")),
        other => Err(Error::corrupt(format!("evict answered {other:?}"))),
    }
}

/// Connections to `room` on every live gateway, from their presence reports.
pub async fn connections_anywhere(redis: &Redis, room: &str) -> Result<u64, Error> {
    let nodes_key = crate::keys::nodes_key(redis.prefix());
    let alive_since = crate::entry::now_ms().saturating_sub(crate::PRESENCE_TTL_MS);
    let nodes: Vec<String> = redis
        .call(Op::List, |mut c| async move {
            redis::cmd("ZRANGEBYSCORE")
                .arg(&nodes_key)
                .arg(alive_since)
                .arg("+inf")
                .query_async(&mut c)
                .await
        })
        .await?;
    let mut total = 0u64;
    for node in nodes {
        let (key, room) = (
            crate::keys::presence_key(redis.prefix(), &node),
            room.to_string(),
        );
        let n: Option<u64> = redis
            .call(Op::List, |mut c| async move {
                redis::cmd("HGET")
                    .arg(&key)
                    .arg(&room)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        total += n.unwrap_or(0);
    }
    Ok(total)
}

/// Rooms queued per migration sweep at most: turning storage on for a large deployment moves
/// its snapshots in batches, without a pause.
pub const MIGRATION_BATCH: usize = 1000;

/// The migration sweep: queues (due at `due_ms`, or earlier if they are due earlier already)
/// rooms whose snapshot only Redis holds — a
/// snapshot hash without `obj`, written before storage was turned on — at most `limit` per
/// call. A compaction of such a room stores its snapshot even with nothing new to merge.
pub async fn sweep_unstored(
    redis: &Redis,
    seeds: &[String],
    due_ms: u64,
    limit: usize,
) -> Result<usize, Error> {
    let pattern = format!("{}:{{*}}:snap", redis.prefix());
    let queue = crate::queue::Queue::new(redis);
    let timeout = redis.timeout(Op::Sweep);
    let failed = |e: redis::RedisError| Error::Failed {
        op: Op::Sweep,
        message: e.to_string(),
    };
    let mut queued = 0;
    for url in crate::queue::scan_targets(redis, seeds).await? {
        let client = redis::Client::open(url.as_str()).map_err(failed)?;
        let mut conn = tokio::time::timeout(timeout, client.get_multiplexed_async_connection())
            .await
            .map_err(|_| Error::Timeout(Op::Sweep))?
            .map_err(failed)?;
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = tokio::time::timeout(
                timeout,
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(500)
                    .query_async(&mut conn),
            )
            .await
            .map_err(|_| Error::Timeout(Op::Sweep))?
            .map_err(failed)?;
            for key in keys {
                let stored: bool = tokio::time::timeout(
                    timeout,
                    redis::cmd("HEXISTS")
                        .arg(&key)
                        .arg("obj")
                        .query_async(&mut conn),
                )
                .await
                .map_err(|_| Error::Timeout(Op::Sweep))?
                .map_err(failed)?;
                if stored {
                    continue;
                }
                if let Some(room) = crate::keys::room_of(redis.prefix(), &key) {
                    queue
                        .set(&room, due_ms, crate::queue::When::Earlier)
                        .await?;
                    queued += 1;
                    if queued >= limit {
                        return Ok(queued);
                    }
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok(queued)
}
