//! The compactor's side of the data model: the queue, leases with fencing, snapshot writes
//! and log trims. Every step is safe to interrupt: a snapshot is written together with the
//! last log id it covers, in one script, only by the lease holder and only if no other
//! snapshot was written since it was read; the log is trimmed only afterwards, up to that id.

use crate::client::Redis;
use crate::entry::{now_ms, StreamId};
use crate::keys::{queue_key, RoomKeys};
use crate::scripts;
use crate::store::{self, BadEntry, LogEntry};
use yws_core::BackendError;

/// A task taken from the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// The room.
    pub room: String,
    /// When it was due (ms).
    pub due_ms: u64,
}

/// The queue of one deployment (prefix).
#[derive(Debug)]
pub struct Queue<'a> {
    redis: &'a Redis,
    key: String,
}

impl<'a> Queue<'a> {
    /// The queue under the client's prefix.
    pub fn new(redis: &'a Redis) -> Self {
        Queue {
            key: queue_key(redis.prefix()),
            redis,
        }
    }

    /// Up to `limit` tasks due by `now_ms`, oldest first.
    pub async fn due(&self, now_ms: u64, limit: usize) -> Result<Vec<Task>, BackendError> {
        let key = self.key.clone();
        let pairs: Vec<(String, f64)> = self
            .redis
            .call("queue", |mut c| async move {
                redis::cmd("ZRANGEBYSCORE")
                    .arg(&key)
                    .arg("-inf")
                    .arg(now_ms)
                    .arg("WITHSCORES")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(pairs
            .into_iter()
            .map(|(room, score)| Task {
                room,
                due_ms: score.max(0.0) as u64,
            })
            .collect())
    }

    /// (tasks queued, tasks due by `now_ms`).
    pub async fn depth(&self, now_ms: u64) -> Result<(u64, u64), BackendError> {
        let key = self.key.clone();
        self.redis
            .call("queue", |mut c| async move {
                redis::pipe()
                    .cmd("ZCARD")
                    .arg(&key)
                    .cmd("ZCOUNT")
                    .arg(&key)
                    .arg("-inf")
                    .arg(now_ms)
                    .query_async(&mut c)
                    .await
            })
            .await
    }

    /// Sets a room's due time. `mode`: `XX` (only if queued), `NX` (only if not), `LT` (only
    /// earlier, adds if missing), or `""` (always).
    pub async fn set(
        &self,
        room: &str,
        due_ms: u64,
        mode: &'static str,
    ) -> Result<(), BackendError> {
        let (key, room) = (self.key.clone(), room.to_string());
        self.redis
            .call("schedule", |mut c| async move {
                let mut cmd = redis::cmd("ZADD");
                cmd.arg(&key);
                if !mode.is_empty() {
                    cmd.arg(mode);
                }
                cmd.arg(due_ms)
                    .arg(&room)
                    .query_async::<i64>(&mut c)
                    .await
                    .map(|_| ())
            })
            .await
    }

    /// A room's due time, if it is queued.
    pub async fn due_of(&self, room: &str) -> Result<Option<u64>, BackendError> {
        let (key, room) = (self.key.clone(), room.to_string());
        let score: Option<f64> = self
            .redis
            .call("queue", |mut c| async move {
                redis::cmd("ZSCORE")
                    .arg(&key)
                    .arg(&room)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(score.map(|s| s.max(0.0) as u64))
    }

    /// Removes a room's task.
    pub async fn remove(&self, room: &str) -> Result<(), BackendError> {
        let (key, room) = (self.key.clone(), room.to_string());
        self.redis
            .call("schedule", |mut c| async move {
                redis::cmd("ZREM")
                    .arg(&key)
                    .arg(&room)
                    .query_async::<i64>(&mut c)
                    .await
                    .map(|_| ())
            })
            .await
    }
}

/// Outcome of trying to claim a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This replica holds the lease; `takeover` when a previous claimant died mid-task.
    Acquired {
        /// Whether an unreleased claim of another replica was found.
        takeover: bool,
    },
    /// Another replica holds the lease.
    Busy,
}

/// Outcome of a fenced snapshot write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Written.
    Written,
    /// The lease expired and may belong to another replica: nothing written.
    LeaseLost,
    /// Another snapshot was written since this one was read: nothing written.
    Stale,
}

/// One room's compaction-side operations.
#[derive(Debug)]
pub struct RoomCompaction<'a> {
    redis: &'a Redis,
    room: String,
    /// The room's keys.
    pub keys: RoomKeys,
    token: String,
    lease_ms: u64,
}

/// A snapshot as stored.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The merged state, if any.
    pub doc: Option<Vec<u8>>,
    /// The last log id it covers.
    pub upto: StreamId,
    /// Its fencing epoch.
    pub epoch: u64,
}

