//! The compactor's configuration.

use serde::Deserialize;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use yws_config::{env, ConfigError, EnvTable, Loader};
use yws_objects::{StorageConfig, StorageEnv};
use yws_redis::RedisConfig;
use yws_telemetry::LogConfig;

/// The environment names the compactor reads besides `YWS__…`, one table per section; `[redis]`
/// `[storage]` and `[log]` are the gateway's tables.
pub const ENV: &[EnvTable] = &[env::REDIS, env::COMPACTOR, env::STORAGE, env::LOG];

/// Everything the compactor reads at startup.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompactorConfig {
    /// Compaction behaviour.
    pub compactor: Settings,
    /// The HTTP port for `/healthz`, `/readyz`, `/metrics`.
    pub admin: AdminConfig,
    /// Redis (required).
    pub redis: RedisConfig,
    /// Object storage for snapshots (off unless `url` is set).
    pub storage: StorageConfig,
    /// Logging.
    pub log: LogConfig,
}

/// The `[compactor]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// How often the queue is polled.
    pub poll_interval_ms: u64,
    /// Tasks taken per poll.
    pub batch: usize,
    /// A room's lease; renewed while a compaction runs, taken over when a replica dies.
    pub lease_ms: u64,
    /// When entries remain after a run, the room is due again this much later.
    pub compact_after_ms: u64,
    /// A fully compacted log is deleted after it stayed empty this long.
    pub cleanup_after_ms: u64,
    /// Log entries merged per run at most (a larger backlog takes several runs).
    pub max_entries_per_run: usize,
    /// Log bytes merged per run at most.
    pub max_bytes_per_run: u64,
    /// Entries read per Redis call.
    pub page_entries: usize,
    /// Garbage-collect deleted content in snapshots (reference: `GC`, default on).
    pub gc: bool,
    /// How often logs without a queued task are looked for (0: never).
    pub sweep_interval_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            poll_interval_ms: 500,
            batch: 16,
            lease_ms: 30_000,
            compact_after_ms: 10_000,
            cleanup_after_ms: 15_000,
            max_entries_per_run: 100_000,
            max_bytes_per_run: 64 * 1024 * 1024,
            page_entries: 1000,
            gc: true,
            sweep_interval_ms: 300_000,
        }
    }
}

/// The `[admin]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Interface for the admin port.
    pub host: String,
    /// Admin port (`/healthz`, `/readyz`, `/metrics`).
    pub port: u16,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            host: "localhost".into(),
            port: 9464,
        }
    }
}

impl CompactorConfig {
    /// Loads and validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let config: CompactorConfig = Loader::new(ENV).with_file(file).load()?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if !self.redis.enabled() {
            return invalid("the compactor needs Redis: set REDIS_URL or REDIS_CLUSTER_NODES");
        }
        self.redis.validate()?;
        self.storage.validate(&StorageEnv::from_process())?;
        let c = &self.compactor;
        if c.poll_interval_ms == 0
            || c.batch == 0
            || c.page_entries == 0
            || c.max_entries_per_run == 0
        {
            return invalid("compactor.poll_interval_ms, batch, page_entries and max_entries_per_run must be at least 1");
        }
        if c.lease_ms < 1000 {
            return invalid("compactor.lease_ms must be at least 1000");
        }
        if c.lease_ms <= self.redis.command_timeout_ms * 3 {
            return invalid("compactor.lease_ms must exceed three redis command timeouts (the lease is renewed between calls)");
        }
        self.admin_addr()?;
        Ok(())
    }

    /// The admin listen address.
    pub fn admin_addr(&self) -> Result<SocketAddr, ConfigError> {
        (self.admin.host.as_str(), self.admin.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| {
                ConfigError::Invalid(format!("admin.host {:?} does not resolve", self.admin.host))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(env: &[(&str, &str)]) -> Result<CompactorConfig, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let c: CompactorConfig = Loader::new(ENV).with_env(env).load()?;
        c.validate()?;
        Ok(c)
    }

    /// Every environment name the compactor reads besides `YWS__…`; dropping or renaming one
    /// silently ignores a deployment's setting. When a name is added on purpose, add it here
    /// and to the README.
    const COMPACTOR_ENV_NAMES: &[&str] = &[
        "GC",
        "LOG_FORMAT",
        "LOG_LEVEL",
        "REDIS_CLUSTER_NODES",
        "REDIS_SENTINELS",
        "REDIS_SENTINEL_MASTER",
        "REDIS_SENTINEL_PASSWORD",
        "REDIS_URL",
        "YWS_REDIS_PREFIX",
        "YWS_STORAGE_URL",
    ];

    #[test]
    fn environment_names_are_pinned() {
        let mut names: Vec<&str> = ENV
            .iter()
            .flat_map(|t| t.vars.iter().map(|v| v.name))
            .collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "an environment name is listed twice");
        assert_eq!(
            names, COMPACTOR_ENV_NAMES,
            "the compactor's environment names changed (see COMPACTOR_ENV_NAMES)"
        );
    }

    #[test]
    fn every_environment_name_sets_a_known_key() {
        for (name, key) in ENV.iter().flat_map(EnvTable::entries) {
            let env = HashMap::from([(name.to_string(), "1".to_string())]);
            if let Err(e) = Loader::new(ENV).with_env(env).load::<CompactorConfig>() {
                let e = e.to_string();
                assert!(!e.contains("unknown field"), "{name} → {key}: {e}");
            }
        }
    }

    #[test]
    fn settings_from_the_environment() {
        assert!(load(&[]).is_err(), "Redis is required");
        let c = load(&[
            ("REDIS_CLUSTER_NODES", "10.0.0.1:7000,10.0.0.2:7000"),
            ("YWS_REDIS_PREFIX", "team-a"),
            ("GC", "false"),
            ("LOG_LEVEL", "debug"),
        ])
        .unwrap();
        assert_eq!(c.redis.cluster_nodes.len(), 2);
        assert_eq!(c.redis.prefix, "team-a");
        assert!(!c.compactor.gc);
        assert_eq!(c.log.level, "debug");
        assert!(!c.storage.enabled(), "storage is off unless its URL is set");
        for name in ["YWS_STORAGE_URL", "YWS__STORAGE__URL"] {
            let c = load(&[
                ("REDIS_URL", "redis://127.0.0.1:6379"),
                (name, "file:///var/lib/yws"),
            ])
            .unwrap();
            assert_eq!(
                c.storage.url.as_deref(),
                Some("file:///var/lib/yws"),
                "{name}"
            );
        }
        assert!(
            load(&[
                ("REDIS_URL", "redis://127.0.0.1:6379"),
                ("YWS_STORAGE_URL", "ftp://nope/x")
            ])
            .is_err(),
            "an unknown scheme is refused"
        );
        let c = load(&[("REDIS_URL", "redis://127.0.0.1:6379"), ("GC", "yes")]).unwrap();
        assert!(c.compactor.gc && c.redis.enabled());
        assert!(load(&[
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("YWS__COMPACTOR__NOPE", "1")
        ])
        .is_err());
    }
}
