//! [`RedisBackend`]: the gateway's [`RoomBackend`] when `REDIS_URL` is set.

use crate::awareness;
use crate::client::Redis;
use crate::config::RedisConfig;
use crate::directory;
use crate::entry::{now_ms, StreamId};
use crate::error::Error;
use crate::feed::{self, Command};
use crate::keys::RoomKeys;
use crate::metrics::RedisMetrics;
use crate::op::Op;
use crate::pubsub::Subscriptions;
use crate::queue::{Queue, Thresholds, When};
use crate::stored;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use yws_core::{
    BackendError, Backlog, Claimed, LogPosition, NodeInfo, NodeReport, Room, RoomBackend, RoomName,
    RoomStats,
};
use yws_objects::ObjectStorage;

mod append;
mod gather;

/// Rooms shared by every gateway through Redis.
#[derive(Debug)]
pub struct RedisBackend {
    redis: Arc<Redis>,
    config: RedisConfig,
    node: String,
    subscriptions: Subscriptions,
    commands: mpsc::Sender<Command>,
    inflight: Semaphore,
    coalescer: append::Coalescer,
    gathered: gather::Gathered,
    up: watch::Receiver<bool>,
    awareness_timeout: Duration,
    storage: Option<ObjectStorage>,
}

impl RedisBackend {
    /// Connects (the pub/sub connection eagerly, the command pool lazily) and starts the
    /// dispatcher and the health check on `tracker`; they stop when `cancel` fires. With
    /// `storage`, rooms whose snapshot Redis does not hold load from it, and deletions delete
    /// their objects.
    pub async fn connect(
        config: RedisConfig,
        metrics: RedisMetrics,
        storage: Option<ObjectStorage>,
        awareness_timeout: Duration,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) -> Result<Arc<Self>, Error> {
        let node = format!("g{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff);
        let redis = Arc::new(Redis::new(&config, metrics)?);
        let (sink, commands, dispatcher) =
            feed::channel(node.clone(), redis.clone(), config.load_page_entries, 4096);
        let subscriptions = Subscriptions::connect(&config, redis.clone(), sink).await?;
        let (up_tx, up) = watch::channel(true);
        let backend = Arc::new(RedisBackend {
            redis: redis.clone(),
            node,
            subscriptions,
            commands,
            inflight: Semaphore::new(config.max_inflight_writes),
            coalescer: append::Coalescer::default(),
            gathered: gather::Gathered::default(),
            up,
            awareness_timeout,
            config,
            storage,
        });
        backend.redis.ping().await?;
        backend.redis.metrics.up.set(1);
        tracker.spawn(dispatcher.run(cancel.clone()));
        if backend.config.watchdog_interval_ms > 0 {
            let interval = Duration::from_millis(backend.config.watchdog_interval_ms);
            let watchdog =
                crate::watchdog::run(redis, backend.commands.clone(), interval, cancel.clone());
            tracker.spawn(watchdog);
        }
        if backend.config.awareness_window_ms > 0 {
            tracker.spawn(backend.clone().flush_awareness(cancel.clone()));
        }
        tracker.spawn(health(backend.clone(), up_tx, cancel.clone()));
        tracker.spawn(resubscribe(backend.clone(), cancel));
        tracing::info!(node = %backend.node, cluster = backend.redis.is_cluster(), prefix = %backend.redis.prefix(), "connected to redis");
        Ok(backend)
    }

    fn keys(&self, room: &Room) -> RoomKeys {
        RoomKeys::new(self.redis.prefix(), room.name().as_str())
    }

    async fn load_awareness(&self, room: &Room, keys: &RoomKeys) -> Result<(), BackendError> {
        let key = keys.awareness.clone();
        let hash: Vec<(String, String)> = self
            .redis
            .call(Op::LoadAwareness, |mut c| async move {
                redis::cmd("HGETALL").arg(&key).query_async(&mut c).await
            })
            .await?;
        let fresh_after = now_ms().saturating_sub(self.awareness_timeout.as_millis() as u64);
        let states = awareness::fresh_entries(&hash, fresh_after);
        if !states.is_empty() {
            let payload = yws_protocol::awareness::encode_entries(states);
            room.apply_remote_awareness(&payload)
                .map_err(|e| BackendError::Corrupt(e.to_string()))?;
        }
        Ok(())
    }

    fn thresholds(&self) -> Thresholds {
        Thresholds {
            after_ms: self.config.compact_after_ms,
            max_entries: self.config.compact_max_entries,
            max_bytes: self.config.compact_max_bytes,
        }
    }

    async fn schedule(&self, room: &Room, due_ms: u64, when: When) {
        let result = Queue::new(&self.redis)
            .set(room.name().as_str(), due_ms, when)
            .await;
        if let Err(e) = result {
            // The compactor's sweep finds logs without a task; nothing is lost.
            tracing::warn!(room = %room.name(), error = %e, "could not queue compaction");
        }
    }
}

/// Subscriptions renewed per round before a round gives up (each failure may take the command
/// timeout); the rest wait for the next round.
const RESUBSCRIBE_FAILURES_PER_ROUND: usize = 3;
/// Rounds in a row with failed renewals before the pub/sub connection is replaced.
const RECONNECT_AFTER_ROUNDS: u32 = 3;

/// Every second, renews the subscriptions of rooms that lost theirs (a slot that migrated, a
/// failover, a dropped connection); the dispatcher polls their logs meanwhile. When renewals
/// keep failing — a Redis Cluster connection still aiming at a dead master — the connection
/// is replaced by one built from the configured nodes.
async fn resubscribe(backend: Arc<RedisBackend>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing_rounds = 0u32;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if !backend.is_ready() {
            continue; // Redis is down: every room was closed; nothing to renew
        }
        let (reply, channels) = tokio::sync::oneshot::channel();
        if backend
            .commands
            .send(Command::Unsubscribed { reply })
            .await
            .is_err()
        {
            return;
        }
        let Ok(channels) = channels.await else {
            return;
        };
        let mut failures = 0;
        for channel in channels {
            match backend.subscriptions.resubscribe(&channel).await {
                Ok(true) => {
                    let _ = backend
                        .commands
                        .send(Command::Resubscribed { channel })
                        .await;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(channel, error = %e, "resubscribing failed; will retry");
                    failures += 1;
                    if failures >= RESUBSCRIBE_FAILURES_PER_ROUND {
                        break;
                    }
                }
            }
        }
        failing_rounds = if failures > 0 { failing_rounds + 1 } else { 0 };
        if failing_rounds >= RECONNECT_AFTER_ROUNDS {
            failing_rounds = 0;
            match backend.subscriptions.reconnect().await {
                Ok(channels) => tracing::warn!(channels, "redis pub/sub connection replaced (subscriptions kept failing); every room resubscribed"),
                Err(e) => tracing::warn!(error = %e, "could not replace the redis pub/sub connection; will retry"),
            }
        }
    }
}

