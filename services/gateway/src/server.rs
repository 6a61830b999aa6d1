//! The node at work: the accept loop (HTTP and WebSocket upgrades on one port, hyper 1.x),
//! the background loops that follow the rooms and the backend, and the shutdown sequence.

use crate::per_ip::{self, IpSlot, PerIpLimit};
use crate::routes::{self, Port};
use crate::stall::{self, StallIo};
use crate::state::Gateway;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Extra TCP connections allowed beyond the WebSocket limit, for probes, metrics and refusals.
const HTTP_HEADROOM: usize = 256;

/// How often this node reports its rooms and connection counts.
const PRESENCE_INTERVAL: Duration = Duration::from_secs(5);

/// Serves `gw` on `listener` until `shutdown` completes, then runs the shutdown sequence:
/// fail `/readyz` → stop accepting → close clients with 1012 → wait for sessions and HTTP
/// requests → send pending callbacks → close rooms (flush the backend), all under
/// `server.shutdown_timeout_ms`; a step that does not finish in time is named in a warning.
#[expect(
    clippy::disallowed_methods,
    reason = "the server owns these loops: it holds their handles and awaits each in the shutdown sequence"
)]
pub async fn serve(gw: Arc<Gateway>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    if let Ok(addr) = listener.local_addr() {
        gw.node.set_listening(addr);
    }
    let accept_cancel = CancellationToken::new();
    let http_tracker = TaskTracker::new();
    let maintenance_cancel = CancellationToken::new();
    let maintenance = tokio::spawn(gw.rooms.clone().maintain(maintenance_cancel.clone()));
    let presence = tokio::spawn(report_presence(gw.clone(), maintenance_cancel.clone()));
    let callbacks_cancel = CancellationToken::new();
    let callback_tasks = TaskTracker::new();
    let callbacks = gw.callbacks.clone().map(|c| {
        tokio::spawn(c.run(
            gw.rooms.clone(),
            callbacks_cancel.clone(),
            callback_tasks.clone(),
        ))
    });
    let listener_addr = listener.local_addr().ok();
    let accept = tokio::spawn(accept_loop(
        gw.clone(),
        listener,
        accept_cancel.clone(),
        http_tracker.clone(),
        Port::Main,
    ));
    gw.health.set_started();
    match listener_addr {
        Some(addr) => tracing::info!(%addr, "listening"),
        None => tracing::info!("listening"),
    }

    shutdown.await;
    let deadline = Deadline(Instant::now() + Duration::from_millis(gw.server.shutdown_timeout_ms));
    tracing::info!(
        connections = gw.metrics.connections.get(),
        "shutting down: no longer ready"
    );
    gw.health.set_draining();
    accept_cancel.cancel();
    let _ = accept.await;
    tracing::info!("shutting down: closing clients with 1012");
    gw.connections.cancel.cancel();
    deadline
        .drain("close clients", &gw.connections.tracker)
        .await;
    deadline.drain("finish HTTP requests", &http_tracker).await;
    // Pending callbacks are sent once more with the final state before rooms close.
    callbacks_cancel.cancel();
    if let Some(callbacks) = callbacks {
        deadline.step("send pending callbacks", callbacks).await;
    }
    deadline
        .drain("finish callbacks in flight", &callback_tasks)
        .await;
    maintenance_cancel.cancel();
    let _ = maintenance.await;
    let _ = presence.await;
    tracing::info!("shutting down: closing rooms");
    deadline.step("close rooms", gw.rooms.close_all()).await;
    tracing::info!("shutdown complete");
}

/// The end of the shutdown sequence's time: every step waits until then at most, and a step
/// that does not finish in time is named in a warning.
struct Deadline(Instant);

impl Deadline {
    /// Waits for `work`.
    async fn step(&self, name: &str, work: impl Future) {
        self.wait(name, work, None).await;
    }

    /// Closes `tracker` and waits for its tasks; a warning says how many are left.
    async fn drain(&self, name: &str, tracker: &TaskTracker) {
        tracker.close();
        self.wait(name, tracker.wait(), Some(tracker)).await;
    }

    async fn wait(&self, name: &str, work: impl Future, tracker: Option<&TaskTracker>) {
        if tokio::time::timeout_at(self.0, work).await.is_err() {
            let left = tracker.map(TaskTracker::len);
            tracing::warn!(left, "shutdown step '{name}' timed out");
        }
    }
}

/// Reports this node's rooms and connection counts, and its description (for the admin
/// console), every [`PRESENCE_INTERVAL`] (for cluster-wide listings; a no-op for single-node
/// backends), and keeps the rooms gauge current.
async fn report_presence(gw: Arc<Gateway>, cancel: CancellationToken) {
    let (rooms, gauge) = (&gw.rooms, &gw.metrics.rooms);
    let mut tick = tokio::time::interval(PRESENCE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let loaded = rooms.list(None, usize::MAX);
        gauge.set(loaded.len() as i64);
        if let Err(e) = rooms.backend().report_presence(&loaded).await {
            tracing::debug!(error = %e, "presence report failed");
        }
        if let Err(e) = rooms.backend().report_node(&gw.node_info()).await {
            tracing::debug!(error = %e, "node report failed");
        }
    }
}

