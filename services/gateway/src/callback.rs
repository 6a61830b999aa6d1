//! The HTTP callback of the reference server (`CALLBACK_URL`, `CALLBACK_DEBOUNCE_WAIT`,
//! `CALLBACK_DEBOUNCE_MAXWAIT`, `CALLBACK_TIMEOUT`, `CALLBACK_OBJECTS`), per room:
//! after a room's document changed, wait until it has been quiet for `debounce_wait_ms` (but no
//! longer than `debounce_maxwait_ms` after the first change), then POST
//! `{"room": …, "data": {name: {"type": …, "content": …}}}` — the reference's body.
//!
//! Beyond the reference: one debounce per room (the reference has one for the whole process,
//! so only the last room's callback fires); in a cluster one callback per room per window for
//! the whole cluster (a claim in Redis keyed by the log position the callback covers); an
//! optional `X-Yws-Signature: sha256=<hex HMAC-SHA256 of the body>`; bounded retries with
//! backoff on timeouts, connection errors and 5xx; failures logged and counted.

use crate::config::CallbackConfig;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use parking_lot::Mutex;
use prometheus::{IntCounterVec, Opts, Registry};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use yws_core::export::{export, parse_spec, ObjectSpec};
use yws_core::{Claimed, RoomListener, RoomName, Rooms};

/// Callback metrics.
#[derive(Debug, Clone)]
pub struct CallbackMetrics {
    /// Callbacks by result: sent, failed, retried, skipped (covered by another node).
    pub callbacks: IntCounterVec,
}

impl CallbackMetrics {
    /// Creates and registers.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let callbacks = IntCounterVec::new(
            Opts::new("yws_gateway_callbacks_total", "HTTP callbacks by result"),
            &["result"],
        )?;
        registry.register(Box::new(callbacks.clone()))?;
        for r in ["sent", "failed", "retried", "skipped"] {
            callbacks.with_label_values(&[r]);
        }
        Ok(CallbackMetrics { callbacks })
    }
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    first: Instant,
    last: Instant,
    /// Not before (set when another node holds the window).
    not_before: Option<Instant>,
}

/// Debounces changes per room and sends callbacks.
#[derive(Debug)]
pub struct Callbacks {
    config: CallbackConfig,
    url: http::Uri,
    spec: ObjectSpec,
    pending: Mutex<HashMap<RoomName, Pending>>,
    notify: Notify,
    metrics: CallbackMetrics,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    slots: Arc<Semaphore>,
}

impl RoomListener for Callbacks {
    fn changed(&self, room: &RoomName) {
        let now = Instant::now();
        let mut pending = self.pending.lock();
        let entry = pending.entry(room.clone()).or_insert(Pending {
            first: now,
            last: now,
            not_before: None,
        });
        entry.last = now;
        drop(pending);
        self.notify.notify_one();
    }
}

impl Callbacks {
    /// The callback service, or `None` when `callback.url` is unset.
    pub fn new(config: &CallbackConfig, metrics: CallbackMetrics) -> Option<Arc<Self>> {
        let url = config.url.as_ref()?.parse().ok()?;
        let spec = parse_spec(&config.objects).ok()?;
        let client = Client::builder(TokioExecutor::new()).build_http();
        Some(Arc::new(Callbacks {
            config: config.clone(),
            url,
            spec,
            pending: Mutex::new(HashMap::new()),
            notify: Notify::new(),
            metrics,
            client,
            slots: Arc::new(Semaphore::new(config.max_concurrency)),
        }))
    }

    fn due(&self, p: &Pending) -> Instant {
        let quiet = p.last + Duration::from_millis(self.config.debounce_wait_ms);
        let max = p.first + Duration::from_millis(self.config.debounce_maxwait_ms);
        let due = quiet.min(max);
        p.not_before.map_or(due, |nb| due.max(nb))
    }

