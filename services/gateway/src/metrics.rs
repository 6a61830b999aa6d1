//! Gateway metrics, registered on the registry built in `main`. Labels are bounded: message
//! types, close reasons, refusal reasons — never a room name or a client id.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use yws_core::CloseReason;

/// Message types as labelled in metrics.
pub const MESSAGE_TYPES: [&str; 7] = [
    "sync_step1",
    "sync_step2",
    "update",
    "awareness",
    "query_awareness",
    "auth",
    "other",
];

/// Message and byte counters per message type, resolved once (no label lookup per frame).
#[derive(Debug, Clone)]
pub struct TypeCounters {
    messages: Vec<IntCounter>,
    bytes: Vec<IntCounter>,
}

impl TypeCounters {
    fn new(messages: &IntCounterVec, bytes: &IntCounterVec) -> Self {
        TypeCounters {
            messages: MESSAGE_TYPES
                .iter()
                .map(|t| messages.with_label_values(&[t]))
                .collect(),
            bytes: MESSAGE_TYPES
                .iter()
                .map(|t| bytes.with_label_values(&[t]))
                .collect(),
        }
    }

    /// Counts one frame of `len` bytes carrying one message of `kind` (a [`MESSAGE_TYPES`]
    /// label).
    pub fn count(&self, kind: &str, len: usize) {
        self.message(kind);
        self.frame_bytes(kind, len);
    }

    /// Counts one message of `kind`.
    pub fn message(&self, kind: &str) {
        self.messages[type_index(kind)].inc();
    }

    /// Counts the `len` bytes of one frame whose (first) message is of `kind`. Once per frame:
    /// a frame's bytes are not counted again for each further message it carries.
    pub fn frame_bytes(&self, kind: &str, len: usize) {
        self.bytes[type_index(kind)].inc_by(len as u64);
    }
}

fn type_index(kind: &str) -> usize {
    MESSAGE_TYPES
        .iter()
        .position(|t| *t == kind)
        .unwrap_or(MESSAGE_TYPES.len() - 1)
}

/// The gateway's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Open WebSocket connections.
    pub connections: IntGauge,
    /// WebSocket connections accepted.
    pub connections_opened: IntCounter,
    /// WebSocket connections ended, by reason.
    pub connections_closed: IntCounterVec,
    /// Upgrade requests refused before the upgrade, by reason.
    pub upgrades_rejected: IntCounterVec,
    /// Slow or excess HTTP connections cut off, by reason ([`HTTP_CUTOFF_REASONS`]).
    pub http_cutoffs: IntCounterVec,
    /// Rooms loaded on this node.
    pub rooms: IntGauge,
    /// The node's room limit (`rooms.max_rooms`; 0: no limit).
    pub rooms_max: IntGauge,
    /// Messages received, by type.
    pub messages_received: IntCounterVec,
    /// Bytes received, by the type of each frame's first message.
    pub received_bytes: IntCounterVec,
    /// Messages sent, by type.
    pub messages_sent: IntCounterVec,
    /// Bytes sent, by message type.
    pub sent_bytes: IntCounterVec,
    /// Frames that could not be decoded, by error kind.
    pub malformed_messages: IntCounterVec,
    /// Awareness messages refused (the connection is closed with 1008), by reason.
    pub awareness_rejected: IntCounterVec,
    /// Clients closed because they could not keep up.
    pub slow_clients: IntCounter,
    /// Frames after which a connection had to wait for the rate limits, by the limit that
    /// made it wait (`connection` or `room`).
    pub throttled_frames: IntCounterVec,
    /// Connections waiting for the rate limits now (not read from meanwhile).
    pub throttled_connections: IntGauge,
    /// Document updates from read-only connections, not applied.
    pub readonly_updates_dropped: IntCounter,
    /// Connection tasks that panicked (the process carried on).
    pub panics: IntCounter,
    /// Upgrades (and API requests) refused by authentication, by reason.
    pub auth_refusals: IntCounterVec,
    /// Pre-resolved counters of messages sent.
    pub sent: TypeCounters,
    /// Pre-resolved counters of messages received.
    pub received: TypeCounters,
    /// Time to load a room (snapshot + log) when it becomes active.
    pub room_load_seconds: Histogram,
    /// Time for the backend to accept an update (the shared log write).
    pub append_seconds: Histogram,
}