/// Follows a shared backend's availability: when it goes away the node stops being ready
/// and closes every client (1013) so they reconnect — possibly elsewhere — and rooms load
/// afresh; when it comes back the node is ready again. Every second it also copies how many
/// rooms lack live delivery into `/readyz`.
pub async fn watch_backend(
    gw: Arc<Gateway>,
    mut availability: tokio::sync::watch::Receiver<bool>,
    cancel: CancellationToken,
) {
    let mut degraded = tokio::time::interval(Duration::from_secs(1));
    degraded.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = degraded.tick() => {
                gw.health.set_degraded_rooms(gw.rooms.backend().degraded());
                continue;
            }
            changed = availability.changed() => if changed.is_err() { return },
        }
        let up = *availability.borrow_and_update();
        gw.health.set_dependency_down(!up);
        if !up {
            let evicted = gw
                .rooms
                .evict_all(yws_core::CloseReason::BackendUnavailable)
                .await;
            gw.metrics.rooms.set(gw.rooms.len() as i64);
            tracing::warn!(
                evicted,
                "backend unavailable: rooms evicted, clients closed with 1013"
            );
        }
    }
}

/// Serves the metrics port (`server.metrics_port`): probes, metrics and the admin console,
/// with the main port's connection limits, until `cancel` fires; connections are tracked by
/// `tracker`. It keeps answering while the main port drains, so `/readyz` reports it.
pub async fn serve_metrics_port(
    gw: Arc<Gateway>,
    listener: TcpListener,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    accept_loop(gw, listener, cancel, tracker, Port::Metrics).await;
}

async fn accept_loop(
    gw: Arc<Gateway>,
    listener: TcpListener,
    cancel: CancellationToken,
    tracker: TaskTracker,
    port: Port,
) {
    let tcp_slots = Arc::new(Semaphore::new(gw.server.max_connections + HTTP_HEADROOM));
    let per_ip = PerIpLimit::new(gw.server.max_connections_per_ip);
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
        let ip_slot = match &per_ip {
            None => None,
            Some(limit) => match limit.try_acquire(peer.ip()) {
                Some(slot) => Some(Arc::new(slot)),
                None => {
                    // Told without reading the request; a full send buffer just drops it.
                    let _ = stream.try_write(per_ip::REFUSAL);
                    gw.metrics
                        .http_cutoffs
                        .with_label_values(&["per_ip_limit"])
                        .inc();
                    tracing::debug!(%peer, "connection refused: server.max_connections_per_ip");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let gw = gw.clone();
        let cancel = cancel.clone();
        tracker.spawn(async move {
            let _permit = permit;
            serve_http(gw, stream, peer, ip_slot, cancel, port).await;
        });
    }
}

/// Serves one TCP connection. `ip_slot` (the per-IP limit) goes with every request, so an
/// upgrade keeps it for the life of the WebSocket.
async fn serve_http(
    gw: Arc<Gateway>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    ip_slot: Option<Arc<IpSlot>>,
    cancel: CancellationToken,
    port: Port,
) {
    let header_timeout = Duration::from_millis(gw.server.header_timeout_ms);
    let write_deadline = Duration::from_millis(gw.server.handshake_timeout_ms);
    let (stream, stall) = StallIo::new(stream, write_deadline);
    let metrics = gw.metrics.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
        let gw = gw.clone();
        if let Some(slot) = &ip_slot {
            req.extensions_mut().insert(slot.clone());
        }
        async move { Ok::<_, std::convert::Infallible>(routes::respond(&gw, req, port).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            // Done with HTTP; an upgraded connection's session has its own slow-client policy.
            stall.disarm();
            if let Err(e) = result {
                if e.is_timeout() {
                    metrics.http_cutoffs.with_label_values(&["header_timeout"]).inc();
                    tracing::debug!(%peer, "request head not received in time; disconnected");
                } else if stall::is_stall(&e) {
                    metrics.http_cutoffs.with_label_values(&["write_stall"]).inc();
                    tracing::debug!(%peer, "client read nothing within server.handshake_timeout_ms; disconnected");
                } else {
                    tracing::debug!(%peer, error = %e, "http connection error");
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn shutdown_steps_end_at_the_deadline() {
        let start = Instant::now();
        let deadline = Deadline(start + Duration::from_secs(2));
        deadline.step("done", async {}).await;
        assert_eq!(Instant::now(), start, "finished work does not wait");
        deadline.step("stuck", std::future::pending::<()>()).await;
        let tracker = TaskTracker::new();
        tracker.spawn(std::future::pending::<()>());
        deadline.drain("stuck tasks", &tracker).await;
        assert!(tracker.is_closed());
        assert_eq!(tracker.len(), 1);
        assert_eq!(
            Instant::now() - start,
            Duration::from_secs(2),
            "stuck steps share one deadline"
        );
    }
}
