//! One simulated y-websocket client: connect, sync handshake, write updates and awareness at
//! the configured rates, receive and account for everything the server sends, and on a drop
//! reconnect with backoff (to the next URL) and resync through sync step 1.
//!
//! The client speaks the real protocol: it opens with its state vector, answers the server's
//! sync step 1 with what the server lacks, and counts itself synced on the server's sync
//! step 2. Its document lives in a lazily applied [`Replica`].

mod receive;

use crate::config::Settings;
use crate::header;
use crate::metrics::{CloseKind, Metrics};
use crate::replica::Replica;
use crate::room::Room;
use crate::seed::SeedPlan;
use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use yrs::{Text, TextRef, Transact};
use yws_protocol::{encode, AwarenessEntry};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a client does besides listening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends updates at the step's rate.
    Writer,
    /// Only listens (and answers sync).
    Observer,
    /// Pushes a seed document of this many bytes into the room (as one sync step 2, or as
    /// `seed_updates` update messages), then listens.
    Seeder(usize),
}

/// When writers write: from `start` to `stop`, `rate` updates per second each.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// When writing starts.
    pub start: Instant,
    /// When writing stops.
    pub stop: Instant,
    /// Updates per second per writer.
    pub rate: f64,
}

/// What every client of a step shares.
#[derive(Debug)]
pub struct Shared {
    /// The validated settings of the run.
    pub settings: Arc<Settings>,
    /// Counters and histograms of the step.
    pub metrics: Arc<Metrics>,
    /// Bounds handshakes in flight (`connect_concurrency`).
    pub connect_permits: Arc<Semaphore>,
    /// The write window, once the step opens it.
    pub window: watch::Receiver<Option<Window>>,
    /// Cancelled when the step ends.
    pub cancel: CancellationToken,
    /// Updates the step may still send.
    pub send_budget: AtomicU64,
}

/// Who a client is.
#[derive(Debug)]
pub struct ClientSpec {
    /// The client's number within the step.
    pub id: u64,
    /// What the client does.
    pub role: Role,
    /// Index into `settings.urls` of the first URL tried.
    pub url_index: usize,
    /// The room it joins.
    pub room: Arc<Room>,
    /// Fired once a seeder's document is known to be on the server.
    pub ready: Option<oneshot::Sender<()>>,
}

/// What a client hands back when it stops.
#[derive(Debug)]
pub struct Outcome {
    /// The client's number within the step.
    pub id: u64,
    /// What the client does.
    pub role: Role,
    /// The room it joins.
    pub room: Arc<Room>,
    /// Its document as it stood at the end.
    pub replica: Replica,
    /// Whether it completed a sync handshake at least once.
    pub ever_synced: bool,
    /// Where it stood at the end, for the report on a room that did not converge.
    pub last: LastSession,
}

/// A client's last connection, as it stood when the step ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LastSession {
    /// Index into `settings.urls` of the URL of the last connection attempt.
    pub url_index: usize,
    /// Whether that connection was open and synced when the step ended.
    pub synced_at_end: bool,
    /// When it last completed a sync handshake.
    pub synced_at: Option<Instant>,
    /// Connection attempts in all.
    pub sessions: u32,
}

/// Per-client state that survives reconnects.
struct Client {
    spec: ClientSpec,
    shared: Arc<Shared>,
    replica: Replica,
    text: Option<TextRef>,
    payload: String,
    window: Option<Window>,
    window_closed: bool,
    writes: Option<Interval>,
    awareness: Option<Interval>,
    awareness_clock: u64,
    ever_synced: bool,
    last: LastSession,
    /// A seeder's document still to be written as separate updates (`seed_updates` > 1).
    seed: Option<SeedPlan>,
}

