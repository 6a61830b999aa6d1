//! The node: shared state, the accept loop, and the shutdown sequence.

use crate::callback::{CallbackMetrics, Callbacks};
use crate::config::GatewayConfig;
use crate::metrics::Metrics;
use crate::routes;
use crate::session::{SessionContext, SessionSettings};
use hyper_util::rt::TokioIo;
use prometheus::Registry;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use yws_core::{ConnId, RoomBackend, Rooms};
use yws_telemetry::Health;

/// Extra TCP connections allowed beyond the WebSocket limit, for probes, metrics and refusals.
const HTTP_HEADROOM: usize = 256;

/// Shared state of one gateway node.
#[derive(Debug)]
pub struct Gateway {
    /// The configuration it was started with.
    pub config: GatewayConfig,
    /// Rooms loaded on this node.
    pub rooms: Arc<Rooms>,
    /// Gateway metrics.
    pub metrics: Metrics,
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// Liveness and readiness.
    pub health: Health,
    /// One permit per WebSocket connection.
    pub connection_slots: Arc<Semaphore>,
    /// Cancelled to close every client (shutdown); each connection holds a child token.
    pub connections_cancel: CancellationToken,
    /// Every connection task.
    pub tracker: TaskTracker,
    /// tungstenite settings for every connection.
    pub ws_config: WebSocketConfig,
    /// What sessions share.
    pub session_context: SessionContext,
    /// Decides who may open which room.
    pub authorizer: yws_auth::Authorizer,
    /// The HTTP callback, when configured.
    pub callbacks: Option<Arc<Callbacks>>,
    next_conn: AtomicU64,
}

impl Gateway {
    /// Builds a node over `backend`, registering its metrics on `registry`.
    pub fn new(
        config: GatewayConfig,
        backend: Arc<dyn RoomBackend>,
        registry: Registry,
        health: Health,
    ) -> anyhow::Result<Arc<Self>> {
        let metrics = Metrics::new(&registry)?;
        let authorizer = yws_auth::Authorizer::new(&config.auth)?;
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
        let session_context = SessionContext {
            backend,
            metrics: metrics.clone(),
            settings: SessionSettings {
                outbox_frames: s.outbox_frames,
                ping_interval: Duration::from_millis(s.ping_interval_ms),
                idle_message: (s.idle_message_ms > 0)
                    .then(|| Duration::from_millis(s.idle_message_ms)),
            },
        };
        Ok(Arc::new(Gateway {
            connection_slots: Arc::new(Semaphore::new(s.max_connections)),
            config,
            rooms,
            metrics,
            registry,
            health,
            connections_cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
            ws_config,
            session_context,
            authorizer,
            callbacks,
            next_conn: AtomicU64::new(1),
        }))
    }

