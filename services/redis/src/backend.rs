//! [`RedisBackend`]: the gateway's [`RoomBackend`] when `REDIS_URL` is set.

use crate::client::Redis;
use crate::config::{RedisConfig, Topology};
use crate::entry::{awareness_message, delete_message, now_ms, StreamId};
use crate::feed::{self, Command, PubSub, PushSink};
use crate::keys::{nodes_key, presence_key, queue_key, RoomKeys};
use crate::metrics::RedisMetrics;
use crate::{scripts, store};
use async_trait::async_trait;
use redis::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use yws_core::{BackendError, Claimed, Room, RoomBackend, RoomName};

/// A gateway's presence report expires unless renewed within this time.
pub const PRESENCE_TTL_MS: u64 = 15_000;
use yws_protocol::AwarenessUpdate;

/// Rooms shared by every gateway through Redis.
#[derive(Debug)]
pub struct RedisBackend {
    redis: Arc<Redis>,
    config: RedisConfig,
    node: String,
    pubsub: Arc<tokio::sync::Mutex<PubSubHandle>>,
    commands: mpsc::Sender<Command>,
    inflight: Semaphore,
    up: watch::Receiver<bool>,
    awareness_timeout: Duration,
}

/// The pub/sub connection and which room each subscription is for. Subscribing, deciding to
/// unsubscribe and unsubscribing all happen under one lock, so closing an old room can never
/// unsubscribe a newer room of the same name.
struct PubSubHandle {
    conn: PubSub,
    rooms: HashMap<String, Arc<Room>>,
    /// Channels left subscribed while Redis was down; unsubscribed when it is back.
    orphaned: HashSet<String>,
}

impl std::fmt::Debug for PubSubHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PubSub")
    }
}

impl RedisBackend {
    /// Connects (the pub/sub connection eagerly, the command pool lazily) and starts the
    /// dispatcher and the health check on `tracker`; they stop when `cancel` fires.
    pub async fn connect(
        config: RedisConfig,
        metrics: RedisMetrics,
        awareness_timeout: Duration,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) -> Result<Arc<Self>, BackendError> {
        let node = format!("g{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff);
        let redis = Arc::new(Redis::new(&config, metrics)?);
        let (sink, commands, dispatcher) =
            feed::channel(node.clone(), redis.clone(), config.load_page_entries, 4096);
        let pubsub = connect_pubsub(&config, sink).await?;
        let (up_tx, up) = watch::channel(true);
        let backend = Arc::new(RedisBackend {
            redis: redis.clone(),
            node,
            pubsub: Arc::new(tokio::sync::Mutex::new(PubSubHandle {
                conn: pubsub,
                rooms: HashMap::new(),
                orphaned: HashSet::new(),
            })),
            commands,
            inflight: Semaphore::new(config.max_inflight_writes),
            up,
            awareness_timeout,
            config,
        });
        backend.redis.ping().await?;
        backend.redis.metrics.up.set(1);
        tracker.spawn(dispatcher.run(cancel.clone()));
        tracker.spawn(health(backend.clone(), up_tx, cancel));
        tracing::info!(node = %backend.node, cluster = backend.redis.is_cluster(), prefix = %backend.redis.prefix(), "connected to redis");
        Ok(backend)
    }

    /// This node's id in log entries.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn keys(&self, room: &Room) -> RoomKeys {
        RoomKeys::new(self.redis.prefix(), room.name().as_str())
    }

