//! [`StorageError`], the crate's one error type, and [`Corruption`], what is wrong with an
//! object that does not decode.

use crate::metrics::Op;
use std::fmt;
use std::time::Duration;
use thiserror::Error;

/// Why a storage call failed.
#[derive(Debug, Error)]
pub enum StorageError {
    /// The room name cannot be stored.
    #[error("invalid room name: {0}")]
    InvalidRoom(&'static str),
    /// The object or argument is not valid to store (e.g. an empty segment).
    #[error("invalid object: {0}")]
    InvalidObject(String),
    /// The store could not be set up from the configuration.
    #[error("cannot open object storage {url}: {reason}")]
    Open {
        /// The storage URL (without credentials).
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// There is no object of that name.
    #[error("object {name} not found")]
    NotFound {
        /// The object's path.
        name: String,
    },
    /// A write-once object exists with different content.
    #[error("object {name} already exists with different content (objects are write-once)")]
    Conflict {
        /// The object's path.
        name: String,
    },
    /// An object exists but is not a valid yws object of the kind and name expected.
    #[error("object {name} is unreadable: {problem}")]
    Corrupt {
        /// The object's path.
        name: String,
        /// What is wrong with it.
        problem: Corruption,
    },
    /// The call (with its retries) did not finish in time.
    #[error("storage {op} of {name} timed out after {after:?}")]
    Timeout {
        /// The operation.
        op: Op,
        /// The object or prefix.
        name: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// The store refused or failed the call (after its retries).
    #[error("storage {op} of {name} failed: {source}")]
    Backend {
        /// The operation.
        op: Op,
        /// The object or prefix.
        name: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
}

impl StorageError {
    /// Whether trying again later may succeed (the store was unreachable, slow or failing),
    /// as opposed to a definite answer (not found, conflict, corrupt, invalid).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StorageError::Timeout { .. } | StorageError::Backend { .. }
        )
    }
}

/// What is wrong with an object that does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Corruption {
    /// It does not start with the yws magic bytes.
    BadMagic,
    /// Its format version is not one this build reads.
    UnsupportedVersion(u16),
    /// Its kind byte is unknown.
    UnknownKind(u8),
    /// It sets header flags this build does not know.
    UnsupportedFlags(u8),
    /// It ends early.
    Truncated {
        /// Bytes needed at least.
        needed: u64,
        /// Bytes present.
        available: u64,
    },
    /// The header checksum does not match.
    HeaderChecksum {
        /// Stored in the object.
        stored: u32,
        /// Computed from its bytes.
        computed: u32,
    },
    /// The payload checksum does not match.
    PayloadChecksum {
        /// Stored in the header.
        stored: u32,
        /// Computed from the payload.
        computed: u32,
    },
    /// Bytes follow the declared payload.
    TrailingBytes {
        /// Declared payload length.
        declared: u64,
        /// Bytes actually after the header.
        actual: u64,
    },
    /// The room name is not UTF-8.
    RoomNotUtf8,
    /// A snapshot where a segment was expected, or the reverse.
    WrongKind,
    /// Its header does not match its name (room, epoch or log ids).
    Misplaced(String),
    /// A field is inconsistent.
    Invalid(&'static str),
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::BadMagic => f.write_str("not a yws object (bad magic bytes)"),
            Corruption::UnsupportedVersion(v) => {
                write!(f, "format version {v} is not supported by this build")
            }
            Corruption::UnknownKind(k) => write!(f, "unknown object kind {k}"),
            Corruption::UnsupportedFlags(x) => write!(f, "unknown header flags {x:#04x}"),
            Corruption::Truncated { needed, available } => {
                write!(f, "truncated: {available} bytes, at least {needed} needed")
            }
            Corruption::HeaderChecksum { stored, computed } => write!(
                f,
                "header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Corruption::PayloadChecksum { stored, computed } => write!(
                f,
                "payload checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Corruption::TrailingBytes { declared, actual } => write!(
                f,
                "{actual} payload bytes where the header declares {declared}"
            ),
            Corruption::RoomNotUtf8 => f.write_str("the room name is not UTF-8"),
            Corruption::WrongKind => f.write_str("wrong object kind for this name"),
            Corruption::Misplaced(what) => write!(f, "header does not match the name: {what}"),
            Corruption::Invalid(what) => f.write_str(what),
        }
    }
}
