//! The node's shared state: what the server and the request handlers read. Data only —
//! accepting and draining live in `server`, request handling in `routes` and the modules it
//! calls; this module imports neither.

use crate::callback::{CallbackMetrics, Callbacks};
use crate::config::{GatewayConfig, ServerConfig};
use crate::metrics::Metrics;
use crate::session::{SessionContext, SessionSettings};
use prometheus::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use yws_auth::Authorizer;
use yws_config::Secret;
use yws_core::{ConnId, NodeInfo, RoomBackend, Rooms};
use yws_telemetry::Health;

/// Shared state of one gateway node.
#[derive(Debug)]
pub struct Gateway {
    /// The `[server]` section it was started with (limits, path prefix, timeouts).
    pub server: ServerConfig,
    /// Rooms loaded on this node.
    pub rooms: Arc<Rooms>,
    /// Gateway metrics.
    pub metrics: Metrics,
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// Liveness and readiness.
    pub health: Health,
    /// Decides who may open which room (upgrades and the document API).
    pub authorizer: Authorizer,
    /// What every WebSocket connection shares.
    pub connections: Arc<Connections>,
    /// The HTTP callback, when configured.
    pub callbacks: Option<Arc<Callbacks>>,
    /// Whether `/demo` is served ([`GatewayConfig::demo_enabled`]).
    pub demo: bool,
    /// Who may use the admin console; `None`: `/admin` is off
    /// ([`GatewayConfig::admin_enabled`]).
    pub admin: Option<AdminAccess>,
    /// This node as the admin console's cluster view shows it (address, version, start).
    pub node: NodeIdentity,
}

/// The admin console's credentials: its token and whether authentication can grant `admin`.
#[derive(Debug, Clone)]
pub struct AdminAccess {
    /// `admin.token`.
    pub token: Option<Secret>,
    /// A JWT key or the webhook is configured: a credential carrying `admin: true` is let in.
    pub claims: bool,
    /// Forwards a room's kick to the other nodes.
    pub client: ForwardClient,
}

/// The HTTP client the admin console forwards requests to other nodes with.
pub type ForwardClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
>;

/// What stays true of this node for its life, for its presence report.
#[derive(Debug)]
pub struct NodeIdentity {
    /// Where it listens; see [`NodeIdentity::set_listening`].
    address: parking_lot::Mutex<String>,
    /// `server.advertise_address` is set: the address is that, whatever the listener's.
    advertised: bool,
    /// When the node started (ms since the epoch).
    pub started_ms: u64,
}

impl NodeIdentity {
    /// The address it listens on, as others can tell it apart.
    pub fn address(&self) -> String {
        self.address.lock().clone()
    }

    /// Records the address the listener is bound to (the configured port may be 0), unless
    /// `server.advertise_address` names one. On a wildcard address (`0.0.0.0`, `::`) the
    /// host's name (`HOSTNAME`) stands in for the IP.
    pub fn set_listening(&self, addr: std::net::SocketAddr) {
        if !self.advertised {
            *self.address.lock() = listening_address(addr, std::env::var("HOSTNAME").ok());
        }
    }
}

/// What a node listening on `addr` on host `hostname` calls itself.
fn listening_address(addr: std::net::SocketAddr, hostname: Option<String>) -> String {
    match hostname.filter(|h| !h.is_empty()) {
        Some(host) if addr.ip().is_unspecified() => format!("{host}:{}", addr.port()),
        _ => addr.to_string(),
    }
}