/// Pings Redis; reports availability changes through `up`.
async fn health(backend: Arc<RedisBackend>, up: watch::Sender<bool>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(backend.config.health_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures = 0u32;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        match backend.redis.ping().await {
            Ok(()) => {
                failures = 0;
                if !*up.borrow() {
                    tracing::info!("redis is reachable again");
                    backend.redis.metrics.up.set(1);
                    let _ = up.send(true);
                    if backend.redis.sentinels().is_some() {
                        // The primary may have changed (a Sentinel failover): subscribe there.
                        if let Err(e) = backend.subscriptions.reconnect().await {
                            tracing::warn!(error = %e, "could not reconnect pub/sub to the primary; retrying");
                        }
                    }
                    backend.subscriptions.unsubscribe_orphans().await;
                }
            }
            Err(e) => {
                failures += 1;
                // Idle connections are not pinged when taken from the pool: after a failed
                // ping, none of them is trusted (a restarted or replaced server).
                backend.redis.drop_idle();
                if failures >= 2 && *up.borrow() {
                    tracing::error!(error = %e, "redis unreachable: not ready, closing clients so they reconnect");
                    backend.redis.metrics.up.set(0);
                    let _ = up.send(false);
                }
            }
        }
    }
}

#[async_trait]
impl RoomBackend for RedisBackend {
    async fn open(&self, room: &Arc<Room>) -> Result<(), BackendError> {
        let keys = self.keys(room);
        let register = Command::Register {
            channel: keys.channel.clone(),
            room: room.clone(),
        };
        self.commands
            .send(register)
            .await
            .map_err(|_| BackendError::Unavailable("dispatcher stopped".into()))?;
        let result = async {
            self.subscriptions.subscribe(room, &keys.channel).await?;
            let stored = stored::load_room(
                &self.redis,
                self.storage.as_ref(),
                &keys,
                room.name().as_str(),
                self.config.load_page_entries,
            )
            .await?;
            if let Some(snapshot) = &stored.snapshot {
                room.load_update(snapshot).map_err(|e| {
                    tracing::error!(room = %room.name(), error = %e, "snapshot unreadable");
                    BackendError::Corrupt(format!("snapshot: {e}"))
                })?;
            }
            for bad in &stored.skipped {
                self.redis.metrics.entries_skipped.with_label_values(&[bad.reason]).inc();
                tracing::warn!(room = %room.name(), id = ?bad.id, reason = bad.reason, "unreadable log entry skipped");
            }
            for entry in &stored.entries {
                if let Err(e) = room.load_update(&entry.update) {
                    self.redis.metrics.entries_skipped.with_label_values(&["bad_update"]).inc();
                    tracing::warn!(room = %room.name(), id = %entry.id, error = %e, "log entry could not be applied; skipped");
                }
            }
            self.load_awareness(room, &keys).await?;
            room.advance_position(stored.last.into());
            room.set_generation(stored.generation);
            Ok::<StreamId, BackendError>(stored.last)
        }
        .await;
        match result {
            Ok(last) => {
                let live = Command::Live {
                    channel: keys.channel,
                    room: room.clone(),
                    last,
                };
                self.commands
                    .send(live)
                    .await
                    .map_err(|_| BackendError::Unavailable("dispatcher stopped".into()))?;
                Ok(())
            }
            Err(e) => {
                self.close(room).await;
                Err(e)
            }
        }
    }