    async fn subscribe(&self, room: &Arc<Room>, channel: &str) -> Result<(), BackendError> {
        let started = tokio::time::Instant::now();
        let mut pubsub = self.pubsub.lock().await;
        pubsub.rooms.insert(channel.to_string(), room.clone());
        pubsub.orphaned.remove(channel);
        let result = match tokio::time::timeout(
            self.redis.timeout(),
            pubsub.conn.subscribe(channel),
        )
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(BackendError::Unavailable(format!("subscribe: {e}"))),
            Err(_) => Err(BackendError::Timeout("subscribe")),
        };
        self.redis
            .metrics
            .command_seconds
            .with_label_values(&["subscribe"])
            .observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            self.redis
                .metrics
                .errors
                .with_label_values(&["subscribe"])
                .inc();
        }
        result
    }

    /// Unsubscribes `channel` unless a newer room of the same name uses it. While Redis is
    /// down the channel is only remembered (waiting on it would hold up every other room).
    async fn unsubscribe(&self, room: &Arc<Room>, channel: &str) {
        let mut pubsub = self.pubsub.lock().await;
        if pubsub
            .rooms
            .get(channel)
            .is_some_and(|r| Arc::ptr_eq(r, room))
        {
            pubsub.rooms.remove(channel);
        }
        if pubsub.rooms.contains_key(channel) {
            return;
        }
        if !self.is_ready() {
            pubsub.orphaned.insert(channel.to_string());
            return;
        }
        match tokio::time::timeout(self.redis.timeout(), pubsub.conn.unsubscribe(channel)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(channel, error = %e, "unsubscribe failed");
                pubsub.orphaned.insert(channel.to_string());
            }
            Err(_) => {
                pubsub.orphaned.insert(channel.to_string());
            }
        }
    }

    /// Unsubscribes channels whose rooms closed while Redis was down.
    async fn unsubscribe_orphans(&self) {
        let mut pubsub = self.pubsub.lock().await;
        let orphans: Vec<String> = pubsub.orphaned.drain().collect();
        for channel in orphans {
            if pubsub.rooms.contains_key(&channel) {
                continue;
            }
            if !matches!(
                tokio::time::timeout(self.redis.timeout(), pubsub.conn.unsubscribe(&channel)).await,
                Ok(Ok(()))
            ) {
                pubsub.orphaned.insert(channel);
            }
        }
    }

    async fn load_awareness(&self, room: &Room, keys: &RoomKeys) -> Result<(), BackendError> {
        let key = keys.awareness.clone();
        let fields: Vec<(String, String)> = self
            .redis
            .call("load", |mut c| async move {
                redis::cmd("HGETALL").arg(&key).query_async(&mut c).await
            })
            .await?;
        let fresh_after = now_ms().saturating_sub(self.awareness_timeout.as_millis() as u64);
        let mut states = Vec::new();
        for (client, value) in &fields {
            let mut parts = value.splitn(4, ' ');
            let (Some(clock), Some(ms), Some(_node), Some(state)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (Ok(client_id), Ok(clock), Ok(ms)) = (
                client.parse::<u64>(),
                clock.parse::<u64>(),
                ms.parse::<u64>(),
            ) else {
                continue;
            };
            if ms >= fresh_after {
                states.push(yws_protocol::AwarenessEntry {
                    client_id,
                    clock,
                    state,
                });
            }
        }
        if !states.is_empty() {
            let payload = yws_protocol::awareness::encode_entries(states);
            room.apply_remote_awareness(&payload)
                .map_err(|e| BackendError::Corrupt(e.to_string()))?;
        }
        Ok(())
    }

    async fn schedule(&self, room: &Room, due_ms: u64, mode: &'static str) {
        let key = queue_key(self.redis.prefix());
        let member = room.name().as_str().to_string();
        let result = self
            .redis
            .call("schedule", |mut c| async move {
                redis::cmd("ZADD")
                    .arg(&key)
                    .arg(mode)
                    .arg(due_ms)
                    .arg(&member)
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await;
        if let Err(e) = result {
            // The compactor's sweep finds logs without a task; nothing is lost.
            tracing::warn!(room = %room.name(), error = %e, "could not queue compaction");
        }
    }
}

async fn connect_pubsub(config: &RedisConfig, sink: PushSink) -> Result<PubSub, BackendError> {
    let unavailable = |e: redis::RedisError| BackendError::Unavailable(format!("pub/sub: {e}"));
    let timeout = Duration::from_millis(config.connect_timeout_ms);
    let push = move |info| {
        sink.push(info);
        Ok::<(), std::convert::Infallible>(())
    };
    let topology = config
        .topology()
        .map_err(|e| BackendError::Unavailable(e.to_string()))?;
    match topology {
        Topology::Single(url) => {
            let url = with_resp3(&url);
            let client = redis::Client::open(url).map_err(unavailable)?;
            let manager_config = redis::aio::ConnectionManagerConfig::new()
                .set_push_sender(push)
                .set_automatic_resubscription()
                .set_connection_timeout(Some(timeout))
                .set_max_delay(Duration::from_secs(2));
            let manager = tokio::time::timeout(
                timeout * 2,
                client.get_connection_manager_with_config(manager_config),
            )
            .await
            .map_err(|_| BackendError::Timeout("connect"))?
            .map_err(unavailable)?;
            Ok(PubSub::Single(manager))
        }
        Topology::Cluster(urls) => {
            let client = redis::cluster::ClusterClientBuilder::new(urls)
                .use_protocol(redis::ProtocolVersion::RESP3)
                .push_sender(push)
                .connection_timeout(timeout)
                .response_timeout(Duration::from_millis(config.command_timeout_ms))
                .build()
                .map_err(unavailable)?;
            let conn = tokio::time::timeout(timeout * 2, client.get_async_connection())
                .await
                .map_err(|_| BackendError::Timeout("connect"))?
                .map_err(unavailable)?;
            Ok(PubSub::Cluster(conn))
        }
    }
}

fn with_resp3(url: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}protocol=resp3")
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
                    backend.unsubscribe_orphans().await;
                }
            }
            Err(e) => {
                failures += 1;
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
            self.subscribe(room, &keys.channel).await?;
            let stored = store::load(&self.redis, &keys, self.config.load_page_entries).await?;
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
            room.advance_position((stored.last.ms, stored.last.seq));
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
        let permit = tokio::time::timeout(self.redis.timeout(), self.inflight.acquire())
            .await
            .map_err(|_| BackendError::Overloaded)?
            .map_err(|_| BackendError::Overloaded)?;
        self.redis.metrics.inflight_writes.inc();
        let keys = self.keys(room);
        let channel = keys.channel.clone();
        let (log, meta, snap) = (keys.log, keys.meta, keys.snap);
        let (node, publish) = (self.node.clone(), self.redis.publish_command());
        let update = update.to_vec();
        let len = update.len() as u64;
        let result = self
            .redis
            .call("append", |mut c| async move {
                scripts::APPEND
                    .key(&log)
                    .key(&meta)
                    .key(&snap)
                    .arg(update)
                    .arg(&node)
                    .arg(now_ms())
                    .arg(&channel)
                    .arg(publish)
                    .invoke_async::<(String, u64, u64, u8)>(&mut c)
                    .await
            })
            .await;
        self.redis.metrics.inflight_writes.dec();
        drop(permit);
        match result {
            Ok((id, entries, bytes, created)) => {
                if let Ok(id) = id.parse::<StreamId>() {
                    room.advance_position((id.ms, id.seq));
                }
                let c = &self.config;
                if created == 1 {
                    self.schedule(room, now_ms() + c.compact_after_ms, "NX")
                        .await;
                }
                let crossed_bytes =
                    bytes >= c.compact_max_bytes && bytes - len < c.compact_max_bytes;
                if entries == c.compact_max_entries || crossed_bytes {
                    self.schedule(room, now_ms(), "LT").await;
                }
                Ok(())
            }
            Err(e) => {
                // The write may still have happened: apply this node's own entries from the
                // log for this room from now on, so the local state cannot miss it.
                let own = Command::ApplyOwn {
                    channel: self.keys(room).channel,
                };
                let _ = self.commands.try_send(own);
                Err(e)
            }
        }
    }

    async fn publish_awareness(&self, room: &Room, payload: &[u8]) -> Result<(), BackendError> {
        let update =
            AwarenessUpdate::decode(payload).map_err(|e| BackendError::Corrupt(e.to_string()))?;
        let keys = self.keys(room);
        let now = now_ms();
        let message = awareness_message(&self.node, now, payload);
        let ttl = (self.awareness_timeout.as_millis() as u64).saturating_mul(2);
        let stale_before = now.saturating_sub(self.awareness_timeout.as_millis() as u64);
        let mut fields: Vec<(String, String)> = Vec::with_capacity(update.entries.len());
        for e in &update.entries {
            let value = if e.is_removal() {
                String::new()
            } else {
                format!("{} {now} {} {}", e.clock, self.node, e.state)
            };
            fields.push((e.client_id.to_string(), value));
        }
        let (key, channel, publish) = (keys.awareness, keys.channel, self.redis.publish_command());
        self.redis
            .call("awareness", |mut c| async move {
                let mut invocation = scripts::AWARENESS.key(&key);
                invocation
                    .arg(&channel)
                    .arg(publish)
                    .arg(message)
                    .arg(ttl)
                    .arg(stale_before);
                for (client, value) in &fields {
                    invocation.arg(client).arg(value);
                }
                invocation.invoke_async::<Value>(&mut c).await.map(|_| ())
            })
            .await
    }

    async fn close(&self, room: &Arc<Room>) {
        let keys = self.keys(room);
        let unregister = Command::Unregister {
            channel: keys.channel.clone(),
            room: room.clone(),
        };
        let _ = self.commands.send(unregister).await;
        self.unsubscribe(room, &keys.channel).await;
    }

    async fn exists(&self, room: &RoomName) -> Result<bool, BackendError> {
        let keys = RoomKeys::new(self.redis.prefix(), room.as_str());
        let (log, snap) = (keys.log, keys.snap);
        let n: u64 = self
            .redis
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

    async fn delete(&self, room: &RoomName) -> Result<(), BackendError> {
        let k = RoomKeys::new(self.redis.prefix(), room.as_str());
        let message = delete_message(&self.node);
        let publish = self.redis.publish_command();
        self.redis
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
        let (queue, member) = (queue_key(self.redis.prefix()), room.as_str().to_string());
        self.redis
            .call("schedule", |mut c| async move {
                redis::cmd("ZREM")
                    .arg(&queue)
                    .arg(&member)
                    .query_async::<i64>(&mut c)
                    .await
                    .map(|_| ())
            })
            .await
    }

    async fn list(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Option<u64>)>, BackendError> {
        let nodes_key = nodes_key(self.redis.prefix());
        let alive_since = now_ms().saturating_sub(PRESENCE_TTL_MS);
        let nodes: Vec<String> = self
            .redis
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
            let key = presence_key(self.redis.prefix(), &node);
            let rooms: Vec<(String, u64)> = self
                .redis
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

    async fn report_presence(&self, rooms: &[(RoomName, usize)]) -> Result<(), BackendError> {
        let key = presence_key(self.redis.prefix(), &self.node);
        let fields: Vec<(String, usize)> = rooms
            .iter()
            .map(|(r, n)| (r.as_str().to_string(), *n))
            .collect();
        self.redis
            .call("schedule", |mut c| async move {
                let mut pipe = redis::pipe();
                pipe.atomic().del(&key);
                if !fields.is_empty() {
                    pipe.hset_multiple(&key, &fields);
                }
                pipe.pexpire(&key, PRESENCE_TTL_MS as i64);
                pipe.query_async::<()>(&mut c).await
            })
            .await?;
        let (nodes, node, now) = (nodes_key(self.redis.prefix()), self.node.clone(), now_ms());
        self.redis
            .call("schedule", |mut c| async move {
                redis::pipe()
                    .zadd(&nodes, &node, now)
                    .zrembyscore(&nodes, "-inf", now.saturating_sub(PRESENCE_TTL_MS * 4))
                    .query_async::<()>(&mut c)
                    .await
            })
            .await
    }

    async fn claim_callback(
        &self,
        room: &RoomName,
        position: Option<(u64, u64)>,
        window: Duration,
    ) -> Result<Claimed, BackendError> {
        let key = RoomKeys::new(self.redis.prefix(), room.as_str()).callback;
        let (ms, seq) = position.unwrap_or((0, 0));
        let position = format!("{ms}-{seq}");
        let window_ms = window.as_millis().max(1) as u64;
        let answer: i64 = self
            .redis
            .call("schedule", |mut c| async move {
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

    fn unload_grace(&self) -> Option<Duration> {
        Some(Duration::from_millis(self.config.unload_grace_ms))
    }

    fn is_ready(&self) -> bool {
        *self.up.borrow()
    }

    fn availability(&self) -> Option<watch::Receiver<bool>> {
        Some(self.up.clone())
    }
}
