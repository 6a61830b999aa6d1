//! The `[redis]` config section, shared by the gateway and the compactor.

use crate::sentinel::Sentinels;
use serde::Deserialize;
use yws_config::{ConfigError, Secret};

/// Redis settings. Cluster mode is on when `url` or `cluster_nodes` is set. Environment names:
/// [`yws_config::env::REDIS`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]` or `rediss://…` (`REDIS_URL`).
    pub url: Option<Secret>,
    /// Redis Cluster seed nodes, `host:port` (`REDIS_CLUSTER_NODES`); credentials and TLS are
    /// taken from `url` when it is set. A comma-separated string in the environment; an empty
    /// entry is refused by [`RedisConfig::validate`].
    #[serde(deserialize_with = "yws_config::comma_list_keep_empty")]
    pub cluster_nodes: Vec<String>,
    /// Redis Sentinel addresses, `host:port` (`REDIS_SENTINELS`): the gateway connects to the
    /// primary they name and follows their failovers. Credentials, TLS and database of the
    /// primary are taken from `url` when it is set (its host is ignored).
    #[serde(deserialize_with = "yws_config::comma_list_keep_empty")]
    pub sentinels: Vec<String>,
    /// The primary's name at the Sentinels (`REDIS_SENTINEL_MASTER`).
    pub sentinel_master: String,
    /// The Sentinels' own password, if they require one (`REDIS_SENTINEL_PASSWORD`).
    pub sentinel_password: Option<Secret>,
    /// Namespace of every key (`YWS_REDIS_PREFIX`), so deployments can share a Redis.
    pub prefix: String,
    /// Pooled connections for commands.
    pub pool_size: usize,
    /// Timeout of every Redis call.
    pub command_timeout_ms: u64,
    /// Timeout of calls that move whole documents (loading a room, catching up, compaction
    /// reads, snapshot writes, trims).
    pub bulk_timeout_ms: u64,
    /// Timeout to establish a connection.
    pub connect_timeout_ms: u64,
    /// Appends in flight per node; more wait (up to the command timeout) — backpressure.
    pub max_inflight_writes: usize,
    /// Entries read per page when loading a room's log tail.
    pub load_page_entries: usize,
    /// How long a gateway keeps a room in memory after its last local client left.
    pub unload_grace_ms: u64,
    /// A room is queued for compaction this long after its log was created or last compacted.
    pub compact_after_ms: u64,
    /// A room is queued for immediate compaction when its log reaches this many entries.
    pub compact_max_entries: u64,
    /// … or this many bytes.
    pub compact_max_bytes: u64,
    /// How often the connection is checked (PING); failures make `/readyz` fail.
    pub health_interval_ms: u64,
    /// How often the convergence watchdog compares each room's log with what this node applied
    /// (one small read per room); 0 turns it off.
    pub watchdog_interval_ms: u64,
    /// Updates up to this size travel inside their live message; larger ones are published by
    /// reference (receivers read them from the log), so a large update never fills the
    /// subscribers' output buffers on the Redis server.
    pub inline_publish_bytes: u64,
    /// Awareness changes of a room are gathered this long and published together (the newest
    /// state per client, one call per room); removals go out at once. 0 publishes every
    /// change at once. At most 1000.
    pub awareness_window_ms: u64,
    /// A client's state in the room's stored awareness hash (what joining nodes read) is
    /// refreshed at most this often; its live changes are published every window regardless.
    pub awareness_store_interval_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: None,
            cluster_nodes: Vec::new(),
            sentinels: Vec::new(),
            sentinel_master: "mymaster".into(),
            sentinel_password: None,
            prefix: "yws".into(),
            pool_size: 16,
            command_timeout_ms: 2000,
            bulk_timeout_ms: 15_000,
            connect_timeout_ms: 2000,
            max_inflight_writes: 1024,
            load_page_entries: 1000,
            unload_grace_ms: 30_000,
            compact_after_ms: 10_000,
            compact_max_entries: 1000,
            compact_max_bytes: 8 * 1024 * 1024,
            health_interval_ms: 1000,
            watchdog_interval_ms: 5000,
            inline_publish_bytes: 256 * 1024,
            awareness_window_ms: 0,
            awareness_store_interval_ms: 5000,
        }
    }
}

/// How to reach Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// One Redis server.
    Single(String),
    /// A Redis Cluster, by seed node URLs.
    Cluster(Vec<String>),
    /// A primary found through Redis Sentinel.
    Sentinel(Sentinels),
}

impl RedisConfig {
    /// Whether Redis is configured at all (otherwise the gateway runs standalone).
    pub fn enabled(&self) -> bool {
        self.url.is_some() || !self.cluster_nodes.is_empty() || !self.sentinels.is_empty()
    }