impl Metrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Metrics {
            connections: IntGauge::new("yws_gateway_connections", "Open WebSocket connections")?,
            connections_opened: IntCounter::new(
                "yws_gateway_connections_opened_total",
                "WebSocket connections accepted",
            )?,
            connections_closed: IntCounterVec::new(
                Opts::new(
                    "yws_gateway_connections_closed_total",
                    "WebSocket connections ended, by reason",
                ),
                &["reason"],
            )?,
            upgrades_rejected: IntCounterVec::new(
                Opts::new(
                    "yws_gateway_upgrades_rejected_total",
                    "Upgrade requests refused before the upgrade, by reason",
                ),
                &["reason"],
            )?,
            http_cutoffs: IntCounterVec::new(
                Opts::new(
                    "yws_gateway_http_cutoffs_total",
                    "HTTP connections cut off: slow request heads, bodies or upgrades, or over the per-IP limit",
                ),
                &["reason"],
            )?,
            rooms: IntGauge::new("yws_gateway_rooms", "Rooms loaded on this node")?,
            rooms_max: IntGauge::new(
                "yws_gateway_rooms_max",
                "Rooms this node holds at most (rooms.max_rooms; 0: no limit)",
            )?,
            messages_received: IntCounterVec::new(
                Opts::new(
                    "yws_gateway_messages_received_total",
                    "y-websocket messages received, by type",
                ),
                &["type"],
            )?,
            received_bytes: IntCounterVec::new(
                Opts::new(
                    "yws_gateway_received_bytes_total",
                    "Bytes of y-websocket frames received, by the type of their first message",
                ),
                &["type"],
            )?,
            messages_sent: IntCounterVec::new(
                Opts::new(
                    "yws_gateway_messages_sent_total",
                    "y-websocket messages sent, by type",
                ),
                &["type"],
            )?,
            sent_bytes: IntCounterVec::new(
                Opts::new(
                    "yws_gateway_sent_bytes_total",
                    "Bytes of y-websocket messages sent, by type",
                ),
                &["type"],
            )?,
            malformed_messages: IntCounterVec::new(
                Opts::new(
                    "yws_gateway_malformed_messages_total",
                    "Incoming frames that could not be decoded, by error kind",
                ),
                &["kind"],
            )?,
            awareness_rejected: IntCounterVec::new(
                Opts::new(
                    "yws_gateway_awareness_rejected_total",
                    "Awareness messages refused before they were applied (connection closed with 1008), by reason",
                ),
                &["reason"],
            )?,
            throttled_frames: IntCounterVec::new(
                Opts::new(
                    "yws_gateway_throttled_frames_total",
                    "Frames after which a connection waited for the rate limits, by the limit that made it wait",
                ),
                &["scope"],
            )?,
            throttled_connections: IntGauge::new(
                "yws_gateway_throttled_connections",
                "Connections waiting for the rate limits (not read from meanwhile)",
            )?,
            slow_clients: IntCounter::new(
                "yws_gateway_slow_clients_disconnected_total",
                "Clients closed because their outbound queue was full",
            )?,
            readonly_updates_dropped: IntCounter::new(
                "yws_gateway_readonly_updates_dropped_total",
                "Document updates sent by read-only connections (not applied)",
            )?,
            panics: IntCounter::new(
                "yws_gateway_connection_panics_total",
                "Connection tasks that panicked",
            )?,
            auth_refusals: IntCounterVec::new(
                Opts::new(
                    "yws_gateway_auth_refusals_total",
                    "Requests refused by authentication, by reason",
                ),
                &["reason"],
            )?,
            sent: TypeCounters {
                messages: vec![],
                bytes: vec![],
            },
            received: TypeCounters {
                messages: vec![],
                bytes: vec![],
            },
            room_load_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "yws_gateway_room_load_seconds",
                    "Time to load a room when it becomes active on this node",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ]),
            )?,
            append_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "yws_gateway_update_append_seconds",
                    "Time for the backend to accept an update before it is broadcast",
                )
                .buckets(vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    1.0,
                ]),
            )?,
        };
        registry.register(Box::new(m.connections.clone()))?;
        registry.register(Box::new(m.connections_opened.clone()))?;
        registry.register(Box::new(m.connections_closed.clone()))?;
        registry.register(Box::new(m.upgrades_rejected.clone()))?;
        registry.register(Box::new(m.rooms.clone()))?;
        registry.register(Box::new(m.messages_received.clone()))?;
        registry.register(Box::new(m.received_bytes.clone()))?;
        registry.register(Box::new(m.messages_sent.clone()))?;
        registry.register(Box::new(m.sent_bytes.clone()))?;
        registry.register(Box::new(m.malformed_messages.clone()))?;
        registry.register(Box::new(m.awareness_rejected.clone()))?;
        registry.register(Box::new(m.slow_clients.clone()))?;
        registry.register(Box::new(m.throttled_frames.clone()))?;
        registry.register(Box::new(m.throttled_connections.clone()))?;
        registry.register(Box::new(m.readonly_updates_dropped.clone()))?;
        registry.register(Box::new(m.rooms_max.clone()))?;
        registry.register(Box::new(m.http_cutoffs.clone()))?;
        registry.register(Box::new(m.panics.clone()))?;
        registry.register(Box::new(m.auth_refusals.clone()))?;
        registry.register(Box::new(m.room_load_seconds.clone()))?;
        registry.register(Box::new(m.append_seconds.clone()))?;
        let mut m = m;
        m.sent = TypeCounters::new(&m.messages_sent, &m.sent_bytes);
        m.received = TypeCounters::new(&m.messages_received, &m.received_bytes);
        // Make every bounded label visible from the start, so rates and alerts have series.
        for t in MESSAGE_TYPES {
            m.messages_received.with_label_values(&[t]);
            m.messages_sent.with_label_values(&[t]);
            m.received_bytes.with_label_values(&[t]);
            m.sent_bytes.with_label_values(&[t]);
        }
        for r in yws_auth::RefusalReason::ALL {
            m.auth_refusals.with_label_values(&[r.as_str()]);
        }
        for r in CLOSE_LABELS {
            m.connections_closed.with_label_values(&[r]);
        }
        for r in HTTP_CUTOFF_REASONS {
            m.http_cutoffs.with_label_values(&[r]);
        }
        for scope in ["connection", "room"] {
            m.throttled_frames.with_label_values(&[scope]);
        }
        Ok(m)
    }

    /// Counts a connection that ended.
    pub fn closed(&self, label: &str) {
        self.connections_closed.with_label_values(&[label]).inc();
        if label == CloseReason::TooSlow.label() {
            self.slow_clients.inc();
        }
    }
}

