//! Pooled Redis connections (deadpool-redis; a single server, a Redis Cluster, or a primary
//! found through Redis Sentinel) with a timeout and metrics around every call.

use crate::config::{RedisConfig, Topology};
use crate::error::Error;
use crate::metrics::RedisMetrics;
use crate::op::{Op, Timeout};
use crate::pool::{Lean, LeanConn, LeanPool};
use crate::sentinel::Sentinels;
use deadpool_redis::{PoolConfig, Runtime, Timeouts};
use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

enum Pool {
    Single(LeanPool<deadpool_redis::Manager>),
    Cluster(LeanPool<deadpool_redis::cluster::Manager>),
    /// New connections go to the primary the Sentinels name at that moment.
    Sentinel(LeanPool<deadpool_redis::sentinel::Manager>),
}

impl Pool {
    fn build<M: deadpool::managed::Manager>(
        manager: M,
        config: PoolConfig,
    ) -> Result<LeanPool<M>, String> {
        LeanPool::builder(Lean(manager))
            .config(config)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| e.to_string())
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Pool::Single(_) => "Pool::Single",
            Pool::Cluster(_) => "Pool::Cluster",
            Pool::Sentinel(_) => "Pool::Sentinel",
        })
    }
}

/// The pool of a Sentinel deployment: new connections go to the primary the Sentinels name;
/// credentials, database and TLS of the primary come from the template (`redis.url`).
fn sentinel_pool(
    sentinels: &Sentinels,
    pool_config: PoolConfig,
) -> Result<LeanPool<deadpool_redis::sentinel::Manager>, String> {
    use deadpool_redis::sentinel::TlsMode;
    use deadpool_redis::sentinel::{Manager, SentinelNodeConnectionInfo, SentinelServerType};
    use redis::IntoConnectionInfo;
    let mut node = SentinelNodeConnectionInfo {
        tls_mode: None,
        redis_connection_info: None,
    };
    if let Some(template) = &sentinels.template {
        let info = template
            .as_str()
            .into_connection_info()
            .map_err(|e| format!("redis.url: {e}"))?;
        node.redis_connection_info = Some(info.redis_settings().clone().into());
        if let redis::ConnectionAddr::TcpTls { insecure, .. } = info.addr() {
            node.tls_mode = Some(if *insecure {
                TlsMode::Insecure
            } else {
                TlsMode::Secure
            });
        }
    }
    let manager = Manager::new(
        sentinels.sentinels.iter().map(String::as_str).collect(),
        sentinels.master.clone(),
        Some(node),
        SentinelServerType::Master,
    )
    .map_err(|e| e.to_string())?;
    Pool::build(manager, pool_config)
}

/// A pooled connection to either kind of deployment.
#[allow(
    missing_debug_implementations,
    reason = "wraps redis connections, which are not Debug"
)]
pub enum Conn {
    /// One server.
    Single(LeanConn<deadpool_redis::Manager>),
    /// A cluster (routes by key slot).
    Cluster(LeanConn<deadpool_redis::cluster::Manager>),
    /// The primary named by Redis Sentinel.
    Sentinel(LeanConn<deadpool_redis::sentinel::Manager>),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Sentinel(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Sentinel(c) => c.get_db(),
        }
    }
}

/// The Redis client: a connection pool, a per-call timeout, metrics.
#[derive(Debug)]
pub struct Redis {
    pool: Pool,
    timeout: Duration,
    bulk_timeout: Duration,
    prefix: String,
    cluster: bool,
    /// The Sentinels, when the primary is found through them.
    sentinels: Option<Sentinels>,
    /// Client metrics.
    pub metrics: RedisMetrics,
}

