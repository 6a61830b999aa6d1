//! One WebSocket connection, from the first frame to the close frame.
//!
//! The loop is generic over a `Sink + Stream` of WebSocket messages, so tests drive it over an
//! in-memory duplex pipe. It `select!`s (biased, in this order) on: being asked to close (room
//! kicked us, token expiry, node shutdown), frames queued for us, frames from the client, the
//! ping timer and the idle timer. What a frame from the client does is in `session/handler.rs`.

use crate::metrics::{frame_type, Metrics};
use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::ready;
use std::time::Duration;
use tokio::time::{sleep_until, Instant, Sleep};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yws_core::{
    Access, CloseReason, ConnId, Outbox, PeerControl, RateLimits, Room, RoomBackend, RoomLease,
};
use yws_protocol::encode;

/// Logs an event of one connection with its room and connection id.
///
/// The fields are on the event rather than on a per-connection span: an enabled span costs
/// every idle connection about 450 bytes (its registry slot and formatted fields), so the
/// connection span is `debug` level and the events that matter carry their context.
macro_rules! conn_event {
    ($level:ident, $room:expr, $conn:expr, $($rest:tt)+) => {
        tracing::$level!(room = %$room.name(), conn_id = $conn.0, $($rest)+)
    };
}
pub(crate) use conn_event;

/// Outgoing messages larger than this are sent as WebSocket fragments of this size, so a
/// connection's write buffer never has to hold a whole multi-megabyte document.
pub const FRAGMENT_BYTES: usize = 64 * 1024;

/// Frames written per flush.
const WRITE_BATCH: usize = 64;

/// How long to wait for the client's close frame after sending ours.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Timeouts and intervals of a session.
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    /// Frames queued for a connection before it is closed as too slow.
    pub outbox_frames: usize,
    /// Bytes queued for a connection before it is closed as too slow.
    pub outbox_bytes: usize,
    /// WebSocket ping interval (a missing pong by the next ping closes the connection).
    pub ping_interval: Duration,
    /// Send an empty awareness update after this long without sending anything.
    pub idle_message: Option<Duration>,
    /// Messages and bytes per second one connection may send.
    pub rate: RateLimits,
    /// A connection kept waiting by the rate limits this long without a break is closed (1008).
    pub max_throttled: Duration,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The server closed it with this reason.
    Server(CloseReason),
    /// The client closed it (close frame or end of stream).
    ClientClosed,
    /// The socket failed.
    Io,
}

impl End {
    /// The metric label of this ending.
    pub fn label(self) -> &'static str {
        match self {
            End::Server(reason) => reason.label(),
            End::ClientClosed => "client_closed",
            End::Io => "io_error",
        }
    }
}

/// What a session needs besides its socket.
#[derive(Debug)]
pub struct Session {
    /// This connection's id.
    pub conn: ConnId,
    /// The room, held for the life of the session.
    pub lease: RoomLease,
    /// Lets the room and the node end the session.
    pub control: Arc<PeerControl>,
    /// What the client may do.
    pub access: Access,
    /// When the client's credentials expire (closes with 4401).
    pub expires_at: Option<Instant>,
}

/// Shared by every session of the node.
#[derive(Debug, Clone)]
pub struct SessionContext {
    /// Where updates are written before they are applied.
    pub backend: Arc<dyn RoomBackend>,
    /// Gateway metrics.
    pub metrics: Metrics,
    /// Timeouts and limits.
    pub settings: SessionSettings,
}

/// Removes the connection from its room even if the session panics.
struct Membership<'a> {
    room: &'a Room,
    conn: ConnId,
    active: bool,
}

impl Membership<'_> {
    fn leave(mut self) -> Option<Vec<u8>> {
        self.active = false;
        self.room.leave(self.conn)
    }
}

impl Drop for Membership<'_> {
    fn drop(&mut self) {
        if self.active {
            self.room.leave(self.conn);
        }
    }
}