    /// A fresh connection id.
    pub fn next_conn_id(&self) -> ConnId {
        ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    /// Serves on `listener` until `shutdown` completes, then runs the shutdown sequence:
    /// fail `/readyz` → stop accepting → close clients with 1012 → wait for sessions →
    /// close rooms (flush the backend), all under `server.shutdown_timeout_ms`.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let accept_cancel = CancellationToken::new();
        let http_tracker = TaskTracker::new();
        let maintenance_cancel = CancellationToken::new();
        let maintenance = tokio::spawn(self.rooms.clone().maintain(maintenance_cancel.clone()));
        let presence = tokio::spawn(self.clone().report_presence(maintenance_cancel.clone()));
        let callbacks_cancel = CancellationToken::new();
        let callback_tasks = TaskTracker::new();
        let callbacks = self.callbacks.clone().map(|c| {
            tokio::spawn(c.run(
                Arc::downgrade(&self),
                callbacks_cancel.clone(),
                callback_tasks.clone(),
            ))
        });
        let listener_addr = listener.local_addr().ok();
        let accept = tokio::spawn(self.clone().accept_loop(
            listener,
            accept_cancel.clone(),
            http_tracker.clone(),
        ));
        self.health.set_started();
        match listener_addr {
            Some(addr) => tracing::info!(%addr, "listening"),
            None => tracing::info!("listening"),
        }

        shutdown.await;
        let deadline = tokio::time::Instant::now()
            + Duration::from_millis(self.config.server.shutdown_timeout_ms);
        tracing::info!(
            connections = self.metrics.connections.get(),
            "shutting down: no longer ready"
        );
        self.health.set_draining();
        accept_cancel.cancel();
        let _ = accept.await;
        tracing::info!("shutting down: closing clients with 1012");
        self.connections_cancel.cancel();
        self.tracker.close();
        if tokio::time::timeout_at(deadline, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.tracker.len(),
                "shutdown step 'close clients' timed out"
            );
        }
        http_tracker.close();
        if tokio::time::timeout_at(deadline, http_tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = http_tracker.len(),
                "shutdown step 'finish HTTP requests' timed out"
            );
        }
        // Pending callbacks are sent once more with the final state before rooms close.
        callbacks_cancel.cancel();
        if let Some(callbacks) = callbacks {
            if tokio::time::timeout_at(deadline, callbacks).await.is_err() {
                tracing::warn!("shutdown step 'send pending callbacks' timed out");
            }
        }
        callback_tasks.close();
        if tokio::time::timeout_at(deadline, callback_tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown step 'finish callbacks in flight' timed out");
        }
        maintenance_cancel.cancel();
        let _ = maintenance.await;
        let _ = presence.await;
        tracing::info!("shutting down: closing rooms");
        if tokio::time::timeout_at(deadline, self.rooms.close_all())
            .await
            .is_err()
        {
            tracing::warn!("shutdown step 'close rooms' timed out");
        }
        tracing::info!("shutdown complete");
    }

    /// Reports this node's rooms and connection counts every 5 s (for cluster-wide listings;
    /// a no-op for single-node backends).
    async fn report_presence(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let rooms = self.rooms.list(None, usize::MAX);
            self.metrics.rooms.set(rooms.len() as i64);
            if let Err(e) = self.rooms.backend().report_presence(&rooms).await {
                tracing::debug!(error = %e, "presence report failed");
            }
        }
    }

    /// Follows a shared backend's availability: when it goes away the node stops being ready
    /// and closes every client (1013) so they reconnect — possibly elsewhere — and rooms load
    /// afresh; when it comes back the node is ready again.
    pub async fn watch_backend(
        self: Arc<Self>,
        mut availability: tokio::sync::watch::Receiver<bool>,
        cancel: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                changed = availability.changed() => if changed.is_err() { return },
            }
            let up = *availability.borrow_and_update();
            self.health.set_dependency_down(!up);
            if !up {
                let evicted = self
                    .rooms
                    .evict_all(yws_core::CloseReason::BackendUnavailable)
                    .await;
                self.metrics.rooms.set(self.rooms.len() as i64);
                tracing::warn!(
                    evicted,
                    "backend unavailable: rooms evicted, clients closed with 1013"
                );
            }
        }
    }

    async fn accept_loop(
        self: Arc<Self>,
        listener: TcpListener,
        cancel: CancellationToken,
        tracker: TaskTracker,
    ) {
        let tcp_slots = Arc::new(Semaphore::new(
            self.config.server.max_connections + HTTP_HEADROOM,
        ));
        loop {
            let permit = tokio::select! {
                _ = cancel.cancelled() => return,
                permit = tcp_slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
            };
            let (stream, peer) = tokio::select! {
                _ = cancel.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let gw = self.clone();
            let cancel = cancel.clone();
            tracker.spawn(async move {
                let _permit = permit;
                serve_http(gw, stream, peer, cancel).await;
            });
        }
    }
}

async fn serve_http(
    gw: Arc<Gateway>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    cancel: CancellationToken,
) {
    let service = hyper::service::service_fn(move |req| {
        let gw = gw.clone();
        async move { Ok::<_, std::convert::Infallible>(routes::route(gw, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "http connection error");
            }
            return;
        }
        _ = cancel.cancelled() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// Binds the main listener with a deep accept backlog (`server.listen_backlog`), so a connect
/// storm is queued by the kernel instead of answered with SYN retransmits.
pub async fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}
