//! A connection as a room sees it: an id, a bounded outbox of frames, and a control through
//! which the room (or the node) can end it with a reason. Also its access level, which the
//! session enforces before an edit reaches the room.

use bytes::Bytes;
use std::sync::{Arc, OnceLock};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// A connection id, unique within one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a connection may do in its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Access {
    /// Read the document and awareness; publish awareness; edit.
    #[default]
    ReadWrite,
    /// Read the document and awareness; publish awareness; edits are not applied.
    ReadOnly,
}

/// Why the server ends a connection. Each reason has one WebSocket close code and one bounded
/// metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The client closed, or the server closes normally (1000).
    Normal,
    /// A frame could not be decoded as y-websocket (1002).
    ProtocolError,
    /// A text frame: y-websocket is binary (1003).
    UnsupportedData,
    /// A message decoded but its content is invalid: update, state vector, awareness JSON (1007).
    InvalidPayload,
    /// The client broke a limit other than size, e.g. too many awareness ids (1008).
    PolicyViolation,
    /// A message larger than the configured maximum (1009).
    MessageTooBig,
    /// Something failed on our side (1011).
    InternalError,
    /// The node is shutting down; reconnect elsewhere (1012).
    ServiceRestart,
    /// The client could not keep up with its room; it re-syncs when it reconnects (1013).
    TooSlow,
    /// The shared log or store is unavailable; reconnect later (1013).
    BackendUnavailable,
    /// The client did not answer a ping in time (1001).
    PingTimeout,
    /// The client's token expired while connected (4401).
    TokenExpired,
    /// The room was deleted through the HTTP API (4404).
    RoomDeleted,
}

impl CloseReason {
    /// The WebSocket close code sent to the client.
    pub fn code(self) -> u16 {
        match self {
            CloseReason::Normal => 1000,
            CloseReason::PingTimeout => 1001,
            CloseReason::ProtocolError => 1002,
            CloseReason::UnsupportedData => 1003,
            CloseReason::InvalidPayload => 1007,
            CloseReason::PolicyViolation => 1008,
            CloseReason::MessageTooBig => 1009,
            CloseReason::InternalError => 1011,
            CloseReason::ServiceRestart => 1012,
            CloseReason::TooSlow | CloseReason::BackendUnavailable => 1013,
            CloseReason::TokenExpired => 4401,
            CloseReason::RoomDeleted => 4404,
        }
    }

    /// A short, bounded label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            CloseReason::Normal => "normal",
            CloseReason::ProtocolError => "protocol_error",
            CloseReason::UnsupportedData => "unsupported_data",
            CloseReason::InvalidPayload => "invalid_payload",
            CloseReason::PolicyViolation => "policy_violation",
            CloseReason::MessageTooBig => "message_too_big",
            CloseReason::InternalError => "internal_error",
            CloseReason::ServiceRestart => "shutdown",
            CloseReason::TooSlow => "too_slow",
            CloseReason::BackendUnavailable => "backend_unavailable",
            CloseReason::PingTimeout => "ping_timeout",
            CloseReason::TokenExpired => "token_expired",
            CloseReason::RoomDeleted => "room_deleted",
        }
    }

    /// The text sent with the close frame.
    pub fn message(self) -> &'static str {
        match self {
            CloseReason::Normal => "",
            CloseReason::ProtocolError => "malformed y-websocket message",
            CloseReason::UnsupportedData => "y-websocket expects binary frames",
            CloseReason::InvalidPayload => "invalid update or awareness payload",
            CloseReason::PolicyViolation => "limit exceeded",
            CloseReason::MessageTooBig => "message too big",
            CloseReason::InternalError => "internal error",
            CloseReason::ServiceRestart => "server restarting, reconnect",
            CloseReason::TooSlow => "client too slow, reconnect to resync",
            CloseReason::BackendUnavailable => "storage unavailable, reconnect later",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::TokenExpired => "token expired",
            CloseReason::RoomDeleted => "room deleted",
        }
    }
}

/// Lets a room or the node end a connection with a reason. The first reason wins.
#[derive(Debug, Default)]
pub struct PeerControl {
    token: CancellationToken,
    reason: OnceLock<CloseReason>,
}

impl PeerControl {
    /// A control whose token is a child of `parent` (the node's shutdown token).
    pub fn child_of(parent: &CancellationToken) -> Arc<Self> {
        Arc::new(PeerControl {
            token: parent.child_token(),
            reason: OnceLock::new(),
        })
    }

    /// Asks the connection to close with `reason`.
    pub fn kick(&self, reason: CloseReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    /// Completes once the connection should close.
    pub fn kicked(&self) -> WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }

    /// Whether the connection was asked to close.
    pub fn is_kicked(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The reason given to [`PeerControl::kick`]; a cancelled parent token means shutdown.
    pub fn reason(&self) -> Option<CloseReason> {
        match self.reason.get() {
            Some(reason) => Some(*reason),
            None if self.token.is_cancelled() => Some(CloseReason::ServiceRestart),
            None => None,
        }
    }
}

/// A frame shared by every recipient of a broadcast.
pub type Frame = Bytes;

/// Builds a control for tests and tools that have no node token.
pub fn standalone_control() -> Arc<PeerControl> {
    Arc::new(PeerControl::default())
}