/// Labels of `yws_gateway_http_cutoffs_total`: the deadlines of `server.header_timeout_ms`,
/// `body_timeout_ms` and `handshake_timeout_ms` (an upgrade not completed, or a response the
/// client does not read: `write_stall`), and `server.max_connections_per_ip`.
pub const HTTP_CUTOFF_REASONS: [&str; 5] = [
    "header_timeout",
    "body_timeout",
    "handshake_timeout",
    "write_stall",
    "per_ip_limit",
];

/// Labels of `yws_gateway_connections_closed_total`: the server's close reasons plus the ways
/// a client ends a connection.
pub const CLOSE_LABELS: [&str; 16] = [
    "normal",
    "protocol_error",
    "unsupported_data",
    "invalid_payload",
    "policy_violation",
    "message_too_big",
    "internal_error",
    "shutdown",
    "too_slow",
    "backend_unavailable",
    "ping_timeout",
    "token_expired",
    "room_deleted",
    "client_closed",
    "io_error",
    "panic",
];

/// The metric label of an outgoing or incoming frame, read from its first bytes.
pub fn frame_type(frame: &[u8]) -> &'static str {
    match frame {
        [0, 0, ..] => "sync_step1",
        [0, 1, ..] => "sync_step2",
        [0, 2, ..] => "update",
        [1, ..] => "awareness",
        [2, ..] => "auth",
        [3, ..] => "query_awareness",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_once_and_labels_frames() {
        let registry = Registry::new();
        let m = Metrics::new(&registry).unwrap();
        assert!(
            Metrics::new(&registry).is_err(),
            "double registration is an error"
        );
        m.closed("too_slow");
        assert_eq!(m.slow_clients.get(), 1);
        assert_eq!(frame_type(&[0, 2, 1, 0]), "update");
        assert_eq!(frame_type(&[1, 1, 0]), "awareness");
        for l in CLOSE_LABELS {
            assert!(l.len() < 24);
        }
    }
}
