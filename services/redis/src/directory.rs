//! Room-level operations of [`RedisBackend`](crate::RedisBackend) beyond serving a room:
//! existence, deletion (with a live message so every node closes the room's clients),
//! cluster-wide listings from presence reports, and the HTTP-callback claim.

use crate::client::Redis;
use crate::entry::{now_ms, StreamId};
use crate::error::Error;
use crate::keys::{nodes_key, presence_key, RoomKeys};
use crate::op::Op;
use crate::queue::Queue;
use crate::scripts;
use std::collections::BTreeMap;
use std::time::Duration;
use yws_core::{Claimed, NodeInfo, NodeReport, RoomName, RoomStats};

/// A gateway's presence report expires unless renewed within this time.
pub const PRESENCE_TTL_MS: u64 = 15_000;

pub(crate) async fn exists(redis: &Redis, room: &RoomName) -> Result<bool, Error> {
    let keys = RoomKeys::new(redis.prefix(), room.as_str());
    let (log, snap) = (keys.log, keys.snap);
    let n: u64 = redis
        .call(Op::Exists, |mut c| async move {
            redis::cmd("EXISTS")
                .arg(&log)
                .arg(&snap)
                .query_async(&mut c)
                .await
        })
        .await?;
    Ok(n > 0)
}

/// Deletes a room's state; every node serving it (this one too) retires its copy when the
/// message arrives, unless it was loaded after the delete.
pub(crate) async fn delete(redis: &Redis, node: &str, room: &RoomName) -> Result<(), Error> {
    let k = RoomKeys::new(redis.prefix(), room.as_str());
    let publish = redis.publish_command();
    redis
        .call(Op::Delete, |mut c| async move {
            scripts::DELETE
                .key(&k.log)
                .key(&k.snap)
                .key(&k.meta)
                .key(&k.awareness)
                .key(&k.lease)
                .key(&k.callback)
                .key(&k.generation)
                .arg(&k.channel)
                .arg(publish)
                .arg(node)
                .invoke_async::<u64>(&mut c)
                .await
                .map(|_| ())
        })
        .await?;
    Queue::new(redis).remove(room.as_str()).await
}

pub(crate) async fn list(
    redis: &Redis,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, Option<u64>)>, Error> {
    let nodes_key = nodes_key(redis.prefix());
    let alive_since = now_ms().saturating_sub(PRESENCE_TTL_MS);
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
    let mut counts = BTreeMap::new();
    for node in nodes {
        let key = presence_key(redis.prefix(), &node);
        let rooms: Vec<(String, u64)> = redis
            .call(Op::List, |mut c| async move {
                redis::cmd("HGETALL").arg(&key).query_async(&mut c).await
            })
            .await?;
        add_presence(&mut counts, rooms);
    }
    Ok(page(counts, after, limit))
}

/// Adds one node's presence report (room → local connections) to the cluster-wide counts.
fn add_presence(counts: &mut BTreeMap<String, u64>, report: Vec<(String, u64)>) {
    for (room, n) in report {
        *counts.entry(room).or_default() += n;
    }
}

/// The rooms after `after`, in name order, at most `limit`, with their connection counts.
fn page(
    counts: BTreeMap<String, u64>,
    after: Option<&str>,
    limit: usize,
) -> Vec<(String, Option<u64>)> {
    counts
        .into_iter()
        .filter(|(room, _)| after.is_none_or(|a| room.as_str() > a))
        .take(limit)
        .map(|(room, n)| (room, Some(n)))
        .collect()
}

pub(crate) async fn report_presence(
    redis: &Redis,
    node: &str,
    rooms: &[(RoomName, usize)],
) -> Result<(), Error> {
    let key = presence_key(redis.prefix(), node);
    let fields: Vec<(String, usize)> = rooms
        .iter()
        .map(|(r, n)| (r.as_str().to_string(), *n))
        .collect();
    redis
        .call(Op::Presence, |mut c| async move {
            let mut pipe = redis::pipe();
            pipe.atomic().del(&key);
            if !fields.is_empty() {
                pipe.hset_multiple(&key, &fields);
            }
            pipe.pexpire(&key, PRESENCE_TTL_MS as i64);
            pipe.query_async::<()>(&mut c).await
        })
        .await?;
    let (nodes, node, now) = (nodes_key(redis.prefix()), node.to_string(), now_ms());
    redis
        .call(Op::Presence, |mut c| async move {
            redis::pipe()
                .zadd(&nodes, &node, now)
                .zrembyscore(&nodes, "-inf", now.saturating_sub(PRESENCE_TTL_MS * 4))
                .query_async::<()>(&mut c)
                .await
        })
        .await
}

/// Where a node's description lives: beside its presence hash, a JSON [`NodeInfo`] with the
/// same lifetime (a separate key, so older nodes reading the hash see only rooms).
fn node_info_key(prefix: &str, node: &str) -> String {
    format!("{}:info", presence_key(prefix, node))
}

pub(crate) async fn report_node(redis: &Redis, node: &str, info: &NodeInfo) -> Result<(), Error> {
    let key = node_info_key(redis.prefix(), node);
    let json = info.to_json();
    redis
        .call(Op::Presence, |mut c| async move {
            redis::cmd("SET")
                .arg(&key)
                .arg(&json)
                .arg("PX")
                .arg(PRESENCE_TTL_MS)
                .query_async::<()>(&mut c)
                .await
        })
        .await
}