/// Runs a client until the step is cancelled (or, without `reconnect`, until it drops).
pub async fn run(spec: ClientSpec, shared: Arc<Shared>) -> Outcome {
    let mut replica = Replica::new(spec.id, shared.settings.retain_bytes);
    let mut seed = None;
    if let Role::Seeder(bytes) = spec.role {
        if shared.settings.seed_updates > 1 {
            // Written update by update once connected: the replica stays empty until then,
            // so the answer to the server's sync step 1 carries nothing.
            seed = Some(SeedPlan::new(bytes, shared.settings.seed_updates));
        } else {
            crate::seed::fill(replica.doc(), bytes);
        }
    }
    let payload = crate::seed::payload(shared.settings.payload_bytes, spec.id);
    let mut client = Client {
        spec,
        shared,
        replica,
        text: None,
        payload,
        window: None,
        window_closed: false,
        writes: None,
        awareness: None,
        awareness_clock: 0,
        ever_synced: false,
        last: LastSession::default(),
        seed,
    };
    client.lifecycle().await;
    Outcome {
        id: client.spec.id,
        role: client.spec.role,
        room: client.spec.room,
        replica: client.replica,
        ever_synced: client.ever_synced,
        last: client.last,
    }
}

enum End {
    Cancelled,
    Dropped { error: anyhow::Error, synced: bool },
}

