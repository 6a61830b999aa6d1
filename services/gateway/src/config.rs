//! The gateway's configuration: typed, layered (see `yws-config`), validated once.

use serde::Deserialize;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;
use yws_auth::AuthConfig;
use yws_config::{env, ConfigError, EnvTable, Loader, Secret};
use yws_core::export::parse_spec;
use yws_core::{AwarenessLimits, Rate, RateLimits, RoomSettings, RoomsSettings};
use yws_objects::{StorageConfig, StorageEnv};
use yws_redis::RedisConfig;
use yws_store::StoreConfig;
use yws_telemetry::LogConfig;

/// The environment names the gateway reads besides `YWS__…`, one table per section.
pub const ENV: &[EnvTable] = &[
    env::SERVER,
    env::ROOMS,
    env::REDIS,
    env::AUTH,
    env::PERSISTENCE,
    env::STORAGE,
    env::CALLBACK,
    env::ADMIN,
    env::LOG,
];

/// Everything the gateway reads at startup.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Listening, limits, keepalive, shutdown.
    pub server: ServerConfig,
    /// Room behaviour.
    pub rooms: RoomsConfig,
    /// Per-connection and per-room rate limits (off by default).
    pub rate_limit: RateLimitConfig,
    /// Redis: set `url` or `cluster_nodes` for cluster mode.
    pub redis: RedisConfig,
    /// Authentication at the upgrade (off by default).
    pub auth: AuthConfig,
    /// Durable documents for a single node (`YPERSISTENCE`).
    pub persistence: StoreConfig,
    /// Object storage for documents in cluster mode (off unless `url` is set).
    pub storage: StorageConfig,
    /// The reference server's HTTP callback (`CALLBACK_URL`, …).
    pub callback: CallbackConfig,
    /// The admin console at `/admin` (off unless a credential is configured).
    pub admin: AdminConfig,
    /// Logging.
    pub log: LogConfig,
}

/// The `[admin]` section: the console at `/admin` and its API under `/admin/api/`. It is
/// served only when an admin credential exists: this token, or authentication that can grant
/// the `admin` claim (a JWT key or the authorization webhook).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The console's bearer token (`YWS_ADMIN_TOKEN`), compared in constant time; at least
    /// [`AdminConfig::MIN_TOKEN_BYTES`] bytes.
    pub token: Option<Secret>,
}

impl AdminConfig {
    /// The shortest token accepted: a console token guards every room of the cluster.
    pub const MIN_TOKEN_BYTES: usize = 16;
}

/// The `[rate_limit]` section: messages and bytes per second one connection, and all of a
/// room's connections on one node together, may send (each 0: no limit; all off by default).
/// Over a limit the gateway stops reading from the socket until the limit allows more (TCP
/// backpressure; nothing is dropped); a connection kept waiting without a break for
/// `max_throttled_ms` is closed (1008).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// y-websocket messages per second of one connection.
    pub conn_messages_per_sec: u64,
    /// Bytes per second of one connection.
    pub conn_bytes_per_sec: u64,
    /// Messages per second of all of a room's connections on this node.
    pub room_messages_per_sec: u64,
    /// Bytes per second of all of a room's connections on this node.
    pub room_bytes_per_sec: u64,
    /// The burst each limit allows, as this many milliseconds of its rate.
    pub burst_ms: u64,
    /// A connection kept waiting by the limits this long without a break is closed (1008).
    pub max_throttled_ms: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            conn_messages_per_sec: 0,
            conn_bytes_per_sec: 0,
            room_messages_per_sec: 0,
            room_bytes_per_sec: 0,
            burst_ms: 2000,
            max_throttled_ms: 10_000,
        }
    }
}

impl RateLimitConfig {
    fn limits(&self, messages: u64, bytes: u64) -> RateLimits {
        let burst = Duration::from_millis(self.burst_ms);
        RateLimits {
            messages: Rate::per_second(messages, burst),
            bytes: Rate::per_second(bytes, burst),
        }
    }

    /// The limits of one connection.
    pub fn connection(&self) -> RateLimits {
        self.limits(self.conn_messages_per_sec, self.conn_bytes_per_sec)
    }

