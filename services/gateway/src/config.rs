//! The gateway's configuration: typed, layered (see `yws-config`), validated once.

use crate::callback::CallbackConfig;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;
use yws_auth::AuthConfig;
use yws_config::{ConfigError, Legacy, Loader};
use yws_core::{RoomSettings, RoomsSettings};
use yws_redis::RedisConfig;
use yws_store::StoreConfig;
use yws_telemetry::LogConfig;

/// Reference-server environment names and the keys they set.
pub const LEGACY_ENV: &[Legacy] = &[
    Legacy::plain("REDIS_URL", "redis.url"),
    Legacy::list("REDIS_CLUSTER_NODES", "redis.cluster_nodes"),
    Legacy::plain("YWS_REDIS_PREFIX", "redis.prefix"),
    Legacy::plain("HOST", "server.host"),
    Legacy::plain("PORT", "server.port"),
    Legacy::flag("GC", "rooms.gc"),
    Legacy::plain("LOG_FORMAT", "log.format"),
    Legacy::plain("LOG_LEVEL", "log.level"),
];

/// Every environment name the gateway understands besides `YWS__…`: the reference server's,
/// Redis's, and the auth settings'.
pub fn legacy_env() -> Vec<Legacy> {
    let mut all = LEGACY_ENV.to_vec();
    all.extend(crate::callback::LEGACY_ENV.iter().cloned());
    all.extend(
        yws_auth::ENV_VARS
            .iter()
            .map(|(var, key)| Legacy::in_section(var, "auth", key)),
    );
    all.extend(
        yws_store::LEGACY_ENV
            .iter()
            .map(|(var, key)| Legacy::in_section(var, "persistence", key)),
    );
    all
}

/// Everything the gateway reads at startup.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Listening, limits, keepalive, shutdown.
    pub server: ServerConfig,
    /// Room behaviour.
    pub rooms: RoomsConfig,
    /// Redis: set `url` or `cluster_nodes` for cluster mode.
    pub redis: RedisConfig,
    /// Authentication at the upgrade (off by default).
    pub auth: AuthConfig,
    /// Durable documents for a single node (`YPERSISTENCE`).
    pub persistence: StoreConfig,
    /// The reference server's HTTP callback (`CALLBACK_URL`, …).
    pub callback: CallbackConfig,
    /// Logging.
    pub log: LogConfig,
}

/// The `[server]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Interface to listen on (reference: `HOST`, default `localhost`).
    pub host: String,
    /// Port to listen on (reference: `PORT`, default 1234).
    pub port: u16,
    /// Optional path prefix before the room name, e.g. `/collab` for `ws://host/collab/<room>`.
    pub path_prefix: String,
    /// Maximum WebSocket connections on this node; beyond it upgrades get HTTP 503.
    pub max_connections: usize,
    /// Accept backlog of the listening socket (capped by the kernel's `somaxconn`).
    pub listen_backlog: u32,
    /// Maximum size of one incoming message in bytes; larger ones close the connection (1009).
    pub max_message_bytes: usize,
    /// Maximum length of a room name in bytes.
    pub max_room_name_bytes: usize,
    /// Frames queued for one connection before it counts as too slow and is closed (1013).
    pub outbox_frames: usize,
    /// Initial read buffer per connection (grows for large messages).
    pub read_buffer_bytes: usize,
    /// WebSocket ping interval; a connection that has not answered the previous ping by the
    /// next one is closed.
    pub ping_interval_ms: u64,
    /// A connection sent nothing for this long gets an empty awareness update, so client
    /// watchdogs (30 s in 3.x, 45 s in 4.x) never fire in a quiet room. 0 disables.
    pub idle_message_ms: u64,
    /// How long shutdown may take before remaining work is abandoned.
    pub shutdown_timeout_ms: u64,
    /// Optional separate port for `/metrics`, `/healthz`, `/readyz` (0: only the main port).
    pub metrics_port: u16,
    /// Serve the demo page at `/demo` (and link it from `/`). Unset: on when standalone, off
    /// with Redis (see [`GatewayConfig::demo_enabled`]).
    pub demo: Option<bool>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "localhost".into(),
            port: 1234,
            path_prefix: String::new(),
            max_connections: 10_000,
            listen_backlog: 4096,
            max_message_bytes: 32 * 1024 * 1024,
            max_room_name_bytes: 512,
            outbox_frames: 512,
            read_buffer_bytes: 1024,
            ping_interval_ms: 30_000,
            idle_message_ms: 20_000,
            shutdown_timeout_ms: 10_000,
            metrics_port: 0,
            demo: None,
        }
    }
}