impl Gateway {
    /// This node's description now, for the presence report and the console.
    pub fn node_info(&self) -> NodeInfo {
        NodeInfo {
            address: self.node.address(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_ms: self.node.started_ms,
            ready: self.health.is_ready(),
            connections: u64::try_from(self.metrics.connections.get()).unwrap_or(0),
            rooms: self.rooms.len() as u64,
        }
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What every WebSocket connection of the node shares. A connection task holds one `Arc` of
/// it — not the whole [`Gateway`] — for the life of the connection.
#[derive(Debug)]
pub struct Connections {
    /// Rooms loaded on this node.
    pub rooms: Arc<Rooms>,
    /// One permit per WebSocket connection.
    pub slots: Arc<Semaphore>,
    /// Cancelled to close every client (shutdown); each connection holds a child token.
    pub cancel: CancellationToken,
    /// Every connection task.
    pub tracker: TaskTracker,
    /// tungstenite settings for every connection.
    pub ws_config: WebSocketConfig,
    /// How long a client has to complete its upgrade after the 101 (`server.handshake_timeout_ms`).
    pub handshake_timeout: Duration,
    /// What sessions share (backend, metrics, timeouts).
    pub session: SessionContext,
    next_id: AtomicU64,
}

impl Connections {
    /// A fresh connection id.
    pub fn next_id(&self) -> ConnId {
        ConnId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }
}

impl Gateway {
    /// The state of a node over `backend`, its metrics registered on `registry`.
    pub fn new(
        config: &GatewayConfig,
        backend: Arc<dyn RoomBackend>,
        authorizer: Authorizer,
        registry: Registry,
        health: Health,
    ) -> Result<Arc<Self>, prometheus::Error> {
        let metrics = Metrics::new(&registry)?;
        metrics.rooms_max.set(config.rooms.max_rooms as i64);
        let callbacks = Callbacks::new(&config.callback, CallbackMetrics::new(&registry)?);
        let rooms = Rooms::new(backend.clone(), config.rooms_settings());
        if let Some(callbacks) = &callbacks {
            rooms.set_listener(callbacks.clone());
        }
        let s = &config.server;
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(s.read_buffer_bytes)
            .write_buffer_size(16 * 1024)
            .max_message_size(Some(s.max_message_bytes))
            .max_frame_size(Some(s.max_message_bytes));
        let connections = Arc::new(Connections {
            rooms: rooms.clone(),
            slots: Arc::new(Semaphore::new(s.max_connections)),
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
            ws_config,
            handshake_timeout: Duration::from_millis(s.handshake_timeout_ms),
            session: SessionContext {
                backend,
                metrics: metrics.clone(),
                settings: SessionSettings {
                    outbox_frames: s.outbox_frames,
                    outbox_bytes: s.outbox_bytes,
                    ping_interval: Duration::from_millis(s.ping_interval_ms),
                    idle_message: (s.idle_message_ms > 0)
                        .then(|| Duration::from_millis(s.idle_message_ms)),
                    rate: config.rate_limit.connection(),
                    max_throttled: Duration::from_millis(config.rate_limit.max_throttled_ms),
                },
            },
            next_id: AtomicU64::new(1),
        });
        let admin = config.admin_enabled().then(|| AdminAccess {
            token: config.admin.token.clone(),
            claims: config.auth.jwt_enabled() || config.auth.webhook_enabled(),
            // No idle connections kept: a connection's task ends with its request, so
            // nothing of the client outlives the request that used it.
            client: hyper_util::client::legacy::Client::builder(
                hyper_util::rt::TokioExecutor::new(),
            )
            .pool_max_idle_per_host(0)
            .build_http(),
        });
        Ok(Arc::new(Gateway {
            demo: config.demo_enabled(),
            admin,
            node: NodeIdentity {
                address: parking_lot::Mutex::new(if s.advertise_address.is_empty() {
                    format!("{}:{}", s.host, s.port)
                } else {
                    s.advertise_address.clone()
                }),
                advertised: !s.advertise_address.is_empty(),
                started_ms: now_ms(),
            },
            server: config.server.clone(),
            rooms,
            metrics,
            registry,
            health,
            authorizer,
            connections,
            callbacks,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listener_is_named_by_its_host() {
        let any: std::net::SocketAddr = "0.0.0.0:1234".parse().unwrap();
        let one: std::net::SocketAddr = "10.0.0.7:1234".parse().unwrap();
        let pod = || Some("yws-gateway-0".to_string());
        assert_eq!(listening_address(any, pod()), "yws-gateway-0:1234");
        assert_eq!(listening_address(one, pod()), "10.0.0.7:1234");
        assert_eq!(listening_address(any, None), "0.0.0.0:1234");
        assert_eq!(listening_address(any, Some(String::new())), "0.0.0.0:1234");
    }
}