impl Client {
    async fn lifecycle(&mut self) {
        let urls = self.shared.settings.urls.len();
        let mut url_index = self.spec.url_index;
        let mut failures: u32 = 0;
        loop {
            match self.session(url_index).await {
                End::Cancelled => return,
                End::Dropped { error, synced } => {
                    tracing::debug!(client = self.spec.id, %error, synced, "connection dropped");
                    failures = if synced {
                        0
                    } else {
                        failures.saturating_add(1)
                    };
                }
            }
            if !self.shared.settings.reconnect {
                return;
            }
            url_index = (url_index + 1) % urls;
            let backoff = backoff(failures, self.spec.id);
            tokio::select! {
                _ = self.shared.cancel.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
        }
    }

    async fn session(&mut self, url_index: usize) -> End {
        let cancel = self.shared.cancel.clone();
        let metrics = Arc::clone(&self.shared.metrics);
        let permit = tokio::select! {
            p = Arc::clone(&self.shared.connect_permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return End::Cancelled,
            },
            _ = cancel.cancelled() => return End::Cancelled,
        };
        // Sync time runs from here: waiting for a permit is the generator's queue, not the
        // server's.
        let started = Instant::now();
        metrics.add(|c| &c.connect_attempts, 1);
        self.last.url_index = url_index;
        self.last.synced_at_end = false;
        self.last.sessions = self.last.sessions.saturating_add(1);
        let settings = &self.shared.settings;
        let url = format!(
            "{}/{}",
            settings.urls[url_index].trim_end_matches('/'),
            self.spec.room.name
        );
        let timeout = Duration::from_secs_f64(settings.connect_timeout_s);
        let config = WebSocketConfig::default()
            // tungstenite zero-fills this much before every read: keep it small, since most
            // frames are tens of bytes (large sync step 2s just take more reads).
            .read_buffer_size(4 * 1024)
            .max_message_size(Some(settings.max_message_bytes))
            .max_frame_size(Some(settings.max_message_bytes));
        let connect = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
        let mut ws = tokio::select! {
            r = tokio::time::timeout(timeout, connect) => match r {
                Ok(Ok((ws, _response))) => ws,
                Ok(Err(e)) => return self.failed_connect(anyhow!(e).context("connect")),
                Err(_) => return self.failed_connect(anyhow!("connect timed out")),
            },
            _ = cancel.cancelled() => return End::Cancelled,
        };
        let mut session = Session {
            started,
            permit: Some(permit),
            synced: false,
            step2s: 0,
            confirm_sent: false,
            seeding: false,
            close: None,
        };
        let result = self.drive(&mut ws, &mut session).await;
        if session.synced {
            metrics.counters.connected.fetch_sub(1, Ordering::Relaxed);
        }
        match result {
            Ok(()) => {
                self.last.synced_at_end = session.synced;
                // Cancelled: say goodbye, briefly.
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                End::Cancelled
            }
            Err(err) => {
                // A close frame's code, or no close frame at all (reset, EOF, write error,
                // sync timeout).
                metrics.closed(session.close.unwrap_or(CloseKind::Dropped));
                if session.synced {
                    metrics.add(|c| &c.disconnects, 1);
                } else {
                    metrics.add(|c| &c.connect_failures, 1);
                }
                End::Dropped {
                    error: err,
                    synced: session.synced,
                }
            }
        }
    }

    fn failed_connect(&self, error: anyhow::Error) -> End {
        self.shared.metrics.add(|c| &c.connect_failures, 1);
        End::Dropped {
            error,
            synced: false,
        }
    }

    /// The message loop of one connection. `Ok` means cancelled, `Err` a dropped connection.
    async fn drive(&mut self, ws: &mut Ws, s: &mut Session) -> anyhow::Result<()> {
        let cancel = self.shared.cancel.clone();
        let mut window_rx = self.shared.window.clone();
        let sv = self.replica.state_vector(&self.spec.room);
        self.send(ws, encode::sync_step1(&sv)).await?;
        if self.shared.settings.awareness_rate > 0.0 {
            self.send_awareness(ws).await?;
        }
        let sync_deadline =
            s.started + Duration::from_secs_f64(self.shared.settings.connect_timeout_s);
        // Created once, not per message: this loop runs for every frame received.
        let cancelled = cancel.cancelled();
        tokio::pin!(cancelled);
        let sync_timeout = tokio::time::sleep_until(sync_deadline);
        tokio::pin!(sync_timeout);
        loop {
            tokio::select! {
                biased;
                _ = &mut cancelled => return Ok(()),
                frame = ws.next() => match frame {
                    Some(Ok(WsMessage::Binary(frame))) => self.on_frame(ws, s, frame).await?,
                    Some(Ok(WsMessage::Close(frame))) => {
                        let code = frame.as_ref().map(|f| u16::from(f.code));
                        s.close = Some(code.map_or(CloseKind::Other, CloseKind::of_code));
                        bail!("closed by the server ({})", code.map_or("no code".into(), |c| c.to_string()));
                    }
                    None => bail!("connection ended without a close frame"),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(anyhow!(e).context("read")),
                },
                // After incoming frames (`biased`): the server echoes every seed update, and
                // those echoes must be read while the seed is written.
                _ = std::future::ready(()), if s.seeding => self.seed_next(ws, s).await?,
                _ = &mut sync_timeout, if !s.synced => {
                    bail!("no sync step 2 within the connect timeout");
                }
                changed = window_rx.changed(), if self.window.is_none() && !self.window_closed => {
                    match changed {
                        Ok(()) => self.open_window(*window_rx.borrow_and_update()),
                        Err(_) => self.window_closed = true,
                    }
                }
                _ = tick(&mut self.writes), if s.synced => self.write(ws).await?,
                _ = tick(&mut self.awareness), if s.synced => self.send_awareness(ws).await?,
            }
        }
    }

    fn open_window(&mut self, window: Option<Window>) {
        let Some(w) = window else { return };
        self.window = Some(w);
        if self.spec.role != Role::Writer || w.rate <= 0.0 {
            return;
        }
        let period = Duration::from_secs_f64(1.0 / w.rate);
        // Spread writers over the period so they do not all fire at once.
        let offset = period.mul_f64((self.spec.id % 1_000) as f64 / 1_000.0);
        let mut interval = tokio::time::interval_at(w.start + offset, period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        self.writes = Some(interval);
    }

    async fn write(&mut self, ws: &mut Ws) -> anyhow::Result<()> {
        let Some(window) = self.window else {
            return Ok(());
        };
        if Instant::now() >= window.stop {
            self.writes = None;
            return Ok(());
        }
        let budget =
            self.shared
                .send_budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1));
        if budget.is_err() {
            self.shared.metrics.add(|c| &c.send_budget_exhausted, 1);
            self.writes = None;
            return Ok(());
        }
        let doc = self.replica.doc();
        let text = self
            .text
            .get_or_insert_with(|| doc.get_or_insert_text(crate::seed::TEXT));
        let bytes = {
            let mut txn = doc.transact_mut();
            text.insert(&mut txn, 0, &self.payload);
            txn.encode_update_v1()
        };
        let id = header::update_id(&bytes).context("own update has no id")?;
        let frame = encode::update(&bytes);
        self.replica.note_own(id);
        self.spec
            .room
            .record_sent(id, Instant::now(), Bytes::from(bytes));
        self.shared.metrics.add(|c| &c.sent, 1);
        self.send(ws, frame).await
    }