    async fn append(&self, room: &Room, update: &[u8]) -> Result<(), BackendError> {
        let _permit = tokio::time::timeout(self.redis.timeout(Op::Append), self.inflight.acquire())
            .await
            .map_err(|_| BackendError::Overloaded)?
            .map_err(|_| BackendError::Overloaded)?;
        if update.len() as u64 > self.config.inline_publish_bytes {
            // Published by reference, under the bulk timeout: written alone.
            return self
                .write(room, vec![update.to_vec()], Op::AppendLarge)
                .await;
        }
        self.append_coalesced(room, update).await
    }

    async fn publish_awareness(&self, room: &Room, payload: &[u8]) -> Result<(), BackendError> {
        self.share_awareness(self.keys(room), payload).await
    }

    async fn close(&self, room: &Arc<Room>) {
        let keys = self.keys(room);
        let unregister = Command::Unregister {
            channel: keys.channel.clone(),
            room: room.clone(),
        };
        let _ = self.commands.send(unregister).await;
        self.gathered.forget(&keys.channel);
        self.subscriptions
            .unsubscribe(room, &keys.channel, self.is_ready())
            .await;
    }

    async fn exists(&self, room: &RoomName) -> Result<bool, BackendError> {
        if directory::exists(&self.redis, room).await? {
            return Ok(true);
        }
        match &self.storage {
            Some(storage) => {
                let keys = RoomKeys::new(self.redis.prefix(), room.as_str());
                stored::exists_in_storage(&self.redis, storage, &keys, room.as_str()).await
            }
            None => Ok(false),
        }
    }

    async fn delete(&self, room: &RoomName) -> Result<(), BackendError> {
        // Redis first: the new deletion generation fences compactors (their lease is gone)
        // and cold loads (a deleted room never loads from storage), then the objects.
        directory::delete(&self.redis, &self.node, room).await?;
        match &self.storage {
            Some(storage) => stored::delete_objects(storage, room.as_str()).await,
            None => Ok(()),
        }
    }

    async fn list(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Option<u64>)>, BackendError> {
        Ok(directory::list(&self.redis, after, limit).await?)
    }

    async fn report_presence(&self, rooms: &[(RoomName, usize)]) -> Result<(), BackendError> {
        Ok(directory::report_presence(&self.redis, &self.node, rooms).await?)
    }

    async fn report_node(&self, info: &NodeInfo) -> Result<(), BackendError> {
        Ok(directory::report_node(&self.redis, &self.node, info).await?)
    }

    async fn nodes(&self) -> Result<Vec<NodeReport>, BackendError> {
        Ok(directory::nodes(&self.redis).await?)
    }

    async fn room_stats(&self, room: &RoomName) -> Result<Option<RoomStats>, BackendError> {
        Ok(Some(directory::room_stats(&self.redis, room).await?))
    }

    async fn backlog(&self) -> Result<Option<Backlog>, BackendError> {
        let depth = Queue::new(&self.redis).depth(now_ms()).await?;
        Ok(Some(Backlog {
            queued: depth.queued,
            due: depth.due,
        }))
    }

    async fn compact_now(&self, room: &RoomName) -> Result<bool, BackendError> {
        let queue = Queue::new(&self.redis);
        queue.set(room.as_str(), now_ms(), When::Always).await?;
        Ok(true)
    }

    async fn claim_callback(
        &self,
        room: &RoomName,
        position: Option<LogPosition>,
        window: Duration,
    ) -> Result<Claimed, BackendError> {
        let position = position.map(StreamId::from);
        Ok(directory::claim_callback(&self.redis, room, position, window).await?)
    }

    fn unload_grace(&self) -> Option<Duration> {
        Some(Duration::from_millis(self.config.unload_grace_ms))
    }

    fn is_ready(&self) -> bool {
        *self.up.borrow()
    }

    fn degraded(&self) -> usize {
        usize::try_from(self.redis.metrics.rooms_without_live_delivery.get()).unwrap_or(0)
    }

    fn availability(&self) -> Option<watch::Receiver<bool>> {
        Some(self.up.clone())
    }
}
