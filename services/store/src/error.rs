//! [`StoreError`], the one error type of this crate, and its mapping to [`BackendError`].

use thiserror::Error;
use yws_core::BackendError;

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The configuration is inconsistent (the gateway exits with 64).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The database file could not be opened or created.
    #[error("cannot open the store at {path}: {reason}")]
    Open {
        /// The database file.
        path: String,
        /// What went wrong (another process holding it, permissions, …).
        reason: String,
    },
    /// The file was written by an incompatible version of this crate.
    #[error("unsupported store format {found} (this build reads format {expected})")]
    Format {
        /// The version in the file.
        found: u64,
        /// The version this build reads and writes.
        expected: u64,
    },
    /// The embedded database reported an error (I/O, corruption, a full disk, …).
    #[error("database: {0}")]
    Database(#[from] redb::Error),
    /// The store was shut down, or its writer stopped.
    #[error("the store is closed")]
    Closed,
    /// A blocking task panicked or was cancelled.
    #[error("store task failed: {0}")]
    Task(String),
}

macro_rules! via_redb_error {
    ($($t:ty),* $(,)?) => {
        $(impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Database(redb::Error::from(e))
            }
        })*
    };
}

via_redb_error!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError,
);

impl From<tokio::task::JoinError> for StoreError {
    fn from(e: tokio::task::JoinError) -> Self {
        StoreError::Task(e.to_string())
    }
}

impl From<StoreError> for BackendError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Format { .. } => BackendError::Corrupt(e.to_string()),
            StoreError::Database(redb::Error::Corrupted(_)) => BackendError::Corrupt(e.to_string()),
            other => BackendError::Unavailable(other.to_string()),
        }
    }
}
