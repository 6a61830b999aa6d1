//! Live delivery of other nodes' changes to the rooms this node serves.
//!
//! One pub/sub connection per node (per shard in a Redis Cluster, where sharded pub/sub keeps
//! a room's messages on its shard) carries every room's channel — never a connection per room.
//! Each update message names the log entry before it, so a gap (a message lost while a
//! connection dropped, a queue overflow, the moment between loading and subscribing) is
//! detected and closed by reading the log from the last applied id. One dispatcher task owns
//! the per-room sequence state, so deliveries of a room are applied in log order.

use crate::client::Redis;
use crate::entry::{LiveMessage, StreamId};
use crate::keys::RoomKeys;
use crate::pubsub::PushSink;
use crate::reader::LogEntry;
use crate::watchdog::Applied;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

mod apply;
mod liveness;
use apply::apply;
use yws_core::Room;

/// Buffered live messages per room while it loads; beyond this it catches up from the log.
const LOADING_BUFFER: usize = 1024;

/// What the dispatcher is asked to do.
#[derive(Debug)]
pub(crate) enum Command {
    Register {
        channel: String,
        room: Arc<Room>,
    },
    Live {
        channel: String,
        room: Arc<Room>,
        last: StreamId,
    },
    Unregister {
        channel: String,
        room: Arc<Room>,
    },
    Message {
        channel: String,
        payload: Vec<u8>,
        /// When it arrived from Redis (wall-clock ms), for the read lag.
        received_ms: u64,
    },
    Resubscribed {
        channel: String,
    },
    Disconnected,
    /// A write of this node to the room failed without a known outcome: it may be in the log
    /// after `since` (the room's position when the write started), unapplied here.
    ApplyOwn {
        channel: String,
        since: StreamId,
    },
    /// The convergence watchdog asks what every live room applied.
    Audit {
        reply: oneshot::Sender<Vec<Applied>>,
    },
    /// The watchdog found the room behind its log (at `logged`) for a whole round.
    Repair {
        channel: String,
        logged: StreamId,
    },
    /// The server ended a channel's subscription (a slot migration, a failover), or confirmed
    /// that this node ended it.
    Dropped {
        channel: String,
    },
    /// The resubscriber asks which live rooms have no subscription.
    Unsubscribed {
        reply: oneshot::Sender<Vec<String>>,
    },
}

#[derive(Debug)]
struct Pending {
    prev: StreamId,
    id: StreamId,
    node: String,
    ms: u64,
    /// `None`: published by reference, to be read from the log.
    update: Option<Vec<u8>>,
    received_ms: u64,
}

#[derive(Debug)]
struct Sub {
    room: Arc<Room>,
    keys: RoomKeys,
    last: StreamId,
    live: bool,
    buffer: Vec<Pending>,
    overflowed: bool,
    apply_own: bool,
    needs_catch_up: bool,
    /// A deletion seen while loading: copies loaded below this generation are stale.
    deleted: Option<u64>,
    /// Whether the channel's subscription is known to work; while not, the log is polled.
    subscribed: bool,
    /// Since when polling the log has been failing while unsubscribed.
    failing_since: Option<tokio::time::Instant>,
    /// Own entries after this id may have been skipped as "applied when written" although
    /// their write failed here (a timeout after Redis ran it): they are read back from the log.
    own_unsure_since: Option<StreamId>,
}

/// The dispatcher: owns per-room sequencing.
pub(crate) struct Dispatcher {
    node: String,
    redis: Arc<Redis>,
    page: usize,
    subs: HashMap<String, Sub>,
    rx: mpsc::Receiver<Command>,
    overflow: Arc<Mutex<HashSet<String>>>,
    notify: Arc<Notify>,
}

/// Builds the queue between the Redis connection and the dispatcher.
pub(crate) fn channel(
    node: String,
    redis: Arc<Redis>,
    page: usize,
    capacity: usize,
) -> (PushSink, mpsc::Sender<Command>, Dispatcher) {
    let (tx, rx) = mpsc::channel(capacity);
    let overflow = Arc::new(Mutex::new(HashSet::new()));
    let notify = Arc::new(Notify::new());
    let sink = PushSink::new(tx.clone(), overflow.clone(), notify.clone());
    let dispatcher = Dispatcher {
        node,
        redis,
        page,
        subs: HashMap::new(),
        rx,
        overflow,
        notify,
    };
    (sink, tx, dispatcher)
}