impl Redis {
    /// Builds the pool (connections are opened lazily).
    pub fn new(config: &RedisConfig, metrics: RedisMetrics) -> Result<Self, Error> {
        let unavailable = |e: String| Error::Connect(e);
        let timeout = Duration::from_millis(config.command_timeout_ms);
        let bulk_timeout =
            Duration::from_millis(config.bulk_timeout_ms.max(config.command_timeout_ms));
        let connect = Duration::from_millis(config.connect_timeout_ms);
        let pool_config = PoolConfig {
            max_size: config.pool_size,
            timeouts: Timeouts {
                wait: Some(timeout),
                create: Some(connect),
                recycle: Some(timeout),
            },
            ..PoolConfig::default()
        };
        let topology = config.topology().map_err(|e| unavailable(e.to_string()))?;
        let sentinels = match &topology {
            Topology::Sentinel(s) => Some(s.clone()),
            _ => None,
        };
        let (pool, cluster) = match topology {
            Topology::Single(url) => {
                let manager = deadpool_redis::Manager::new(url.as_str())
                    .map_err(|e| unavailable(e.to_string()))?;
                let pool = Pool::build(manager, pool_config).map_err(unavailable)?;
                (Pool::Single(pool), false)
            }
            Topology::Cluster(urls) => {
                let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
                let manager = deadpool_redis::cluster::Manager::new(urls, false)
                    .map_err(|e| unavailable(e.to_string()))?;
                let pool = Pool::build(manager, pool_config).map_err(unavailable)?;
                (Pool::Cluster(pool), true)
            }
            Topology::Sentinel(sentinels) => {
                let pool = sentinel_pool(&sentinels, pool_config).map_err(unavailable)?;
                (Pool::Sentinel(pool), false)
            }
        };
        Ok(Redis {
            pool,
            timeout,
            bulk_timeout,
            prefix: config.prefix.clone(),
            cluster,
            sentinels,
            metrics,
        })
    }

    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// The Sentinels, when the primary is found through them.
    pub fn sentinels(&self) -> Option<&Sentinels> {
        self.sentinels.as_ref()
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// How long a call of `op` may take.
    pub fn timeout(&self, op: Op) -> Duration {
        match op.timeout() {
            Timeout::Command => self.timeout,
            Timeout::Bulk => self.bulk_timeout,
        }
    }

    /// The publish command scripts use: sharded pub/sub in a cluster (stays on the room's
    /// shard), plain pub/sub on a single server.
    pub fn publish_command(&self) -> &'static str {
        if self.cluster {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    async fn conn(&self) -> RedisResult<Conn> {
        let io = |e: String| redis::RedisError::from(std::io::Error::other(e));
        match &self.pool {
            Pool::Single(p) => p
                .get()
                .await
                .map(Conn::Single)
                .map_err(|e| io(e.to_string())),
            Pool::Cluster(p) => p
                .get()
                .await
                .map(Conn::Cluster)
                .map_err(|e| io(e.to_string())),
            Pool::Sentinel(p) => p
                .get()
                .await
                .map(Conn::Sentinel)
                .map_err(|e| io(e.to_string())),
        }
    }

    /// Runs `f` on a pooled connection under the timeout of `op` ([`Op::timeout`]), recording
    /// latency and errors under its label.
    pub async fn call<T, F, Fut>(&self, op: Op, f: F) -> Result<T, Error>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout(op), async {
            let conn = self.conn().await?;
            f(conn).await
        })
        .await;
        self.metrics.observe(op, started.elapsed());
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                self.metrics.failed(op);
                if let (
                    Pool::Sentinel(pool),
                    redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly),
                ) = (&self.pool, e.kind())
                {
                    // The primary was demoted by a failover: drop idle connections to it; new
                    // ones go to the primary the Sentinels name now.
                    pool.retain(|_, _| false);
                    tracing::warn!(%op, "redis answered READONLY (a failover demoted the primary); reconnecting through sentinel");
                }
                tracing::debug!(%op, error = %e, "redis call failed");
                Err(Error::Failed {
                    op,
                    message: e.to_string(),
                })
            }
            Err(_) => {
                self.metrics.failed(op);
                tracing::debug!(%op, "redis call timed out");
                Err(Error::Timeout(op))
            }
        }
    }

    /// Drops every idle pooled connection (the health check failed: they may all lead to a
    /// server that is gone); calls open new ones. Connections are not pinged when they are
    /// taken from the pool ([`crate::pool`]).
    pub fn drop_idle(&self) {
        match &self.pool {
            Pool::Single(p) => {
                p.retain(|_, _| false);
            }
            Pool::Cluster(p) => {
                p.retain(|_, _| false);
            }
            Pool::Sentinel(p) => {
                p.retain(|_, _| false);
            }
        }
    }

    /// `PING`. On a Redis Cluster it goes to one master at random, tried up to three times:
    /// Redis is reachable while any master answers. (A plain `PING` goes to every master, so
    /// one failed master would make the node drop every room of every shard; the rooms of
    /// the failed shard are handled on their own — their writes fail, their logs are polled.)
    pub async fn ping(&self) -> Result<(), Error> {
        self.call(Op::Ping, |c| async move {
            match c {
                Conn::Single(mut c) => redis::cmd("PING").query_async::<String>(&mut *c).await,
                Conn::Sentinel(mut c) => redis::cmd("PING").query_async::<String>(&mut *c).await,
                Conn::Cluster(mut c) => {
                    use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
                    let mut result = Ok(Value::Nil);
                    for _ in 0..3 {
                        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary);
                        result = c.inner().route_command(redis::cmd("PING"), route).await;
                        if result.is_ok() {
                            break;
                        }
                    }
                    result.map(|_| String::new())
                }
            }
            .map(|_| ())
        })
        .await
    }
}