    /// The limits of one room on this node.
    pub fn room(&self) -> RateLimits {
        self.limits(self.room_messages_per_sec, self.room_bytes_per_sec)
    }
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
    /// Concurrent TCP connections (HTTP and WebSocket) one client address may hold; beyond
    /// it a new connection gets HTTP 503 unread and is closed. 0: no limit (the default;
    /// behind a proxy every client has the proxy's address).
    pub max_connections_per_ip: usize,
    /// Deadline for a request head (request line and headers), from the connection's
    /// accept or the previous response; slower clients are disconnected.
    pub header_timeout_ms: u64,
    /// Deadline for the server's side of an exchange: a WebSocket upgrade must be complete
    /// (its 101 written and the connection handed over) this long after the 101 was produced,
    /// and while a connection speaks HTTP, a response write may make no progress for at most
    /// this long (a client that does not read its answers is disconnected).
    pub handshake_timeout_ms: u64,
    /// Deadline for receiving a request body (`POST /api/rooms/{room}/update`); beyond: 408.
    pub body_timeout_ms: u64,
    /// Accept backlog of the listening socket (capped by the kernel's `somaxconn`).
    pub listen_backlog: u32,
    /// Maximum size of one incoming message in bytes; larger ones close the connection (1009).
    pub max_message_bytes: usize,
    /// Maximum length of a room name in bytes.
    pub max_room_name_bytes: usize,
    /// Frames queued for one connection before it counts as too slow and is closed (1013).
    pub outbox_frames: usize,
    /// Bytes queued for one connection before it counts as too slow and is closed (1013): its
    /// replies and the room's broadcasts. A frame is queued while less than this is, so one
    /// larger frame (a big document's sync step 2) still goes out.
    pub outbox_bytes: usize,
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
    /// `host:port` other gateways reach this one's main port at (the admin console forwards
    /// a room's kick to every node there). Empty: the listener's address, or on a wildcard
    /// address the host's name and port.
    pub advertise_address: String,
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
            max_connections_per_ip: 0,
            header_timeout_ms: 10_000,
            handshake_timeout_ms: 10_000,
            body_timeout_ms: 60_000,
            listen_backlog: 4096,
            max_message_bytes: 32 * 1024 * 1024,
            max_room_name_bytes: 512,
            outbox_frames: 512,
            outbox_bytes: 16 * 1024 * 1024,
            read_buffer_bytes: 1024,
            ping_interval_ms: 30_000,
            idle_message_ms: 20_000,
            shutdown_timeout_ms: 10_000,
            metrics_port: 0,
            advertise_address: String::new(),
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
    /// Awareness client ids one connection may own — states and the removal markers it left —
    /// before it is closed (1008).
    pub max_awareness_clients_per_conn: usize,
    /// Rooms one node holds at most; an upgrade (or API update) that would create one more
    /// gets HTTP 503. Bounds memory where rooms are never unloaded (standalone, in memory).
    /// 0: no limit.
    pub max_rooms: usize,
    /// Largest awareness state (JSON) of one client in bytes; larger: closed (1008).
    pub max_awareness_state_bytes: usize,
    /// Largest awareness message in bytes; larger: closed (1008). Clients echo every state
    /// they receive, so it must hold all the states of a room.
    pub max_awareness_message_bytes: usize,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        RoomsConfig {
            gc: true,
            awareness_timeout_ms: 30_000,
            max_awareness_clients_per_conn: 32,
            max_rooms: 100_000,
            max_awareness_state_bytes: 64 * 1024,
            max_awareness_message_bytes: 4 * 1024 * 1024,
        }
    }
}

/// The `[callback]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallbackConfig {
    /// Where to POST (`CALLBACK_URL`, `http://` only); unset: no callbacks.
    pub url: Option<String>,
    /// Quiet time after the last change (`CALLBACK_DEBOUNCE_WAIT`, default 2000).
    pub debounce_wait_ms: u64,
    /// Longest wait after the first change (`CALLBACK_DEBOUNCE_MAXWAIT`, default 10000).
    pub debounce_maxwait_ms: u64,
    /// Request timeout (`CALLBACK_TIMEOUT`, default 5000).
    pub timeout_ms: u64,
    /// Shared objects to send, JSON name → type (`CALLBACK_OBJECTS`, default `{}`).
    pub objects: String,
    /// Signs the body with HMAC-SHA256 when set (`CALLBACK_SECRET`).
    pub secret: Option<Secret>,
    /// Attempts after the first one, on timeouts, connection errors and 5xx.
    pub max_retries: u32,
    /// First retry delay; doubles each time.
    pub retry_backoff_ms: u64,
    /// Callbacks in flight at once.
    pub max_concurrency: usize,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        CallbackConfig {
            url: None,
            debounce_wait_ms: 2000,
            debounce_maxwait_ms: 10_000,
            timeout_ms: 5000,
            objects: "{}".into(),
            secret: None,
            max_retries: 3,
            retry_backoff_ms: 500,
            max_concurrency: 16,
        }
    }
}

