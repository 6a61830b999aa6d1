use thiserror::Error;

/// Why an incoming frame could not be decoded. Each variant maps to one close code and one
/// bounded metric label at the edge ([`DecodeError::kind`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The frame was empty.
    #[error("empty frame")]
    Empty,
    /// The frame ended in the middle of a message.
    #[error("truncated message: {0}")]
    Truncated(&'static str),
    /// A variable-length integer was longer than 64 bits.
    #[error("variable-length integer overflows 64 bits")]
    VarIntOverflow,
    /// A top-level message type that y-websocket does not define.
    #[error("unknown message type {0}")]
    UnknownMessageType(u64),
    /// A sync sub-type other than step 1, step 2 or update.
    #[error("unknown sync message type {0}")]
    UnknownSyncType(u64),
    /// The state vector of a sync step 1 could not be decoded.
    #[error("invalid state vector: {0}")]
    InvalidStateVector(String),
    /// A Yjs update (sync step 2 or update) could not be decoded.
    #[error("invalid update: {0}")]
    InvalidUpdate(String),
    /// An awareness update was malformed (structure, UTF-8 or JSON).
    #[error("invalid awareness update: {0}")]
    InvalidAwareness(String),
}

impl DecodeError {
    /// A short, bounded label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::Truncated(_) => "truncated",
            DecodeError::VarIntOverflow => "varint_overflow",
            DecodeError::UnknownMessageType(_) => "unknown_message_type",
            DecodeError::UnknownSyncType(_) => "unknown_sync_type",
            DecodeError::InvalidStateVector(_) => "invalid_state_vector",
            DecodeError::InvalidUpdate(_) => "invalid_update",
            DecodeError::InvalidAwareness(_) => "invalid_awareness",
        }
    }
}