/// The `[rooms]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoomsConfig {
    /// Garbage-collect deleted content (reference: `GC`, default on).
    pub gc: bool,
    /// Awareness states not renewed within this time are removed (y-protocols: 30 s).
    pub awareness_timeout_ms: u64,
    /// Awareness client ids one connection may own before it is closed (1008).
    pub max_awareness_clients_per_conn: usize,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        RoomsConfig {
            gc: true,
            awareness_timeout_ms: 30_000,
            max_awareness_clients_per_conn: 32,
        }
    }
}

impl GatewayConfig {
    /// Loads and validates the configuration.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let legacy = legacy_env();
        let config: GatewayConfig = Loader::new(&legacy)
            .with_file(file)
            .with_list_keys(yws_redis::config::LIST_KEYS)
            .load()?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if s.max_connections == 0 {
            return invalid("server.max_connections must be at least 1");
        }
        if s.max_message_bytes < 1024 {
            return invalid("server.max_message_bytes must be at least 1024");
        }
        if s.outbox_frames < 4 {
            return invalid("server.outbox_frames must be at least 4");
        }
        if s.read_buffer_bytes < 64 {
            return invalid("server.read_buffer_bytes must be at least 64");
        }
        if s.ping_interval_ms < 100 {
            return invalid("server.ping_interval_ms must be at least 100");
        }
        if !s.path_prefix.is_empty()
            && (!s.path_prefix.starts_with('/') || s.path_prefix.ends_with('/'))
        {
            return invalid(
                "server.path_prefix must start with '/' and not end with '/' (e.g. \"/collab\")",
            );
        }
        if self.rooms.awareness_timeout_ms < 1000 {
            return invalid("rooms.awareness_timeout_ms must be at least 1000");
        }
        self.redis.validate()?;
        self.auth
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        self.persistence
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        self.callback.validate()?;
        if self.persistence.enabled() && self.redis.enabled() {
            return invalid("YPERSISTENCE (persistence.dir) is for a standalone node; with Redis configured, Redis stores the documents — set one of them");
        }
        self.listen_addr()?;
        Ok(())
    }

    /// The address to listen on (`localhost` resolves to the loopback address).
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        let host = self
            .server
            .host
            .trim_start_matches('[')
            .trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, self.server.port));
        }
        (host, self.server.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| ConfigError::Invalid(format!("server.host {host:?} does not resolve")))
    }

    /// Whether `/demo` is served: `server.demo` when set, else only in standalone mode.
    pub fn demo_enabled(&self) -> bool {
        self.server.demo.unwrap_or(!self.redis.enabled())
    }

    /// Settings for the room registry.
    pub fn rooms_settings(&self) -> RoomsSettings {
        let timeout = Duration::from_millis(self.rooms.awareness_timeout_ms);
        RoomsSettings {
            room: RoomSettings {
                gc: self.rooms.gc,
                max_awareness_clients_per_conn: self.rooms.max_awareness_clients_per_conn,
            },
            awareness_timeout: timeout,
            maintenance_interval: (timeout / 10).max(Duration::from_millis(100)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(env: &[(&str, &str)]) -> Result<GatewayConfig, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let legacy = legacy_env();
        let c: GatewayConfig = Loader::new(&legacy)
            .with_env(env)
            .with_list_keys(yws_redis::config::LIST_KEYS)
            .load()?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn reference_defaults_and_names() {
        let c = load(&[]).unwrap();
        assert_eq!((c.server.host.as_str(), c.server.port), ("localhost", 1234));
        assert!(c.rooms.gc);
        let c = load(&[("HOST", "127.0.0.1"), ("PORT", "4321"), ("GC", "0")]).unwrap();
        assert_eq!(c.listen_addr().unwrap(), "127.0.0.1:4321".parse().unwrap());
        assert!(!c.rooms.gc);
    }

    #[test]
    fn redis_settings_from_reference_style_names() {
        let c = load(&[
            ("REDIS_URL", "redis://:pw@127.0.0.1:6379"),
            ("REDIS_CLUSTER_NODES", "10.0.0.1:7000,10.0.0.2:7000"),
            ("YWS_REDIS_PREFIX", "team-a"),
        ])
        .unwrap();
        assert!(c.redis.enabled());
        assert_eq!(c.redis.cluster_nodes.len(), 2);
        assert_eq!(c.redis.prefix, "team-a");
        assert!(load(&[("REDIS_URL", "http://nope")]).is_err());
    }

    #[test]
    fn auth_settings_from_their_env_names() {
        let c = load(&[("AUTH_JWT_SECRET", "s3cret"), ("AUTH_JWT_ISSUER", "me")]).unwrap();
        assert!(c.auth.jwt_enabled());
        assert!(!format!("{c:?}").contains("s3cret"), "secrets are redacted");
        // Cookie auth without an Origin allow-list is refused at startup.
        assert!(load(&[("AUTH_JWT_SECRET", "s"), ("AUTH_TOKEN_COOKIE", "t")]).is_err());
    }

    #[test]
    fn persistence_from_ypersistence() {
        let c = load(&[("YPERSISTENCE", "/tmp/yws-data")]).unwrap();
        assert!(c.persistence.enabled());
        assert!(load(&[
            ("YPERSISTENCE", "/tmp/x"),
            ("REDIS_URL", "redis://127.0.0.1:6379")
        ])
        .is_err());
    }

    #[test]
    fn callback_settings_from_the_reference_names() {
        let c = load(&[
            ("CALLBACK_URL", "http://127.0.0.1:8080/cb"),
            ("CALLBACK_DEBOUNCE_WAIT", "100"),
            ("CALLBACK_DEBOUNCE_MAXWAIT", "500"),
            ("CALLBACK_TIMEOUT", "1000"),
            (
                "CALLBACK_OBJECTS",
                r#"{"prosemirror":"XmlFragment","meta":"Map"}"#,
            ),
        ])
        .unwrap();
        assert_eq!(c.callback.debounce_wait_ms, 100);
        assert_eq!(c.callback.timeout_ms, 1000);
        assert!(load(&[("CALLBACK_OBJECTS", "{not json")]).is_err());
    }

    #[test]
    fn the_demo_is_on_by_default_only_when_standalone() {
        assert!(load(&[]).unwrap().demo_enabled());
        assert!(!load(&[("YWS__SERVER__DEMO", "false")])
            .unwrap()
            .demo_enabled());
        let redis = ("REDIS_URL", "redis://127.0.0.1:6379");
        assert!(!load(&[redis]).unwrap().demo_enabled());
        assert!(load(&[redis, ("YWS__SERVER__DEMO", "true")])
            .unwrap()
            .demo_enabled());
        assert!(load(&[("YWS__SERVER__DEMO", "maybe")]).is_err());
    }

    #[test]
    fn invalid_values_are_reported() {
        assert!(load(&[("YWS__SERVER__MAX_CONNECTIONS", "0")]).is_err());
        assert!(load(&[("YWS__SERVER__PATH_PREFIX", "collab/")]).is_err());
        assert!(load(&[("YWS__SERVER__NOPE", "1")]).is_err());
        assert!(load(&[("PORT", "99999")]).is_err());
    }
}
