use thiserror::Error;
use yws_protocol::DecodeError;

/// Errors of room handlers. Each maps to one close code at the edge.
#[derive(Debug, Error)]
pub enum RoomError {
    /// The message could not be decoded or validated.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// yrs refused to integrate an update that decoded.
    #[error("update could not be applied: {0}")]
    Apply(String),
    /// The backend (store or shared log) failed.
    #[error(transparent)]
    Backend(#[from] crate::BackendError),
}
