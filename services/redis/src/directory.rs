//! Room-level operations of [`RedisBackend`](crate::RedisBackend) beyond serving a room:
//! existence, deletion (with a live message so every node closes the room's clients),
//! cluster-wide listings from presence reports, and the HTTP-callback claim.

use crate::client::Redis;
use crate::entry::{delete_message, now_ms};
use crate::keys::{nodes_key, presence_key, RoomKeys};
use crate::scripts;
use std::time::Duration;
use yws_core::{BackendError, Claimed, RoomName};

/// A gateway's presence report expires unless renewed within this time.
pub const PRESENCE_TTL_MS: u64 = 15_000;

pub(crate) async fn exists(redis: &Redis, room: &RoomName) -> Result<bool, BackendError> {
    let keys = RoomKeys::new(redis.prefix(), room.as_str());
    let (log, snap) = (keys.log, keys.snap);
    let n: u64 = redis
        .call("load", |mut c| async move {
            redis::cmd("EXISTS")
                .arg(&log)
                .arg(&snap)
                .query_async(&mut c)
                .await
        })
        .await?;
    Ok(n > 0)
}

pub(crate) async fn delete(redis: &Redis, node: &str, room: &RoomName) -> Result<(), BackendError> {
    let k = RoomKeys::new(redis.prefix(), room.as_str());
    let message = delete_message(node);
    let publish = redis.publish_command();
    redis
        .call("cleanup", |mut c| async move {
            scripts::DELETE
                .key(&k.log)
                .key(&k.snap)
                .key(&k.meta)
                .key(&k.awareness)
                .key(&k.lease)
                .key(&k.callback)
                .arg(&k.channel)
                .arg(publish)
                .arg(message)
                .invoke_async::<i64>(&mut c)
                .await
                .map(|_| ())
        })
        .await?;
    crate::compaction::Queue::new(redis)
        .remove(room.as_str())
        .await
}

pub(crate) async fn list(
    redis: &Redis,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, Option<u64>)>, BackendError> {
    let nodes_key = nodes_key(redis.prefix());
    let alive_since = now_ms().saturating_sub(PRESENCE_TTL_MS);
    let nodes: Vec<String> = redis
        .call("load", |mut c| async move {
            redis::cmd("ZRANGEBYSCORE")
                .arg(&nodes_key)
                .arg(alive_since)
                .arg("+inf")
                .query_async(&mut c)
                .await
        })
        .await?;
    let mut counts: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for node in nodes {
        let key = presence_key(redis.prefix(), &node);
        let rooms: Vec<(String, u64)> = redis
            .call("load", |mut c| async move {
                redis::cmd("HGETALL").arg(&key).query_async(&mut c).await
            })
            .await?;
        for (room, n) in rooms {
            *counts.entry(room).or_default() += n;
        }
    }
    Ok(counts
        .into_iter()
        .filter(|(room, _)| after.is_none_or(|a| room.as_str() > a))
        .take(limit)
        .map(|(room, n)| (room, Some(n)))
        .collect())
}

pub(crate) async fn report_presence(
    redis: &Redis,
    node: &str,
    rooms: &[(RoomName, usize)],
) -> Result<(), BackendError> {
    let key = presence_key(redis.prefix(), node);
    let fields: Vec<(String, usize)> = rooms
        .iter()
        .map(|(r, n)| (r.as_str().to_string(), *n))
        .collect();
    redis
        .call("presence", |mut c| async move {
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
        .call("presence", |mut c| async move {
            redis::pipe()
                .zadd(&nodes, &node, now)
                .zrembyscore(&nodes, "-inf", now.saturating_sub(PRESENCE_TTL_MS * 4))
                .query_async::<()>(&mut c)
                .await
        })
        .await
}

pub(crate) async fn claim_callback(
    redis: &Redis,
    room: &RoomName,
    position: Option<(u64, u64)>,
    window: Duration,
) -> Result<Claimed, BackendError> {
    let key = RoomKeys::new(redis.prefix(), room.as_str()).callback;
    let (ms, seq) = position.unwrap_or((0, 0));
    let position = format!("{ms}-{seq}");
    let window_ms = window.as_millis().max(1) as u64;
    let answer: i64 = redis
        .call("callback", |mut c| async move {
            scripts::CLAIM_CALLBACK
                .key(&key)
                .arg(&position)
                .arg(window_ms)
                .invoke_async(&mut c)
                .await
        })
        .await?;
    Ok(match answer {
        0 => Claimed::Send,
        -1 => Claimed::Covered,
        wait => Claimed::Later(Duration::from_millis(wait.max(1) as u64)),
    })
}