/// Every node that reported within [`PRESENCE_TTL_MS`], with its description and rooms.
pub(crate) async fn nodes(redis: &Redis) -> Result<Vec<NodeReport>, Error> {
    let nodes_key = nodes_key(redis.prefix());
    let alive_since = now_ms().saturating_sub(PRESENCE_TTL_MS);
    let nodes: Vec<(String, u64)> = redis
        .call(Op::List, |mut c| async move {
            redis::cmd("ZRANGEBYSCORE")
                .arg(&nodes_key)
                .arg(alive_since)
                .arg("+inf")
                .arg("WITHSCORES")
                .query_async(&mut c)
                .await
        })
        .await?;
    let mut reports = Vec::with_capacity(nodes.len());
    for (id, seen_ms) in nodes {
        let (rooms_key, info_key) = (
            presence_key(redis.prefix(), &id),
            node_info_key(redis.prefix(), &id),
        );
        let mut rooms: Vec<(String, u64)> = redis
            .call(Op::List, |mut c| async move {
                redis::cmd("HGETALL")
                    .arg(&rooms_key)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        rooms.sort();
        let info: Option<String> = redis
            .call(Op::List, |mut c| async move {
                redis::cmd("GET").arg(&info_key).query_async(&mut c).await
            })
            .await?;
        let info = info.and_then(|json| NodeInfo::from_json(&json));
        reports.push(NodeReport {
            id,
            info,
            seen_ms,
            rooms,
        });
    }
    Ok(reports)
}

/// The size of a room's log and snapshot, and the time of its last update.
pub(crate) async fn room_stats(redis: &Redis, room: &RoomName) -> Result<RoomStats, Error> {
    let k = RoomKeys::new(redis.prefix(), room.as_str());
    type Answer = (
        u64,
        Option<u64>,
        u64,
        Option<String>,
        Vec<(String, Vec<(String, Vec<u8>)>)>,
    );
    let (log_entries, log_bytes, snapshot_bytes, upto, last): Answer = redis
        .call(Op::List, |mut c| async move {
            redis::pipe()
                .cmd("XLEN")
                .arg(&k.log)
                .cmd("MEMORY")
                .arg("USAGE")
                .arg(&k.log)
                .cmd("HSTRLEN")
                .arg(&k.snap)
                .arg("doc")
                .cmd("HGET")
                .arg(&k.snap)
                .arg("upto")
                .cmd("XREVRANGE")
                .arg(&k.log)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut c)
                .await
        })
        .await?;
    let id_ms = |id: &str| id.parse::<StreamId>().map(|id| id.ms).unwrap_or(0);
    let last_update_ms = match last.first() {
        Some((id, _)) => id_ms(id),
        None => upto.as_deref().map(id_ms).unwrap_or(0),
    };
    Ok(RoomStats {
        log_entries,
        log_bytes: log_bytes.unwrap_or(0),
        snapshot_bytes,
        last_update_ms,
    })
}

pub(crate) async fn claim_callback(
    redis: &Redis,
    room: &RoomName,
    position: Option<StreamId>,
    window: Duration,
) -> Result<Claimed, Error> {
    let key = RoomKeys::new(redis.prefix(), room.as_str()).callback;
    let position = position.unwrap_or(StreamId::ZERO).to_string();
    let window_ms = window.as_millis().max(1) as u64;
    let answer: i64 = redis
        .call(Op::Callback, |mut c| async move {
            scripts::CLAIM_CALLBACK
                .key(&key)
                .arg(&position)
                .arg(window_ms)
                .invoke_async(&mut c)
                .await
        })
        .await?;
    Ok(claimed(answer))
}

/// The answer of [`scripts::CLAIM_CALLBACK`]: 0 send, -1 covered, else ms to wait.
fn claimed(answer: i64) -> Claimed {
    match answer {
        0 => Claimed::Send,
        -1 => Claimed::Covered,
        wait => Claimed::Later(Duration::from_millis(wait.max(1) as u64)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_claim_answers() {
        assert_eq!(claimed(0), Claimed::Send);
        assert_eq!(claimed(-1), Claimed::Covered);
        assert_eq!(claimed(250), Claimed::Later(Duration::from_millis(250)));
        // Anything else the script cannot answer still waits a little, never forever.
        assert_eq!(claimed(-7), Claimed::Later(Duration::from_millis(1)));
    }

    #[test]
    fn listings_sum_nodes_and_page_by_name() {
        let mut counts = BTreeMap::new();
        add_presence(&mut counts, vec![("b".into(), 2), ("a".into(), 1)]);
        add_presence(&mut counts, vec![("b".into(), 3), ("c".into(), 1)]);
        assert_eq!(
            page(counts.clone(), None, 10),
            [
                ("a".into(), Some(1)),
                ("b".into(), Some(5)),
                ("c".into(), Some(1))
            ]
        );
        assert_eq!(page(counts.clone(), Some("a"), 1), [("b".into(), Some(5))]);
        assert!(page(counts, Some("c"), 10).is_empty());
    }
}
