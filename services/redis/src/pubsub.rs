//! The pub/sub side of [`RedisBackend`](crate::RedisBackend): one connection per node (per
//! shard in a cluster), where its pushes go (a bounded queue to the dispatcher; on overflow, a
//! set of channels to catch up), which room each subscription is for, and the subscribe /
//! unsubscribe rules that keep a newer room of the same name subscribed.

use crate::client::Redis;
use crate::config::{RedisConfig, Topology};
use crate::entry::now_ms;
use crate::error::Error;
use crate::feed::Command;
use crate::op::Op;
use parking_lot::Mutex;
use redis::{PushInfo, PushKind, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use yws_core::Room;

/// The pub/sub connection.
#[allow(
    missing_debug_implementations,
    reason = "wraps redis connections, which are not Debug"
)]
pub(crate) enum PubSub {
    Single(redis::aio::ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl PubSub {
    pub(crate) async fn subscribe(&mut self, channel: &str) -> redis::RedisResult<()> {
        match self {
            PubSub::Single(c) => c.subscribe(channel).await,
            PubSub::Cluster(c) => c.ssubscribe(channel).await,
        }
    }

    pub(crate) async fn unsubscribe(&mut self, channel: &str) -> redis::RedisResult<()> {
        match self {
            PubSub::Single(c) => c.unsubscribe(channel).await,
            PubSub::Cluster(c) => c.sunsubscribe(channel).await,
        }
    }
}

/// Where pushes from the Redis connection go: a bounded queue, and when it is full, a set of
/// channels to catch up from the log (so nothing is lost, only delayed).
#[derive(Debug, Clone)]
pub(crate) struct PushSink {
    tx: mpsc::Sender<Command>,
    overflow: Arc<Mutex<HashSet<String>>>,
    notify: Arc<Notify>,
}

impl PushSink {
    pub(crate) fn new(
        tx: mpsc::Sender<Command>,
        overflow: Arc<Mutex<HashSet<String>>>,
        notify: Arc<Notify>,
    ) -> Self {
        PushSink {
            tx,
            overflow,
            notify,
        }
    }

    pub(crate) fn push(&self, info: PushInfo) {
        let channel = |data: &[Value]| match data.first() {
            Some(Value::BulkString(b)) => String::from_utf8(b.clone()).ok(),
            _ => None,
        };
        let command = match info.kind {
            PushKind::Message | PushKind::SMessage => {
                let Some(channel) = channel(&info.data) else {
                    return;
                };
                // The payload is moved out of the push, never copied.
                let mut data = info.data;
                let Some(Value::BulkString(payload)) = data.get_mut(1).map(std::mem::take) else {
                    return;
                };
                Command::Message {
                    channel,
                    payload,
                    received_ms: now_ms(),
                }
            }
            PushKind::Subscribe | PushKind::SSubscribe => match channel(&info.data) {
                Some(channel) => Command::Resubscribed { channel },
                None => return,
            },
            PushKind::Unsubscribe | PushKind::SUnsubscribe => match channel(&info.data) {
                Some(channel) => Command::Dropped { channel },
                None => return,
            },
            PushKind::Disconnection => Command::Disconnected,
            _ => return,
        };
        if let Err(mpsc::error::TrySendError::Full(command)) = self.tx.try_send(command) {
            match command {
                Command::Message { channel, .. }
                | Command::Resubscribed { channel }
                | Command::Dropped { channel } => {
                    self.overflow.lock().insert(channel);
                }
                _ => {
                    self.overflow.lock().insert(String::new());
                }
            }
            self.notify.notify_one();
        }
    }
}

/// The pub/sub connection and which room each subscription is for. Subscribing, deciding to
/// unsubscribe and unsubscribing all happen under one lock, so closing an old room can never
/// unsubscribe a newer room of the same name.
struct Inner {
    conn: PubSub,
    rooms: HashMap<String, Arc<Room>>,
    /// Channels left subscribed while Redis was down; unsubscribed when it is back.
    orphaned: HashSet<String>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PubSub")
    }
}

/// The subscriptions of this node.
#[derive(Debug)]
pub(crate) struct Subscriptions {
    inner: tokio::sync::Mutex<Inner>,
    redis: Arc<Redis>,
    /// What a new connection needs (see [`Subscriptions::reconnect`]).
    config: RedisConfig,
    sink: PushSink,
}

impl Subscriptions {
    /// Connects the pub/sub connection; pushes go to `sink`.
    pub(crate) async fn connect(
        config: &RedisConfig,
        redis: Arc<Redis>,
        sink: PushSink,
    ) -> Result<Self, Error> {
        let conn = connect_pubsub(config, sink.clone()).await?;
        Ok(Subscriptions {
            inner: tokio::sync::Mutex::new(Inner {
                conn,
                rooms: HashMap::new(),
                orphaned: HashSet::new(),
            }),
            redis,
            config: config.clone(),
            sink,
        })
    }

    /// Subscribes `channel` again if a room still uses it: `Ok(true)` when subscribed,
    /// `Ok(false)` when no room wants it any more.
    pub(crate) async fn resubscribe(&self, channel: &str) -> Result<bool, Error> {
        let mut pubsub = self.inner.lock().await;
        if !pubsub.rooms.contains_key(channel) {
            return Ok(false);
        }
        let op = Op::Subscribe;
        match tokio::time::timeout(self.redis.timeout(op), pubsub.conn.subscribe(channel)).await {
            Ok(Ok(())) => Ok(true),
            Ok(Err(e)) => Err(Error::Failed {
                op,
                message: e.to_string(),
            }),
            Err(_) => Err(Error::Timeout(op)),
        }
    }

