//! [`Error`], the one error type of this crate, and its mapping to [`BackendError`] at the
//! [`RoomBackend`](yws_core::RoomBackend) edge.

use crate::op::Op;
use yws_core::BackendError;

/// Why a Redis operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The client could not be set up or could not connect (bad topology, pool, the pub/sub
    /// connection).
    #[error("cannot connect to redis: {0}")]
    Connect(String),
    /// A call failed: connection lost, refused by the server (out of memory, a failover), …
    #[error("{op}: {message}")]
    Failed {
        /// What was being done.
        op: Op,
        /// What Redis or the connection said.
        message: String,
    },
    /// A call took longer than its timeout ([`Op::timeout`]).
    #[error("{0} timed out")]
    Timeout(Op),
    /// A reply or a stored value could not be read (a script answered something unexpected,
    /// a snapshot that does not decode, …).
    #[error("unreadable data: {0}")]
    Corrupt(String),
}

impl Error {
    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        Error::Corrupt(what.into())
    }
}

impl From<Error> for BackendError {
    fn from(e: Error) -> Self {
        match e {
            Error::Connect(message) => BackendError::Unavailable(message),
            Error::Failed { op, message } => BackendError::Unavailable(format!("{op}: {message}")),
            Error::Timeout(op) => BackendError::Timeout(op.label()),
            Error::Corrupt(what) => BackendError::Corrupt(what),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_to_the_backend_error_of_the_same_kind() {
        let failed = Error::Failed {
            op: Op::Append,
            message: "OOM".into(),
        };
        assert_eq!(failed.to_string(), "append: OOM");
        let mapped = BackendError::from(failed);
        assert_eq!(mapped.label(), "unavailable");
        assert_eq!(mapped.to_string(), "backend unavailable: append: OOM");
        let timeout = BackendError::from(Error::Timeout(Op::Load));
        assert!(matches!(timeout, BackendError::Timeout("load")));
        assert_eq!(
            BackendError::from(Error::corrupt("load reply")).label(),
            "corrupt"
        );
        assert_eq!(
            BackendError::from(Error::Connect("refused".into())).label(),
            "unavailable"
        );
    }
}
