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
    /// yrs panicked while integrating the update: the room's document may be half-applied, so
    /// the room was taken out of service (its clients reconnect to a clean load).
    #[error("the CRDT library panicked integrating the update; the room was taken out of service")]
    Poisoned,
    /// The update made yrs panic before and is never applied again (see `quarantine`).
    #[error("update quarantined: it made the CRDT library panic before")]
    Quarantined,
    /// The backend (store or shared log) failed.
    #[error(transparent)]
    Backend(#[from] crate::BackendError),
}