    /// Sends the next update of a split seed; after the last one, a sync step 1 whose answer
    /// proves that the server applied them all (it handles a connection's messages in order).
    async fn seed_next(&mut self, ws: &mut Ws, s: &mut Session) -> anyhow::Result<()> {
        let Some(plan) = self.seed.as_mut() else {
            s.seeding = false;
            return Ok(());
        };
        if let Some(update) = plan.next_update(self.replica.doc()) {
            return self.send(ws, encode::update(&update)).await;
        }
        tracing::debug!(
            client = self.spec.id,
            updates = plan.written(),
            "seed written"
        );
        self.seed = None;
        s.seeding = false;
        s.confirm_sent = true;
        let sv = self.replica.state_vector(&self.spec.room);
        self.send(ws, encode::sync_step1(&sv)).await
    }

    async fn send_awareness(&mut self, ws: &mut Ws) -> anyhow::Result<()> {
        if self.awareness.is_none() && self.shared.settings.awareness_rate > 0.0 {
            let period = Duration::from_secs_f64(1.0 / self.shared.settings.awareness_rate);
            let mut interval = tokio::time::interval_at(Instant::now() + period, period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
            self.awareness = Some(interval);
        }
        self.awareness_clock += 1;
        let state = format!(
            r##"{{"user":{{"name":"yws-load {}","color":"#30bced"}},"cursor":{{"anchor":{},"head":{}}}}}"##,
            self.spec.id, self.awareness_clock, self.awareness_clock
        );
        let frame = encode::awareness([AwarenessEntry {
            client_id: self.spec.id,
            clock: self.awareness_clock,
            state: &state,
        }]);
        self.shared.metrics.add(|c| &c.awareness_sent, 1);
        self.send(ws, frame).await
    }

    async fn send(&self, ws: &mut Ws, frame: Vec<u8>) -> anyhow::Result<()> {
        self.shared
            .metrics
            .add(|c| &c.bytes_sent, frame.len() as u64);
        ws.send(WsMessage::Binary(frame.into()))
            .await
            .context("send")
    }
}

/// Per-connection state.
struct Session {
    started: Instant,
    /// Held until synced: `connect_concurrency` bounds handshakes, not connections.
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    synced: bool,
    step2s: u32,
    confirm_sent: bool,
    /// A split seed is being written (the server's sync step 1 was answered).
    seeding: bool,
    /// The server's close code, when it closed the connection with a close frame.
    close: Option<CloseKind>,
}

async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// Exponential backoff from 100 ms to 5 s with up to 50 % jitter (derived from `salt`).
pub fn backoff(failures: u32, salt: u64) -> Duration {
    let base = 100u64.saturating_mul(1 << failures.min(6)).min(5_000);
    let jitter = (salt.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 33) % (base / 2 + 1);
    Duration::from_millis(base / 2 + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0, 1) <= Duration::from_millis(100));
        assert!(backoff(0, 1) >= Duration::from_millis(50));
        assert!(backoff(3, 1) >= Duration::from_millis(400));
        assert!(backoff(30, 1) <= Duration::from_millis(5_000));
        assert!(backoff(30, 7) >= Duration::from_millis(2_500));
    }
}