impl Dispatcher {
    /// Runs until `cancel` fires.
    pub(crate) async fn run(mut self, cancel: CancellationToken) {
        let mut repair = tokio::time::interval(Duration::from_secs(1));
        repair.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                command = self.rx.recv() => match command {
                    Some(command) => self.handle(command).await,
                    None => return,
                },
                _ = self.notify.notified() => {
                    let channels: Vec<String> = self.overflow.lock().drain().collect();
                    for channel in channels {
                        if channel.is_empty() {
                            self.mark_all();
                        } else {
                            self.catch_up(&channel).await;
                        }
                    }
                }
                _ = repair.tick() => self.repair().await,
            }
        }
    }

    fn mark_all(&mut self) {
        for sub in self.subs.values_mut() {
            sub.needs_catch_up = true;
            sub.subscribed = false;
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Register { channel, room } => {
                if self
                    .subs
                    .get(&channel)
                    .is_some_and(|s| s.room.instance() > room.instance())
                {
                    return; // a newer room of this name registered first: it stays
                }
                let keys = RoomKeys::new(self.redis.prefix(), room.name().as_str());
                self.subs.insert(
                    channel,
                    Sub {
                        room,
                        keys,
                        last: StreamId::ZERO,
                        live: false,
                        buffer: Vec::new(),
                        overflowed: false,
                        apply_own: false,
                        needs_catch_up: false,
                        deleted: None,
                        subscribed: true,
                        failing_since: None,
                        own_unsure_since: None,
                    },
                );
            }
            Command::Live {
                channel,
                room,
                last,
            } => {
                let Some(sub) = self
                    .subs
                    .get_mut(&channel)
                    .filter(|s| Arc::ptr_eq(&s.room, &room))
                else {
                    return;
                };
                sub.live = true;
                sub.last = last;
                if sub.deleted.take().is_some_and(|g| room.generation() < g) {
                    tracing::info!(room = %room.name(), "room deleted while it loaded; closing its connections");
                    room.retire();
                }
                let buffered = std::mem::take(&mut sub.buffer);
                if std::mem::take(&mut sub.overflowed) {
                    self.catch_up(&channel).await;
                }
                for p in buffered {
                    self.update(&channel, p).await;
                }
            }
            Command::Unregister { channel, room } => {
                if self
                    .subs
                    .get(&channel)
                    .is_some_and(|s| Arc::ptr_eq(&s.room, &room))
                {
                    self.subs.remove(&channel);
                }
            }
            Command::Message {
                channel,
                payload,
                received_ms,
            } => self.message(&channel, &payload, received_ms).await,
            Command::Resubscribed { channel } => self.resubscribed(&channel).await,
            Command::Dropped { channel } => self.dropped(&channel),
            Command::Unsubscribed { reply } => {
                let channels = self
                    .subs
                    .iter()
                    .filter(|(_, s)| !s.subscribed)
                    .map(|(c, _)| c.clone())
                    .collect();
                let _ = reply.send(channels);
            }
            Command::Disconnected => {
                tracing::warn!(
                    "redis pub/sub connection lost; rooms catch up from their logs when it is back"
                );
                self.mark_all();
            }
            Command::ApplyOwn { channel, since } => {
                if let Some(sub) = self.subs.get_mut(&channel) {
                    sub.apply_own = true;
                    sub.own_unsure_since =
                        Some(sub.own_unsure_since.map_or(since, |s| s.min(since)));
                }
                self.reapply_own(&channel).await;
            }
            Command::Audit { reply } => {
                let applied = self
                    .subs
                    .iter()
                    .filter(|(_, s)| s.live)
                    .map(|(channel, s)| Applied {
                        channel: channel.clone(),
                        meta: s.keys.meta.clone(),
                        last: s.last,
                    })
                    .collect();
                let _ = reply.send(applied);
            }
            Command::Repair { channel, logged } => {
                let Some(sub) = self.subs.get(&channel).filter(|s| s.last < logged) else {
                    return;
                };
                self.redis.metrics.watchdog_repairs.inc();
                tracing::warn!(room = %sub.room.name(), applied = %sub.last, logged = %logged, "watchdog: the room was behind its log without a gap being seen; catching up");
                self.catch_up(&channel).await;
            }
        }
    }

    async fn message(&mut self, channel: &str, payload: &[u8], received_ms: u64) {
        let metrics = &self.redis.metrics;
        let message = match LiveMessage::parse(payload) {
            Ok(m) => m,
            Err(e) => {
                metrics
                    .entries_skipped
                    .with_label_values(&["bad_message"])
                    .inc();
                tracing::warn!(channel, reason = e.0, "unreadable live message skipped");
                return;
            }
        };
        match message {
            LiveMessage::Update {
                prev,
                id,
                node,
                ms,
                update,
            } => {
                // This node's own entries are applied when written: their bytes are not
                // copied (should they be needed after all, they are read from the log).
                let own = node == self.node && self.subs.get(channel).is_some_and(|s| !s.apply_own);
                let pending = Pending {
                    prev,
                    id,
                    node: node.to_string(),
                    ms,
                    update: (!own).then(|| update.to_vec()),
                    received_ms,
                };
                self.update(channel, pending).await;
            }
            LiveMessage::Reference { prev, id, node, ms } => {
                let pending = Pending {
                    prev,
                    id,
                    node: node.to_string(),
                    ms,
                    update: None,
                    received_ms,
                };
                self.update(channel, pending).await;
            }
            LiveMessage::Delete { node, generation } => {
                // Copies loaded at `generation` or later hold the room after the deletion (an
                // old-format message without one makes every copy stale). This node's own
                // deletions count too: a copy may have loaded here while it ran.
                let stale_below = generation.unwrap_or(u64::MAX);
                let Some(sub) = self.subs.get_mut(channel) else {
                    return;
                };
                if !sub.live {
                    sub.deleted = sub.deleted.max(Some(stale_below)); // decided once loaded
                } else if sub.room.generation() < stale_below {
                    tracing::info!(room = %sub.room.name(), by = node, "room deleted; closing its connections");
                    sub.room.retire();
                }
            }
            LiveMessage::Awareness { node, payload, .. } => {
                if node == self.node {
                    return;
                }
                if let Some(sub) = self.subs.get(channel) {
                    if let Err(e) = sub.room.apply_remote_awareness(payload) {
                        metrics
                            .entries_skipped
                            .with_label_values(&["bad_awareness"])
                            .inc();
                        tracing::warn!(room = %sub.room.name(), error = %e, "unreadable awareness message skipped");
                    }
                }
            }
        }
    }

    async fn update(&mut self, channel: &str, p: Pending) {
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        if !sub.live {
            if sub.buffer.len() < LOADING_BUFFER {
                sub.buffer.push(p);
            } else {
                sub.overflowed = true;
            }
            return;
        }
        if p.id <= sub.last {
            return; // already applied (loaded, or read while catching up)
        }
        if p.prev != sub.last {
            self.catch_up(channel).await;
            return;
        }
        // This node's own entries are applied when written: their bytes are not needed.
        let own = p.node == self.node && !sub.apply_own;
        let Some(update) = p.update.or_else(|| own.then(Vec::new)) else {
            // Published by reference (too large to publish inline): read it from the log.
            self.catch_up(channel).await;
            return;
        };
        let entry = LogEntry {
            id: p.id,
            update,
            node: p.node,
            ms: p.ms,
        };
        if apply(&self.node, &self.redis, sub, &entry, p.received_ms) {
            sub.last = p.id;
        } else {
            // A live message is only a hint; the log decides. Read the entry from there (a
            // corrupt one is stepped over by its real id) instead of trusting this id.
            self.catch_up(channel).await;
        }
    }
}
