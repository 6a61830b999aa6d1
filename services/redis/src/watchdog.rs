//! The convergence watchdog: whatever the cause (a live message lost without a gap ever being
//! seen, a subscription the server dropped silently, a bug), a room this node serves never
//! stays behind its log.
//!
//! Every `redis.watchdog_interval_ms` it asks the dispatcher what each live room has applied,
//! then reads each room's last log id (`meta.last`: one `HGET` per room, pipelined on a single
//! server; a Redis Cluster keeps each room on its own slot, so there they go concurrently). A
//! room whose log was already ahead at the previous round and still is gets caught up from the
//! log and counted (`yws_redis_watchdog_repairs_total`). Waiting one round lets live messages
//! in flight arrive first, so a healthy node repairs nothing.

use crate::client::Redis;
use crate::entry::StreamId;
use crate::error::Error;
use crate::feed::Command;
use crate::op::Op;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Rooms' meta keys read in one pipeline on a single Redis server.
const PIPELINE: usize = 256;
/// Reads in flight at once on a Redis Cluster.
const CONCURRENT_READS: usize = 16;

/// What the dispatcher reports of one live room.
#[derive(Debug)]
pub(crate) struct Applied {
    /// The room's channel (how the dispatcher knows it).
    pub(crate) channel: String,
    /// The room's meta hash, whose `last` field is the log's newest id.
    pub(crate) meta: String,
    /// The newest entry applied by this node.
    pub(crate) last: StreamId,
}

/// Runs rounds every `interval` until `cancel` fires.
pub(crate) async fn run(
    redis: Arc<Redis>,
    commands: mpsc::Sender<Command>,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    // Rooms whose log was ahead at the last round: channel → that round's log id.
    let mut behind: HashMap<String, StreamId> = HashMap::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let round = tokio::select! {
            _ = cancel.cancelled() => return,
            round = round(&redis, &commands, &behind) => round,
        };
        match round {
            Ok(Some(next)) => behind = next,
            Ok(None) => return, // the dispatcher stopped
            Err(e) => {
                // Redis is unreachable: the health check handles that; try again next round.
                tracing::debug!(error = %e, "watchdog round failed");
            }
        }
    }
}

/// One round: repairs rooms still behind what `behind` recorded, then reads every live
/// room's log head. Returns the rooms behind it now (`None` once the dispatcher is gone).
async fn round(
    redis: &Redis,
    commands: &mpsc::Sender<Command>,
    behind: &HashMap<String, StreamId>,
) -> Result<Option<HashMap<String, StreamId>>, Error> {
    let (reply, applied) = oneshot::channel();
    if commands.send(Command::Audit { reply }).await.is_err() {
        return Ok(None);
    }
    let Ok(applied) = applied.await else {
        return Ok(None);
    };
    for room in &applied {
        if let Some(logged) = stale(behind, room) {
            let repair = Command::Repair {
                channel: room.channel.clone(),
                logged,
            };
            if commands.send(repair).await.is_err() {
                return Ok(None);
            }
        }
    }
    let metas: Vec<&str> = applied.iter().map(|a| a.meta.as_str()).collect();
    let logged = read_last_ids(redis, &metas).await?;
    Ok(Some(ahead(&applied, &logged)))
}

/// The log id a room was behind at the last round, if it has not applied it since.
fn stale(behind: &HashMap<String, StreamId>, room: &Applied) -> Option<StreamId> {
    behind
        .get(&room.channel)
        .copied()
        .filter(|&logged| room.last < logged)
}

/// The rooms whose log holds more than they applied, with the log's newest id.
fn ahead(applied: &[Applied], logged: &[Option<StreamId>]) -> HashMap<String, StreamId> {
    applied
        .iter()
        .zip(logged)
        .filter_map(|(room, logged)| match logged {
            Some(logged) if room.last < *logged => Some((room.channel.clone(), *logged)),
            _ => None,
        })
        .collect()
}

/// `HGET meta last` of every room (`None` where the log is empty or the id unreadable).
async fn read_last_ids(redis: &Redis, metas: &[&str]) -> Result<Vec<Option<StreamId>>, Error> {
    let mut ids: Vec<Option<String>> = Vec::with_capacity(metas.len());
    if redis.is_cluster() {
        // One slot per room: a pipeline cannot span them, so a few reads go at once.
        for batch in metas.chunks(CONCURRENT_READS) {
            let reads = batch
                .iter()
                .map(|meta| read_last_id(redis, meta.to_string()));
            ids.extend(futures_util::future::try_join_all(reads).await?);
        }
    } else {
        for batch in metas.chunks(PIPELINE) {
            let page: Vec<Option<String>> = redis
                .call(Op::Watchdog, |mut c| async move {
                    let mut pipe = redis::pipe();
                    for meta in batch {
                        pipe.hget(*meta, "last");
                    }
                    pipe.query_async(&mut c).await
                })
                .await?;
            ids.extend(page);
        }
    }
    Ok(ids
        .into_iter()
        .map(|id| id.and_then(|id| id.parse().ok()))
        .collect())
}

async fn read_last_id(redis: &Redis, meta: String) -> Result<Option<String>, Error> {
    redis
        .call(Op::Watchdog, |mut c| async move {
            redis::cmd("HGET")
                .arg(&meta)
                .arg("last")
                .query_async(&mut c)
                .await
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64) -> StreamId {
        format!("{ms}-0").parse().expect("a stream id")
    }

    fn applied(channel: &str, last: u64) -> Applied {
        Applied {
            channel: channel.into(),
            meta: format!("{channel}:meta"),
            last: id(last),
        }
    }

    #[test]
    fn rooms_behind_their_log_are_noted_with_the_log_head() {
        let rooms = [applied("a", 5), applied("b", 5), applied("c", 5)];
        let noted = ahead(&rooms, &[Some(id(5)), Some(id(7)), None]);
        assert_eq!(noted, HashMap::from([("b".to_string(), id(7))]));
    }

    #[test]
    fn a_room_is_repaired_only_when_still_behind_one_round_later() {
        let behind = HashMap::from([("a".to_string(), id(7)), ("b".to_string(), id(7))]);
        // `a` applied the entry meanwhile (its live message was in flight); `b` did not.
        assert_eq!(stale(&behind, &applied("a", 7)), None);
        assert_eq!(stale(&behind, &applied("b", 6)), Some(id(7)));
        assert_eq!(
            stale(&behind, &applied("c", 1)),
            None,
            "not noted last round"
        );
    }
}