/// Runs a session to its end and returns how it ended.
#[expect(
    clippy::manual_async_fn,
    reason = "an `async fn` stores its arguments twice; see the comment in the body"
)]
pub fn run<'a, S>(
    mut ws: S,
    session: Session,
    ctx: &'a SessionContext,
) -> impl Future<Output = End> + 'a
where
    S: Stream<Item = Result<WsMessage, WsError>> + Sink<WsMessage, Error = WsError> + Unpin + 'a,
{
    // An `async` block rather than an `async fn`: the arguments of an `async fn` are stored
    // twice in its state (as captured and as moved into locals), and the socket alone is
    // ~330 bytes of every connection's memory.
    async move {
        let room = session.lease.room().clone();
        let outbox = Outbox::new(ctx.settings.outbox_frames, ctx.settings.outbox_bytes);
        room.join(session.conn, outbox.clone(), session.control.clone());
        let membership = Membership {
            room: &room,
            conn: session.conn,
            active: true,
        };
        if !session.lease.is_current() {
            // Dropped (backend unavailable) or deleted between the lease and the join: its
            // kick came before we were a peer. Leave, so the client reconnects to a live room.
            conn_event!(
                info,
                room,
                session.conn,
                "room dropped while joining; closing so the client reconnects"
            );
            session.control.kick(if room.is_retired() {
                CloseReason::RoomDeleted
            } else {
                CloseReason::BackendUnavailable
            });
        }

        // One coarse housekeeping timer drives pings and idle messages, so the loop never
        // re-registers timers per frame. Inside the loop, settings are read from `ctx` rather
        // than kept in locals, which would be stored in this future.
        let SessionSettings {
            ping_interval,
            idle_message,
            ..
        } = ctx.settings;
        let tick_every = (idle_message.unwrap_or(ping_interval).min(ping_interval) / 4)
            .max(Duration::from_millis(50));
        let mut tick = tokio::time::interval_at(Instant::now() + tick_every, tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_ping = Instant::now() + ping_interval;
        let mut awaiting_pong = false;
        let mut last_sent = Instant::now();
        // Boxed, and only when there is an expiry: most connections have none, and every byte of
        // this future is paid by every idle connection.
        let mut expiry = session.expires_at.map(|at| Box::pin(sleep_until(at)));
        // Boxed, and only with rate limits (connection or room): off by default.
        let mut pacer = (ctx.settings.rate.is_on() || room.is_rate_limited())
            .then(|| Box::new(Pacer::new(ctx.settings.rate, ctx.settings.max_throttled)));

        let end = loop {
            tokio::select! {
                biased;
                _ = session.control.kicked() => {
                    break End::Server(session.control.reason().unwrap_or(CloseReason::ServiceRestart));
                }
                _ = until(&mut expiry), if expiry.is_some() => {
                    break End::Server(CloseReason::TokenExpired);
                }
                frame = outbox.next() => {
                    // Boxed: a write in progress is not part of every idle connection's state.
                    let stuck = Box::pin(write_or_give_way(
                        &mut ws,
                        frame,
                        &outbox,
                        &session.control,
                        &mut tick,
                        ctx,
                    ))
                    .await;
                    match stuck {
                        Written::Done => {}
                        Written::Failed => break End::Io,
                        Written::Kicked(reason) => break End::Server(reason),
                        Written::Stalled => {
                            conn_event!(info, room, session.conn, "client stopped reading for two ping intervals; dropping the connection");
                            break End::Server(CloseReason::TooSlow);
                        }
                    }
                    last_sent = Instant::now();
                }
                _ = until_paced(&mut pacer), if pacer.as_ref().is_some_and(|p| p.waiting()) => {
                    if let Some(pacer) = pacer.as_mut() {
                        pacer.resume(&ctx.metrics);
                    }
                }
                incoming = ws.next(), if !pacer.as_ref().is_some_and(|p| p.waiting()) => {
                    awaiting_pong = false;
                    match incoming {
                        Some(Ok(WsMessage::Binary(data))) => {
                            // Boxed: only a connection that is talking pays for this state.
                            let mut handler = Handler {
                                room: &room,
                                conn: session.conn,
                                access: session.access,
                                outbox: &outbox,
                                ctx,
                            };
                            let messages = match Box::pin(handler.frame(&data)).await {
                                Ok(messages) => messages,
                                Err(reason) => break End::Server(reason),
                            };
                            if let Some(pacer) = pacer.as_mut() {
                                let paid = pacer.pay(&room, messages, data.len(), &ctx.metrics);
                                if let Err(reason) = paid {
                                    conn_event!(info, room, session.conn, "over the rate limits for too long; closing");
                                    break End::Server(reason);
                                }
                            }
                        }
                        Some(Ok(WsMessage::Text(_))) => {
                            conn_event!(info, room, session.conn, "text frame from client; y-websocket is binary");
                            break End::Server(CloseReason::UnsupportedData);
                        }
                        Some(Ok(WsMessage::Close(_))) | None => break End::ClientClosed,
                        Some(Ok(_)) => {} // ping (answered by tungstenite), pong, raw frame
                        Some(Err(e)) => break read_error(e, &room, session.conn),
                    }
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    if now >= next_ping {
                        if awaiting_pong {
                            conn_event!(info, room, session.conn, "no pong since the last ping; closing");
                            break End::Server(CloseReason::PingTimeout);
                        }
                        awaiting_pong = true;
                        next_ping = now + ctx.settings.ping_interval;
                        let ping = send(&mut ws, WsMessage::Ping(Bytes::new()));
                        match Box::pin(tokio::time::timeout(ctx.settings.ping_interval * 2, ping)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => break End::Io,
                            Err(_) => {
                                conn_event!(info, room, session.conn, "client stopped reading for two ping intervals; dropping the connection");
                                break End::Server(CloseReason::TooSlow);
                            }
                        }
                    }
                    let idle = ctx.settings.idle_message;
                    if idle.is_some_and(|idle| now.saturating_duration_since(last_sent) >= idle) {
                        // Client watchdogs ignore pings; an empty awareness update is a message.
                        let frame = Bytes::from(encode::empty_awareness());
                        if write_batch(&mut ws, frame, &outbox, &ctx.metrics).await.is_err() {
                            break End::Io;
                        }
                        last_sent = now;
                    }
                }
            }
        };
        outbox.close();
        if let Some(pacer) = pacer {
            pacer.end(&ctx.metrics);
        }

        if let Some(removal) = membership.leave() {
            if let Err(e) = Box::pin(ctx.backend.publish_awareness(&room, &removal)).await {
                tracing::debug!(error = %e, "could not share awareness removal; other nodes expire it");
            }
        }
        if let End::Server(reason) = end {
            Box::pin(close(&mut ws, reason)).await;
        }
        end
    }
}

fn read_error(e: WsError, room: &Room, conn: ConnId) -> End {
    match e {
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            conn_event!(info, room, conn, size, max_size, "message too big");
            End::Server(CloseReason::MessageTooBig)
        }
        WsError::Capacity(e) => {
            conn_event!(info, room, conn, error = %e, "frame over capacity");
            End::Server(CloseReason::MessageTooBig)
        }
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => End::Io,
        WsError::Protocol(e) => {
            conn_event!(info, room, conn, error = %e, "WebSocket protocol violation");
            End::Server(CloseReason::ProtocolError)
        }
        WsError::Utf8(_) => End::Server(CloseReason::InvalidPayload),
        WsError::ConnectionClosed | WsError::AlreadyClosed => End::ClientClosed,
        e => {
            tracing::debug!(error = %e, "read failed");
            End::Io
        }
    }
}