impl CallbackConfig {
    /// Checks the URL, the objects and the timings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if let Some(url) = &self.url {
            match url.parse::<http::Uri>() {
                Ok(uri) if uri.scheme_str() == Some("http") && uri.host().is_some() => {}
                Ok(uri) if uri.scheme_str() == Some("https") => {
                    return invalid("callback.url: https is not supported (no TLS client is built in); use http to a sidecar or an internal service".into())
                }
                _ => return invalid(format!("callback.url {url:?} is not an http:// URL")),
            }
        }
        parse_spec(&self.objects).map_err(|e| {
            ConfigError::Invalid(format!("callback.objects (CALLBACK_OBJECTS): {e}"))
        })?;
        if self.debounce_maxwait_ms < self.debounce_wait_ms {
            return invalid(
                "callback.debounce_maxwait_ms must be at least debounce_wait_ms".into(),
            );
        }
        if self.timeout_ms == 0 || self.max_concurrency == 0 {
            return invalid("callback.timeout_ms and max_concurrency must be at least 1".into());
        }
        Ok(())
    }
}

impl GatewayConfig {
    /// Loads and validates the configuration.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let config: GatewayConfig = Loader::new(ENV).with_file(file).load()?;
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
        if let Some(token) = &self.admin.token {
            if token.expose().len() < AdminConfig::MIN_TOKEN_BYTES {
                return invalid("admin.token (YWS_ADMIN_TOKEN) must be at least 16 bytes");
            }
        }
        if s.max_message_bytes < 1024 {
            return invalid("server.max_message_bytes must be at least 1024");
        }
        if s.outbox_frames < 4 {
            return invalid("server.outbox_frames must be at least 4");
        }
        if self.rate_limit.burst_ms == 0 || self.rate_limit.max_throttled_ms == 0 {
            return invalid(
                "rate_limit.burst_ms and rate_limit.max_throttled_ms must be at least 1",
            );
        }
        if s.outbox_bytes < 1024 {
            return invalid("server.outbox_bytes must be at least 1024");
        }
        if s.read_buffer_bytes < 64 {
            return invalid("server.read_buffer_bytes must be at least 64");
        }
        if s.ping_interval_ms < 100 {
            return invalid("server.ping_interval_ms must be at least 100");
        }
        if s.header_timeout_ms < 100 || s.handshake_timeout_ms < 100 || s.body_timeout_ms < 100 {
            return invalid(
                "server.header_timeout_ms, handshake_timeout_ms and body_timeout_ms must be at least 100",
            );
        }
        if !s.path_prefix.is_empty()
            && (!s.path_prefix.starts_with('/') || s.path_prefix.ends_with('/'))
        {
            return invalid(
                "server.path_prefix must start with '/' and not end with '/' (e.g. \"/collab\")",
            );
        }
        let r = &self.rooms;
        if r.awareness_timeout_ms < 1000 {
            return invalid("rooms.awareness_timeout_ms must be at least 1000");
        }
        if r.max_awareness_clients_per_conn == 0 {
            return invalid("rooms.max_awareness_clients_per_conn must be at least 1");
        }
        if r.max_awareness_state_bytes < 64 {
            return invalid("rooms.max_awareness_state_bytes must be at least 64");
        }
        if r.max_awareness_message_bytes < r.max_awareness_state_bytes {
            return invalid(
                "rooms.max_awareness_message_bytes must be at least rooms.max_awareness_state_bytes",
            );
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
        self.storage.validate(&StorageEnv::from_process())?;
        if self.storage.enabled() && !self.redis.enabled() {
            return invalid("storage.url (YWS_STORAGE_URL) is for cluster mode: set REDIS_URL (or REDIS_CLUSTER_NODES, REDIS_SENTINELS) too");
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

    /// Whether `/admin` is served: a token is set, or authentication can grant `admin`.
    pub fn admin_enabled(&self) -> bool {
        self.admin.token.is_some() || self.auth.jwt_enabled() || self.auth.webhook_url.is_some()
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
                awareness: AwarenessLimits {
                    max_clients_per_conn: self.rooms.max_awareness_clients_per_conn,
                    max_state_bytes: self.rooms.max_awareness_state_bytes,
                    max_message_bytes: self.rooms.max_awareness_message_bytes,
                },
                rate: self.rate_limit.room(),
            },
            awareness_timeout: timeout,
            maintenance_interval: (timeout / 10).max(Duration::from_millis(100)),
            max_rooms: (self.rooms.max_rooms > 0).then_some(self.rooms.max_rooms),
        }
    }
}

#[cfg(test)]
mod tests;
