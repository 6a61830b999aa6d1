//! What [`Authorizer::authorize`](crate::Authorizer::authorize) returns: a [`Grant`] to let the
//! request in, or a [`Refusal`] to answer it with before any upgrade.

use std::fmt;
use std::time::SystemTime;

use http::StatusCode;

/// What a connection may do in its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Read and write (`"rw"`, the default).
    ReadWrite,
    /// Read only (`"read"`): the gateway drops the connection's document updates.
    ReadOnly,
}

impl Access {
    /// The wire spelling used in JWT claims and webhook answers: `"rw"` or `"read"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::ReadWrite => "rw",
            Access::ReadOnly => "read",
        }
    }

    /// Parses the wire spelling (`"rw"` or `"read"`).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "rw" => Some(Access::ReadWrite),
            "read" => Some(Access::ReadOnly),
            _ => None,
        }
    }

    /// Whether this access forbids writing.
    pub fn is_read_only(self) -> bool {
        self == Access::ReadOnly
    }

    /// The more restrictive of two accesses (read-only wins).
    pub fn most_restrictive(self, other: Access) -> Access {
        if self.is_read_only() || other.is_read_only() {
            Access::ReadOnly
        } else {
            Access::ReadWrite
        }
    }
}

/// Permission to serve a request for one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// What the connection may do.
    pub access: Access,
    /// When the credentials stop being valid. The gateway closes a WebSocket that is still open
    /// then with close code 4401. `None`: no expiry (no auth, or credentials without one).
    pub expires_at: Option<SystemTime>,
    /// Who the credentials belong to (JWT `sub`, or the webhook's `subject`), for logs only.
    pub subject: Option<String>,
}

impl Grant {
    /// The grant used when auth is disabled: read-write, no expiry, anonymous.
    pub fn anonymous() -> Self {
        Grant {
            access: Access::ReadWrite,
            expires_at: None,
            subject: None,
        }
    }
}

/// Why a request was refused; a bounded set, usable as a metric label via [`Self::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalReason {
    /// No token in the query, `Authorization` header or token cookie (401).
    MissingToken,
    /// The token is malformed, has malformed or missing required claims, or is too long (401).
    BadToken,
    /// The token's signature does not verify with the configured key (401).
    BadSignature,
    /// The token's `alg` is not the configured algorithm (this includes `none`) (401).
    WrongAlgorithm,
    /// The token's `exp` is past, beyond the leeway (401).
    Expired,
    /// The token's `nbf` is in the future, beyond the leeway (401).
    NotYetValid,
    /// The token's `iss` is missing or is not the configured issuer (401).
    WrongIssuer,
    /// The token's `aud` is missing or does not include the configured audience, or the token
    /// has an `aud` but no audience is configured (401).
    WrongAudience,
    /// The token's `rooms` claim is missing or does not cover this room (403).
    RoomNotAllowed,
    /// A deployment-wide operation (listing rooms) without `admin: true` from the token or the
    /// webhook (403).
    NotAdmin,
    /// The `Origin` header is not in `allowed_origins` (403).
    BadOrigin,
    /// The webhook answered 401 or 403 (same status).
    WebhookDenied,
    /// The webhook timed out, could not be reached, or answered something unusable (503: fail
    /// closed, clients retry).
    WebhookUnavailable,
}

impl RefusalReason {
    /// Every reason, for pre-registering metric label values.
    pub const ALL: [RefusalReason; 13] = [
        RefusalReason::MissingToken,
        RefusalReason::BadToken,
        RefusalReason::BadSignature,
        RefusalReason::WrongAlgorithm,
        RefusalReason::Expired,
        RefusalReason::NotYetValid,
        RefusalReason::WrongIssuer,
        RefusalReason::WrongAudience,
        RefusalReason::RoomNotAllowed,
        RefusalReason::NotAdmin,
        RefusalReason::BadOrigin,
        RefusalReason::WebhookDenied,
        RefusalReason::WebhookUnavailable,
    ];

    /// A short snake_case label (bounded: one per variant).
    pub fn as_str(&self) -> &'static str {
        match self {
            RefusalReason::MissingToken => "missing_token",
            RefusalReason::BadToken => "bad_token",
            RefusalReason::BadSignature => "bad_signature",
            RefusalReason::WrongAlgorithm => "wrong_algorithm",
            RefusalReason::Expired => "expired",
            RefusalReason::NotYetValid => "not_yet_valid",
            RefusalReason::WrongIssuer => "wrong_issuer",
            RefusalReason::WrongAudience => "wrong_audience",
            RefusalReason::RoomNotAllowed => "room_not_allowed",
            RefusalReason::NotAdmin => "not_admin",
            RefusalReason::BadOrigin => "bad_origin",
            RefusalReason::WebhookDenied => "webhook_denied",
            RefusalReason::WebhookUnavailable => "webhook_unavailable",
        }
    }

    /// The HTTP status this reason is answered with by default (the webhook's own 401/403 is
    /// kept for [`RefusalReason::WebhookDenied`]).
    pub fn default_status(&self) -> StatusCode {
        match self {
            RefusalReason::RoomNotAllowed | RefusalReason::NotAdmin | RefusalReason::BadOrigin => {
                StatusCode::FORBIDDEN
            }
            RefusalReason::WebhookDenied => StatusCode::FORBIDDEN,
            RefusalReason::WebhookUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused request: answer it with `status` and `message` instead of upgrading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 401 (no or bad credentials), 403 (not allowed here) or 503 (webhook unavailable).
    pub status: StatusCode,
    /// Why, as a bounded enum.
    pub reason: RefusalReason,
    /// A short explanation, safe to send to the client (no secrets, no token contents).
    pub message: String,
}

impl Refusal {
    /// A refusal with the reason's default status.
    pub fn new(reason: RefusalReason, message: impl Into<String>) -> Self {
        Refusal {
            status: reason.default_status(),
            reason,
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.reason,
            self.message
        )
    }
}

impl std::error::Error for Refusal {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_wire_spelling_round_trips() {
        for access in [Access::ReadWrite, Access::ReadOnly] {
            assert_eq!(Access::parse(access.as_str()), Some(access));
        }
        assert_eq!(Access::parse("write"), None);
        assert_eq!(
            Access::ReadWrite.most_restrictive(Access::ReadOnly),
            Access::ReadOnly
        );
        assert_eq!(
            Access::ReadWrite.most_restrictive(Access::ReadWrite),
            Access::ReadWrite
        );
    }

    #[test]
    fn reason_labels_are_distinct() {
        let mut labels: Vec<_> = RefusalReason::ALL.iter().map(|r| r.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), RefusalReason::ALL.len());
    }

    #[test]
    fn statuses() {
        assert_eq!(Refusal::new(RefusalReason::Expired, "x").status, 401);
        assert_eq!(Refusal::new(RefusalReason::RoomNotAllowed, "x").status, 403);
        assert_eq!(Refusal::new(RefusalReason::NotAdmin, "x").status, 403);
        assert_eq!(Refusal::new(RefusalReason::BadOrigin, "x").status, 403);
        assert_eq!(
            Refusal::new(RefusalReason::WebhookUnavailable, "x").status,
            503
        );
    }
}