/// Sends the close frame and waits briefly for the client's answer, so the client sees our
/// close code rather than a reset.
async fn close<S>(ws: &mut S, reason: CloseReason)
where
    S: Stream<Item = Result<WsMessage, WsError>> + Sink<WsMessage, Error = WsError> + Unpin,
{
    let frame = CloseFrame {
        code: CloseCode::from(reason.code()),
        reason: reason.message().into(),
    };
    // Bounded: the socket may be stuck behind a client that stopped reading.
    match tokio::time::timeout(CLOSE_LINGER, ws.send(WsMessage::Close(Some(frame)))).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) | Err(_) => return,
    }
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// How a write gave way.
enum Written {
    Done,
    Failed,
    Kicked(CloseReason),
    Stalled,
}

/// Writes a batch (see [`write_batch`]), unless the session is kicked or the write stalls.
///
/// A client that stops reading blocks the write once its socket buffers are full. The write
/// gives way to a kick (an outbox that overflowed meanwhile, a shutdown) and, measured on the
/// session's housekeeping timer, ends the connection (1013) when it has not completed within
/// two ping intervals: the liveness a pong would prove.
async fn write_or_give_way<S>(
    ws: &mut S,
    first: Bytes,
    queued: &Outbox,
    control: &PeerControl,
    tick: &mut tokio::time::Interval,
    ctx: &SessionContext,
) -> Written
where
    S: Sink<WsMessage, Error = WsError> + Unpin,
{
    let started = Instant::now();
    let write = write_batch(ws, first, queued, &ctx.metrics);
    tokio::pin!(write);
    loop {
        tokio::select! {
            biased;
            written = &mut write => {
                return if written.is_ok() { Written::Done } else { Written::Failed };
            }
            _ = control.kicked() => {
                return Written::Kicked(control.reason().unwrap_or(CloseReason::ServiceRestart));
            }
            _ = tick.tick() => {
                if started.elapsed() >= ctx.settings.ping_interval * 2 {
                    return Written::Stalled;
                }
            }
        }
    }
}