impl<'a> RoomCompaction<'a> {
    /// Operations on `room` under the lease `token`.
    pub fn new(redis: &'a Redis, room: &str, token: &str, lease_ms: u64) -> Self {
        RoomCompaction {
            keys: RoomKeys::new(redis.prefix(), room),
            room: room.to_string(),
            redis,
            token: token.to_string(),
            lease_ms,
        }
    }

    /// The room's name.
    pub fn room(&self) -> &str {
        &self.room
    }

    /// Takes the room's lease.
    pub async fn claim(&self) -> Result<Claim, BackendError> {
        let (lease, meta, token, ms) = (
            self.keys.lease.clone(),
            self.keys.meta.clone(),
            self.token.clone(),
            self.lease_ms,
        );
        let (acquired, previous): (u8, String) = self
            .redis
            .call("lease", |mut c| async move {
                scripts::CLAIM
                    .key(&lease)
                    .key(&meta)
                    .arg(&token)
                    .arg(ms)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(if acquired == 1 {
            Claim::Acquired {
                takeover: !previous.is_empty(),
            }
        } else {
            Claim::Busy
        })
    }

    /// Extends the lease; `false` if it was lost.
    pub async fn renew(&self) -> Result<bool, BackendError> {
        let (lease, token, ms) = (self.keys.lease.clone(), self.token.clone(), self.lease_ms);
        let renewed: i64 = self
            .redis
            .call("lease", |mut c| async move {
                scripts::RENEW
                    .key(&lease)
                    .arg(&token)
                    .arg(ms)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(renewed == 1)
    }

    /// Releases the lease and the claim.
    pub async fn release(&self) -> Result<(), BackendError> {
        let (lease, meta, token) = (
            self.keys.lease.clone(),
            self.keys.meta.clone(),
            self.token.clone(),
        );
        self.redis
            .call("lease", |mut c| async move {
                scripts::RELEASE
                    .key(&lease)
                    .key(&meta)
                    .arg(&token)
                    .invoke_async::<i64>(&mut c)
                    .await
                    .map(|_| ())
            })
            .await
    }

    /// Reads the current snapshot.
    pub async fn snapshot(&self) -> Result<Snapshot, BackendError> {
        let snap = self.keys.snap.clone();
        let (doc, upto, epoch): (Option<Vec<u8>>, Option<String>, Option<u64>) = self
            .redis
            .call("read_log", |mut c| async move {
                redis::cmd("HMGET")
                    .arg(&snap)
                    .arg("doc")
                    .arg("upto")
                    .arg("epoch")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let upto = match upto {
            Some(u) => u
                .parse()
                .map_err(|_| BackendError::Corrupt(format!("snapshot upto {u:?}")))?,
            None => StreamId::ZERO,
        };
        Ok(Snapshot {
            doc: doc.filter(|d| !d.is_empty()),
            upto,
            epoch: epoch.unwrap_or(0),
        })
    }

    /// Up to `count` log entries after `after`.
    pub async fn read(
        &self,
        after: StreamId,
        count: usize,
    ) -> Result<(Vec<LogEntry>, Vec<BadEntry>), BackendError> {
        store::read_after(self.redis, &self.keys, after, count, "read_log").await
    }

    /// Writes a snapshot covering the log up to `upto`, fenced by lease and epoch.
    pub async fn write(
        &self,
        doc: Vec<u8>,
        upto: StreamId,
        epoch_read: u64,
        merged_bytes: u64,
    ) -> Result<WriteOutcome, BackendError> {
        let (snap, lease, meta, token) = (
            self.keys.snap.clone(),
            self.keys.lease.clone(),
            self.keys.meta.clone(),
            self.token.clone(),
        );
        let outcome: String = self
            .redis
            .call("write_snapshot", |mut c| async move {
                scripts::WRITE_SNAPSHOT
                    .key(&snap)
                    .key(&lease)
                    .key(&meta)
                    .arg(&token)
                    .arg(doc)
                    .arg(upto.to_string())
                    .arg(epoch_read)
                    .arg(merged_bytes)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        match outcome.as_str() {
            "ok" => Ok(WriteOutcome::Written),
            "lease_lost" => Ok(WriteOutcome::LeaseLost),
            "stale" => Ok(WriteOutcome::Stale),
            other => Err(BackendError::Corrupt(format!(
                "snapshot write answered {other:?}"
            ))),
        }
    }

    /// Removes log entries with ids below `min` (exact).
    pub async fn trim_below(&self, min: StreamId) -> Result<u64, BackendError> {
        let log = self.keys.log.clone();
        self.redis
            .call("trim", |mut c| async move {
                redis::cmd("XTRIM")
                    .arg(&log)
                    .arg("MINID")
                    .arg(min.to_string())
                    .query_async(&mut c)
                    .await
            })
            .await
    }

    /// Entries left in the log.
    pub async fn log_len(&self) -> Result<u64, BackendError> {
        let log = self.keys.log.clone();
        self.redis
            .call("read_log", |mut c| async move {
                redis::cmd("XLEN").arg(&log).query_async(&mut c).await
            })
            .await
    }

    /// Deletes the log if it is empty; `true` when deleted.
    pub async fn delete_if_empty(&self) -> Result<bool, BackendError> {
        let (log, meta) = (self.keys.log.clone(), self.keys.meta.clone());
        let deleted: i64 = self
            .redis
            .call("cleanup", |mut c| async move {
                scripts::CLEANUP
                    .key(&log)
                    .key(&meta)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(deleted == 1)
    }
}

/// Finds logs that have no queued task (a gateway that died between writing the first entry
/// of a log and queueing it) and queues them. Scans every master of a cluster.
pub async fn sweep(redis: &Redis, seeds: &[String], due_ms: u64) -> Result<usize, BackendError> {
    let pattern = format!("{}:{{*}}:log", redis.prefix());
    let queue = Queue::new(redis);
    let mut queued = 0;
    for url in scan_targets(redis, seeds).await? {
        let client = redis::Client::open(url.as_str())
            .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        let mut conn =
            tokio::time::timeout(redis.timeout(), client.get_multiplexed_async_connection())
                .await
                .map_err(|_| BackendError::Timeout("sweep"))?
                .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = tokio::time::timeout(
                redis.timeout(),
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(500)
                    .query_async(&mut conn),
            )
            .await
            .map_err(|_| BackendError::Timeout("sweep"))?
            .map_err(|e| BackendError::Unavailable(e.to_string()))?;
            for key in keys {
                if let Some(room) = crate::keys::room_of(redis.prefix(), &key) {
                    queue.set(&room, due_ms, "NX").await?;
                    queued += 1;
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

/// The servers to SCAN: the single server, or every master of the cluster.
async fn scan_targets(redis: &Redis, seeds: &[String]) -> Result<Vec<String>, BackendError> {
    if !redis.is_cluster() {
        return Ok(seeds.to_vec());
    }
    let nodes: String = redis
        .call("sweep", |mut c| async move {
            redis::cmd("CLUSTER").arg("NODES").query_async(&mut c).await
        })
        .await?;
    let template = seeds.first().cloned().unwrap_or_default();
    let (scheme, rest) = template
        .split_once("://")
        .unwrap_or(("redis", template.as_str()));
    let auth = rest
        .split_once('@')
        .map(|(a, _)| format!("{a}@"))
        .unwrap_or_default();
    Ok(nodes
        .lines()
        .filter(|l| l.contains("master") && !l.contains("fail"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|addr| addr.split('@').next().unwrap_or(addr))
        .map(|addr| format!("{scheme}://{auth}{addr}"))
        .collect())
}

/// A random lease token.
pub fn new_token() -> String {
    format!("c{:016x}{:x}", rand::random::<u64>(), now_ms())
}