    /// Replaces the pub/sub connection with a new one built from the configured nodes (a
    /// Redis Cluster connection whose view of the topology went stale after a failover keeps
    /// retrying the dead node), and subscribes every room's channel on it. Returns the number
    /// of channels subscribed.
    pub(crate) async fn reconnect(&self) -> Result<usize, Error> {
        let conn = connect_pubsub(&self.config, self.sink.clone()).await?;
        let mut pubsub = self.inner.lock().await;
        pubsub.conn = conn;
        pubsub.orphaned.clear();
        let channels: Vec<String> = pubsub.rooms.keys().cloned().collect();
        let mut subscribed = 0;
        for channel in &channels {
            let op = Op::Subscribe;
            let result =
                tokio::time::timeout(self.redis.timeout(op), pubsub.conn.subscribe(channel)).await;
            if matches!(result, Ok(Ok(()))) {
                subscribed += 1;
            }
        }
        Ok(subscribed)
    }

    pub(crate) async fn subscribe(&self, room: &Arc<Room>, channel: &str) -> Result<(), Error> {
        let started = tokio::time::Instant::now();
        let mut pubsub = self.inner.lock().await;
        // An older room of this name that is still loading never displaces a newer one.
        if pubsub
            .rooms
            .get(channel)
            .is_none_or(|r| r.instance() <= room.instance())
        {
            pubsub.rooms.insert(channel.to_string(), room.clone());
        }
        pubsub.orphaned.remove(channel);
        let op = Op::Subscribe;
        let result = match tokio::time::timeout(
            self.redis.timeout(op),
            pubsub.conn.subscribe(channel),
        )
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Failed {
                op,
                message: e.to_string(),
            }),
            Err(_) => Err(Error::Timeout(op)),
        };
        self.redis.metrics.observe(op, started.elapsed());
        if result.is_err() {
            self.redis.metrics.failed(op);
        }
        result
    }

    /// Unsubscribes `channel` unless a newer room of the same name uses it. While Redis is
    /// down the channel is only remembered (waiting on it would hold up every other room).
    pub(crate) async fn unsubscribe(&self, room: &Arc<Room>, channel: &str, up: bool) {
        let mut pubsub = self.inner.lock().await;
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
        if !up {
            pubsub.orphaned.insert(channel.to_string());
            return;
        }
        match tokio::time::timeout(
            self.redis.timeout(Op::Subscribe),
            pubsub.conn.unsubscribe(channel),
        )
        .await
        {
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
    pub(crate) async fn unsubscribe_orphans(&self) {
        let mut pubsub = self.inner.lock().await;
        let orphans: Vec<String> = pubsub.orphaned.drain().collect();
        for channel in orphans {
            if pubsub.rooms.contains_key(&channel) {
                continue;
            }
            if !matches!(
                tokio::time::timeout(
                    self.redis.timeout(Op::Subscribe),
                    pubsub.conn.unsubscribe(&channel)
                )
                .await,
                Ok(Ok(()))
            ) {
                pubsub.orphaned.insert(channel);
            }
        }
    }
}

async fn connect_pubsub(config: &RedisConfig, sink: PushSink) -> Result<PubSub, Error> {
    let unavailable = |e: redis::RedisError| Error::Connect(format!("pub/sub: {e}"));
    let timeout = Duration::from_millis(config.connect_timeout_ms);
    let timed_out = |_| Error::Connect(format!("pub/sub: no connection within {:?}", timeout * 2));
    let push = move |info| {
        sink.push(info);
        Ok::<(), std::convert::Infallible>(())
    };
    let topology = config
        .topology()
        .map_err(|e| Error::Connect(e.to_string()))?;
    // Through Sentinel: the primary named now (a reconnect after a failover asks again).
    let topology = match topology {
        Topology::Sentinel(sentinels) => Topology::Single(sentinels.primary_url(timeout).await?),
        other => other,
    };
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
            .map_err(timed_out)?
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
                .map_err(timed_out)?
                .map_err(unavailable)?;
            Ok(PubSub::Cluster(conn))
        }
        Topology::Sentinel(_) => Err(Error::Connect("sentinel resolved above".into())),
    }
}

/// `url` with `protocol=resp3` added to its query (before any `#insecure` fragment).
fn with_resp3(url: &str) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((base, fragment)) => (base, format!("#{fragment}")),
        None => (url, String::new()),
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}protocol=resp3{fragment}")
}

#[cfg(test)]
mod tests {
    use super::with_resp3;

    #[test]
    fn resp3_goes_into_the_query() {
        assert_eq!(with_resp3("redis://h:1"), "redis://h:1?protocol=resp3");
        assert_eq!(
            with_resp3("redis://h:1/0?x=1"),
            "redis://h:1/0?x=1&protocol=resp3"
        );
        assert_eq!(
            with_resp3("rediss://h:1/#insecure"),
            "rediss://h:1/?protocol=resp3#insecure"
        );
    }
}