    /// Fires due callbacks until `cancel`; on cancel, sends what is pending once (shutdown).
    pub async fn run(
        self: Arc<Self>,
        rooms: Arc<Rooms>,
        cancel: CancellationToken,
        tracker: TaskTracker,
    ) {
        loop {
            let next = self.pending.lock().values().map(|p| self.due(p)).min();
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.notify.notified() => continue,
                _ = sleep => {}
            }
            let now = Instant::now();
            let due: Vec<RoomName> = {
                let mut pending = self.pending.lock();
                let due: Vec<RoomName> = pending
                    .iter()
                    .filter(|(_, p)| self.due(p) <= now)
                    .map(|(r, _)| r.clone())
                    .collect();
                for room in &due {
                    pending.remove(room);
                }
                due
            };
            for room in due {
                let Ok(permit) = self.slots.clone().acquire_owned().await else {
                    return;
                };
                let this = self.clone();
                let rooms = rooms.clone();
                tracker.spawn(async move {
                    let _permit = permit;
                    this.fire(&rooms, &room).await;
                });
            }
        }
        // Shutdown: whatever is still pending is sent now, once, within the shutdown deadline.
        let pending: Vec<RoomName> = self.pending.lock().drain().map(|(r, _)| r).collect();
        for room in pending {
            self.fire(&rooms, &room).await;
        }
    }

    async fn fire(&self, rooms: &Rooms, name: &RoomName) {
        let Some(room) = rooms.get(name) else {
            tracing::debug!(room = %name, "room unloaded before its callback; skipped");
            return;
        };
        let window = Duration::from_millis(self.config.debounce_wait_ms);
        match rooms
            .backend()
            .claim_callback(name, room.position(), window)
            .await
        {
            Ok(Claimed::Send) => {}
            Ok(Claimed::Covered) => {
                self.metrics.callbacks.with_label_values(&["skipped"]).inc();
                return;
            }
            Ok(Claimed::Later(wait)) => {
                let at = Instant::now() + wait;
                let mut pending = self.pending.lock();
                let p = pending.entry(name.clone()).or_insert(Pending {
                    first: at,
                    last: at,
                    not_before: None,
                });
                p.not_before = Some(at);
                drop(pending);
                self.notify.notify_one();
                return;
            }
            Err(e) => {
                tracing::warn!(room = %name, error = %e, "callback claim failed; sending anyway")
            }
        }
        let state = room.encode_state();
        drop(room);
        let data = match export(&state, &self.spec) {
            Ok(data) => data,
            Err(e) => {
                tracing::error!(room = %name, error = %e, "callback body could not be built");
                self.metrics.callbacks.with_label_values(&["failed"]).inc();
                return;
            }
        };
        let body = serde_json::json!({ "room": name.as_str(), "data": data }).to_string();
        self.send(name, Bytes::from(body)).await;
    }

    async fn send(&self, room: &RoomName, body: Bytes) {
        let signature = self.config.secret.as_ref().and_then(|secret| {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).ok()?;
            mac.update(&body);
            Some(format!(
                "sha256={}",
                hex::encode(mac.finalize().into_bytes())
            ))
        });
        let timeout = Duration::from_millis(self.config.timeout_ms);
        let mut backoff = Duration::from_millis(self.config.retry_backoff_ms);
        for attempt in 0..=self.config.max_retries {
            let mut request = http::Request::post(self.url.clone())
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(
                    http::header::USER_AGENT,
                    concat!("yws/", env!("CARGO_PKG_VERSION")),
                );
            if let Some(sig) = &signature {
                request = request.header("x-yws-signature", sig);
            }
            let Ok(request) = request.body(Full::new(body.clone())) else {
                return;
            };
            let outcome = tokio::time::timeout(timeout, async {
                let response = self.client.request(request).await?;
                let status = response.status();
                let _ = response.into_body().collect().await;
                Ok::<_, hyper_util::client::legacy::Error>(status)
            })
            .await;
            let retry = match outcome {
                Ok(Ok(status)) if status.is_success() => {
                    self.metrics.callbacks.with_label_values(&["sent"]).inc();
                    return;
                }
                Ok(Ok(status)) if status.is_server_error() => format!("status {status}"),
                Ok(Ok(status)) => {
                    tracing::warn!(room = %room, status = status.as_u16(), "callback refused by the receiver; not retried");
                    self.metrics.callbacks.with_label_values(&["failed"]).inc();
                    return;
                }
                Ok(Err(e)) => format!("request failed: {e}"),
                Err(_) => format!("timed out after {timeout:?}"),
            };
            if attempt < self.config.max_retries {
                tracing::info!(room = %room, attempt = attempt + 1, reason = %retry, "callback failed; retrying");
                self.metrics.callbacks.with_label_values(&["retried"]).inc();
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            } else {
                tracing::warn!(room = %room, reason = %retry, attempts = attempt + 1, "callback failed; giving up");
                self.metrics.callbacks.with_label_values(&["failed"]).inc();
            }
        }
    }
}