    /// Checks values and URLs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.prefix.is_empty() || self.prefix.contains(['{', '}', ' ']) {
            return invalid("redis.prefix must be non-empty without '{', '}' or spaces".into());
        }
        if self.pool_size == 0 || self.max_inflight_writes == 0 || self.load_page_entries == 0 {
            return invalid(
                "redis.pool_size, max_inflight_writes and load_page_entries must be at least 1"
                    .into(),
            );
        }
        if self.awareness_window_ms > 1000 {
            return invalid("redis.awareness_window_ms must be at most 1000".into());
        }
        if self.command_timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return invalid("redis timeouts must be at least 1 ms".into());
        }
        if let Some(url) = &self.url {
            let url = url.expose();
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return invalid("redis.url must start with redis:// or rediss://".into());
            }
        }
        for node in &self.cluster_nodes {
            if node.trim().is_empty() {
                return invalid("redis.cluster_nodes has an empty entry".into());
            }
        }
        if self.sentinels.iter().any(|s| s.trim().is_empty()) {
            return invalid("redis.sentinels has an empty entry".into());
        }
        if !self.sentinels.is_empty() && !self.cluster_nodes.is_empty() {
            return invalid("set redis.sentinels or redis.cluster_nodes, not both".into());
        }
        if self.sentinel_master.trim().is_empty() {
            return invalid("redis.sentinel_master must not be empty".into());
        }
        if self.enabled() {
            self.topology()?;
        }
        Ok(())
    }

    /// The topology to connect to.
    pub fn topology(&self) -> Result<Topology, ConfigError> {
        if !self.sentinels.is_empty() {
            let auth = self
                .sentinel_password
                .as_ref()
                .map(|p| format!(":{}@", p.expose()))
                .unwrap_or_default();
            return Ok(Topology::Sentinel(Sentinels {
                sentinels: self
                    .sentinels
                    .iter()
                    .map(|s| s.trim())
                    .map(|s| match s.split_once("://") {
                        Some(_) => s.to_string(),
                        None => format!("redis://{auth}{s}"),
                    })
                    .collect(),
                master: self.sentinel_master.trim().to_string(),
                template: self.url.as_ref().map(|u| u.expose().to_string()),
            }));
        }
        if self.cluster_nodes.is_empty() {
            let url = self
                .url
                .as_ref()
                .ok_or_else(|| ConfigError::Invalid("redis.url is not set".into()))?;
            return Ok(Topology::Single(url.expose().to_string()));
        }
        // Seeds without a scheme take scheme and credentials from `url`.
        let (scheme, auth) = match &self.url {
            Some(url) => {
                let url = url.expose();
                let (scheme, rest) = url.split_once("://").unwrap_or(("redis", url));
                let auth = rest
                    .split_once('@')
                    .map(|(a, _)| format!("{a}@"))
                    .unwrap_or_default();
                (scheme.to_string(), auth)
            }
            None => ("redis".to_string(), String::new()),
        };
        Ok(Topology::Cluster(
            self.cluster_nodes
                .iter()
                .map(|n| n.trim())
                .map(|n| {
                    if n.contains("://") {
                        n.to_string()
                    } else {
                        format!("{scheme}://{auth}{n}")
                    }
                })
                .collect(),
        ))
    }
}

/// A URL with its password replaced, for logs.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_and_credentials() {
        let c = RedisConfig {
            url: Some(Secret::new("rediss://user:pw@redis.example:6380")),
            cluster_nodes: vec!["10.0.0.1:7000".into(), "redis://10.0.0.2:7001".into()],
            ..RedisConfig::default()
        };
        assert_eq!(
            c.topology().unwrap(),
            Topology::Cluster(vec![
                "rediss://user:pw@10.0.0.1:7000".into(),
                "redis://10.0.0.2:7001".into()
            ])
        );
        let c = RedisConfig {
            url: Some(Secret::new("redis://localhost:6379")),
            ..RedisConfig::default()
        };
        assert_eq!(
            c.topology().unwrap(),
            Topology::Single("redis://localhost:6379".into())
        );
        assert!(c.validate().is_ok());
        assert!(!RedisConfig::default().enabled());
    }

    #[test]
    fn validation() {
        let bad = RedisConfig {
            url: Some(Secret::new("http://x")),
            ..RedisConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = RedisConfig {
            prefix: "a{b".into(),
            ..RedisConfig::default()
        };
        assert!(bad.validate().is_err());
        assert_eq!(redact("redis://:hunter2@h:1/0"), "redis://***@h:1/0");
        assert!(!format!(
            "{:?}",
            RedisConfig {
                url: Some(Secret::new("redis://:hunter2@h")),
                ..RedisConfig::default()
            }
        )
        .contains("hunter2"));
    }

    #[test]
    fn sentinel_topology() {
        let c = RedisConfig {
            url: Some(Secret::new("redis://:primary@ignored:1/2")),
            sentinels: vec!["s1:26379".into(), " redis://s2:26380 ".into()],
            sentinel_master: "yws".into(),
            sentinel_password: Some(Secret::new("spw")),
            ..RedisConfig::default()
        };
        assert!(c.enabled());
        c.validate().unwrap();
        assert_eq!(
            c.topology().unwrap(),
            Topology::Sentinel(Sentinels {
                sentinels: vec!["redis://:spw@s1:26379".into(), "redis://s2:26380".into()],
                master: "yws".into(),
                template: Some("redis://:primary@ignored:1/2".into()),
            })
        );
        let both = RedisConfig {
            cluster_nodes: vec!["n:1".into()],
            ..c.clone()
        };
        assert!(
            both.validate().is_err(),
            "sentinels and cluster nodes together"
        );
        let empty = RedisConfig {
            sentinels: vec!["s1:1".into(), "".into()],
            ..c.clone()
        };
        assert!(empty.validate().is_err(), "an empty sentinel entry");
        assert!(
            !format!("{c:?}").contains("spw"),
            "the sentinel password is redacted"
        );
    }
}