/// Writes `first` and whatever else is queued (up to a batch), then flushes once.
///
/// Written against the `Sink` poll methods rather than as nested `feed` futures: this future
/// is part of the state of every connection, idle or not, so it is kept to a few words.
async fn write_batch<S>(
    ws: &mut S,
    first: Bytes,
    queued: &Outbox,
    metrics: &Metrics,
) -> Result<(), WsError>
where
    S: Sink<WsMessage, Error = WsError> + Unpin,
{
    let mut current = Some(first);
    let mut offset = 0; // bytes of `current` already handed to the sink
    let mut taken = 1; // frames taken from the queue (with `first`)
    poll_fn(|cx| {
        while current.is_some() {
            ready!(ws.poll_ready_unpin(cx))?;
            let Some(frame) = current.take() else { break };
            if offset == 0 {
                metrics.sent.count(frame_type(&frame), frame.len());
            }
            let (message, rest) = piece(frame, offset);
            ws.start_send_unpin(message)?;
            if let Some((frame, end)) = rest {
                current = Some(frame);
                offset = end;
                continue;
            }
            offset = 0;
            current = if taken < WRITE_BATCH {
                queued.try_next()
            } else {
                None
            };
            taken += 1;
        }
        ws.poll_flush_unpin(cx)
    })
    .await
}

/// The WebSocket message carrying `frame` from `offset`, and, when a piece of it remains, the
/// frame and where that piece starts. Frames larger than [`FRAGMENT_BYTES`] go out as fragments.
fn piece(frame: Bytes, offset: usize) -> (WsMessage, Option<(Bytes, usize)>) {
    let total = frame.len();
    if total <= FRAGMENT_BYTES {
        return (WsMessage::Binary(frame), None);
    }
    let end = (offset + FRAGMENT_BYTES).min(total);
    let opcode = if offset == 0 {
        OpCode::Data(Data::Binary)
    } else {
        OpCode::Data(Data::Continue)
    };
    let fragment = Frame::message(frame.slice(offset..end), opcode, end == total);
    let rest = (end < total).then_some((frame, end));
    (WsMessage::Frame(fragment), rest)
}

/// Sends one message and flushes, with the state of a `poll_fn` rather than of `SinkExt::send`.
async fn send<S>(ws: &mut S, message: WsMessage) -> Result<(), WsError>
where
    S: Sink<WsMessage, Error = WsError> + Unpin,
{
    let mut message = Some(message);
    poll_fn(|cx| {
        if message.is_some() {
            ready!(ws.poll_ready_unpin(cx))?;
            if let Some(m) = message.take() {
                ws.start_send_unpin(m)?;
            }
        }
        ws.poll_flush_unpin(cx)
    })
    .await
}

/// Completes when `sleep` does; never when there is none.
async fn until(sleep: &mut Option<Pin<Box<Sleep>>>) {
    match sleep {
        Some(sleep) => sleep.await,
        None => std::future::pending().await,
    }
}

mod handler;
mod pacer;

use handler::Handler;
use pacer::{until_paced, Pacer};

#[cfg(test)]
mod tests;
