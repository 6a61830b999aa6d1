//! The compaction queue: one sorted set per deployment, member = room, score = when the room
//! is due for compaction (ms). Gateways add rooms as their logs grow ([`after_append`]); the
//! compactor takes due rooms, moves their due time while it works, and reschedules them; a
//! periodic [`sweep`] queues logs that have no task.

use crate::client::Redis;
use crate::error::Error;
use crate::keys::{queue_key, room_of};
use crate::op::Op;

/// A task taken from the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// The room.
    pub room: String,
    /// When it was due (ms).
    pub due_ms: u64,
}

/// How full the queue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Depth {
    /// Tasks queued.
    pub queued: u64,
    /// Tasks due now (the backlog).
    pub due: u64,
}

/// When [`Queue::set`] changes a room's due time (the `ZADD` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Always: add the room or replace its due time.
    Always,
    /// Only if the room is queued (`XX`).
    Queued,
    /// Only if the room is not queued (`NX`).
    NotQueued,
    /// Only to an earlier time; adds the room if it is not queued (`LT`).
    Earlier,
}

impl When {
    fn flag(self) -> Option<&'static str> {
        match self {
            When::Always => None,
            When::Queued => Some("XX"),
            When::NotQueued => Some("NX"),
            When::Earlier => Some("LT"),
        }
    }
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
    pub async fn due(&self, now_ms: u64, limit: usize) -> Result<Vec<Task>, Error> {
        let key = self.key.clone();
        let pairs: Vec<(String, f64)> = self
            .redis
            .call(Op::Queue, |mut c| async move {
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
        Ok(tasks(pairs))
    }

    /// Tasks queued, and due by `now_ms`.
    pub async fn depth(&self, now_ms: u64) -> Result<Depth, Error> {
        let key = self.key.clone();
        let (queued, due) = self
            .redis
            .call(Op::Queue, |mut c| async move {
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
            .await?;
        Ok(Depth { queued, due })
    }

    /// Sets a room's due time, `when` allowed.
    pub async fn set(&self, room: &str, due_ms: u64, when: When) -> Result<(), Error> {
        let (key, room) = (self.key.clone(), room.to_string());
        self.redis
            .call(Op::Schedule, |mut c| async move {
                let mut cmd = redis::cmd("ZADD");
                cmd.arg(&key);
                if let Some(flag) = when.flag() {
                    cmd.arg(flag);
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
    pub async fn due_of(&self, room: &str) -> Result<Option<u64>, Error> {
        let (key, room) = (self.key.clone(), room.to_string());
        let score: Option<f64> = self
            .redis
            .call(Op::Queue, |mut c| async move {
                redis::cmd("ZSCORE")
                    .arg(&key)
                    .arg(&room)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(score.map(due_ms))
    }

    /// Removes a room's task.
    pub async fn remove(&self, room: &str) -> Result<(), Error> {
        let (key, room) = (self.key.clone(), room.to_string());
        self.redis
            .call(Op::Schedule, |mut c| async move {
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

/// A score as a due time (ms); scores are never negative, but a hand-edited one must not wrap.
fn due_ms(score: f64) -> u64 {
    score.max(0.0) as u64
}

fn tasks(pairs: Vec<(String, f64)>) -> Vec<Task> {
    pairs
        .into_iter()
        .map(|(room, score)| Task {
            room,
            due_ms: due_ms(score),
        })
        .collect()
}

/// When a room's log is compacted, as set by `[redis]`: `compact_after_ms`,
/// `compact_max_entries`, `compact_max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// A new log is compacted this long after it was created.
    pub after_ms: u64,
    /// A log is compacted at once when it reaches this many entries …
    pub max_entries: u64,
    /// … or this many bytes since its snapshot.
    pub max_bytes: u64,
}

/// What an append asks of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AfterAppend {
    /// The append created the log: queue the room, due in `after_ms` (unless queued).
    pub queue_new_log: bool,
    /// The log just reached a threshold: make the room due now (unless due earlier).
    pub compact_now: bool,
}

/// Decides, from the [`scripts::APPEND`](crate::scripts::APPEND) reply (`entries` and log
/// `bytes` since the snapshot, whether the log was `created`) and the bytes and entries the
/// call appended, what the queue needs. A threshold is acted on by the one append that
/// crosses it, not by every append after it, so a long log does not cost a `ZADD` per update.
pub fn after_append(
    thresholds: Thresholds,
    created: bool,
    entries: u64,
    bytes: u64,
    appended_bytes: u64,
    appended_entries: u64,
) -> AfterAppend {
    let crossed = |total: u64, appended: u64, limit: u64| {
        total >= limit && total.saturating_sub(appended) < limit
    };
    AfterAppend {
        queue_new_log: created,
        compact_now: crossed(entries, appended_entries, thresholds.max_entries)
            || crossed(bytes, appended_bytes, thresholds.max_bytes),
    }
}

/// Finds logs that have no queued task (a gateway that died between writing the first entry
/// of a log and queueing it) and queues them. Scans every master of a cluster.
pub async fn sweep(redis: &Redis, seeds: &[String], due_ms: u64) -> Result<usize, Error> {
    let pattern = format!("{}:{{*}}:log", redis.prefix());
    let queue = Queue::new(redis);
    let timeout = redis.timeout(Op::Sweep);
    let failed = |e: redis::RedisError| Error::Failed {
        op: Op::Sweep,
        message: e.to_string(),
    };
    let mut queued = 0;
    for url in scan_targets(redis, seeds).await? {
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
                if let Some(room) = room_of(redis.prefix(), &key) {
                    queue.set(&room, due_ms, When::NotQueued).await?;
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
pub(crate) async fn scan_targets(redis: &Redis, seeds: &[String]) -> Result<Vec<String>, Error> {
    if let Some(sentinels) = redis.sentinels() {
        return Ok(vec![sentinels.primary_url(redis.timeout(Op::Sweep)).await?]);
    }
    if !redis.is_cluster() {
        return Ok(seeds.to_vec());
    }
    let nodes: String = redis
        .call(Op::Sweep, |mut c| async move {
            redis::cmd("CLUSTER").arg("NODES").query_async(&mut c).await
        })
        .await?;
    Ok(masters(&nodes, seeds.first().map_or("", String::as_str)))
}

/// The URLs of the healthy masters in a `CLUSTER NODES` reply, with the scheme and credentials
/// of `template` (a seed URL).
fn masters(cluster_nodes: &str, template: &str) -> Vec<String> {
    let (scheme, rest) = template.split_once("://").unwrap_or(("redis", template));
    let auth = rest
        .split_once('@')
        .map(|(a, _)| format!("{a}@"))
        .unwrap_or_default();
    cluster_nodes
        .lines()
        .filter(|l| l.contains("master") && !l.contains("fail"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|addr| addr.split('@').next().unwrap_or(addr))
        .map(|addr| format!("{scheme}://{auth}{addr}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        after_ms: 10_000,
        max_entries: 1000,
        max_bytes: 100,
    };

    #[test]
    fn a_new_log_is_queued_once() {
        assert_eq!(
            after_append(T, true, 1, 10, 10, 1),
            AfterAppend {
                queue_new_log: true,
                compact_now: false
            }
        );
        assert_eq!(after_append(T, false, 2, 20, 10, 1), AfterAppend::default());
    }

    #[test]
    fn the_append_that_reaches_the_entry_limit_makes_the_room_due() {
        assert!(!after_append(T, false, 999, 50, 1, 1).compact_now);
        assert!(after_append(T, false, 1000, 51, 1, 1).compact_now);
        // Later appends leave the queue alone: the room is due already.
        assert!(!after_append(T, false, 1001, 52, 1, 1).compact_now);
        // A coalesced call of five updates that jumps over the limit, and the next one.
        assert!(after_append(T, false, 1003, 60, 5, 5).compact_now);
        assert!(!after_append(T, false, 1008, 65, 5, 5).compact_now);
    }

    #[test]
    fn the_append_that_crosses_the_byte_limit_makes_the_room_due() {
        assert!(!after_append(T, false, 5, 99, 10, 1).compact_now);
        assert!(
            after_append(T, false, 6, 100, 1, 1).compact_now,
            "reaches it"
        );
        assert!(
            after_append(T, false, 6, 150, 60, 1).compact_now,
            "jumps over it"
        );
        assert!(
            !after_append(T, false, 7, 160, 10, 1).compact_now,
            "was over it"
        );
        // One update larger than the limit, in a log that already was over it.
        assert!(!after_append(T, false, 7, 400, 200, 1).compact_now);
        // A first update larger than the limit.
        assert_eq!(
            after_append(T, true, 1, 500, 500, 1),
            AfterAppend {
                queue_new_log: true,
                compact_now: true
            }
        );
        // A counter below the update's size (reset meanwhile) does not wrap around.
        assert!(after_append(T, false, 3, 100, 300, 1).compact_now);
    }

    #[test]
    fn scores_are_due_times() {
        let tasks = tasks(vec![("a".into(), 1.7e12), ("b".into(), -5.0)]);
        assert_eq!(tasks[0].due_ms, 1_700_000_000_000);
        assert_eq!(tasks[1].due_ms, 0);
    }

    #[test]
    fn zadd_flags() {
        assert_eq!(When::Always.flag(), None);
        assert_eq!(When::Queued.flag(), Some("XX"));
        assert_eq!(When::NotQueued.flag(), Some("NX"));
        assert_eq!(When::Earlier.flag(), Some("LT"));
    }

    #[test]
    fn sweep_scans_the_healthy_masters_with_the_seed_credentials() {
        let nodes = "\
07c37dfeb2352 127.0.0.1:30004@40004 slave e7d1eecce10fd 0 1426238317239 4 connected
67ed2db8d6775 127.0.0.1:30002@40002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7e 127.0.0.1:30003@40003 master - 0 1426238318243 3 connected 10923-16383
6ec23923021cf 127.0.0.1:30005@40005 master,fail - 1426238316232 0 5 disconnected
e7d1eecce10fd 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
";
        assert_eq!(
            masters(nodes, "rediss://user:pw@127.0.0.1:30001"),
            [
                "rediss://user:pw@127.0.0.1:30002",
                "rediss://user:pw@127.0.0.1:30003",
                "rediss://user:pw@127.0.0.1:30001",
            ]
        );
        assert_eq!(
            masters(
                "ab 10.0.0.1:7000@17000 master - 0 0 1 connected 0-16383",
                "10.0.0.9:7000"
            ),
            ["redis://10.0.0.1:7000"]
        );
    }
}
