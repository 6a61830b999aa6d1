//! The `[persistence]` config section (its environment name, `YPERSISTENCE`, is listed in
//! `yws_config::env::PERSISTENCE`).

use crate::error::StoreError;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Upper bound of `commit_interval_ms`: the longest a SIGKILL may cost (see the crate docs).
pub const MAX_COMMIT_INTERVAL_MS: u64 = 100;

/// Settings of the embedded store. Persistence is on when `dir` is set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory of the database file (`YPERSISTENCE`); `None` keeps documents in memory only.
    pub dir: Option<PathBuf>,
    /// Group-commit window: an update is committed (fsync'd) at most this long after it was
    /// accepted, plus the duration of a commit. At most [`MAX_COMMIT_INTERVAL_MS`]; 0 commits
    /// as soon as the writer is free (batches still form while a commit is running).
    pub commit_interval_ms: u64,
    /// A batch is committed early once its updates add up to this many bytes.
    pub max_batch_bytes: usize,
    /// Updates accepted but not yet committed, across all rooms; more appends wait
    /// (backpressure, never dropped).
    pub queue_capacity: usize,
    /// A room is compacted once this many updates were appended since its last snapshot …
    pub compact_after_updates: u64,
    /// … or once they add up to this many bytes.
    pub compact_after_bytes: u64,
    /// Rooms waiting for compaction; when full, a room is queued again on its next append.
    pub compaction_queue: usize,
    /// How long an empty room stays in memory after its last client left.
    pub unload_grace_ms: u64,
    /// Garbage-collect deleted content when compacting (the reference's `GC`).
    pub gc: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            dir: None,
            commit_interval_ms: 50,
            max_batch_bytes: 4 * 1024 * 1024,
            queue_capacity: 4096,
            compact_after_updates: 500,
            compact_after_bytes: 1024 * 1024,
            compaction_queue: 256,
            unload_grace_ms: 30_000,
            gc: true,
        }
    }
}

impl StoreConfig {
    /// Whether documents are stored durably (`dir` is set).
    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }

    /// The group-commit window.
    pub fn commit_interval(&self) -> Duration {
        Duration::from_millis(self.commit_interval_ms)
    }

    /// How long an empty room stays loaded.
    pub fn unload_grace(&self) -> Duration {
        Duration::from_millis(self.unload_grace_ms)
    }

    /// Checks values that types alone cannot.
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |m: &str| Err(StoreError::InvalidConfig(m.to_string()));
        if let Some(dir) = &self.dir {
            if dir.as_os_str().is_empty() {
                return invalid("persistence.dir must not be empty");
            }
        }
        if self.commit_interval_ms > MAX_COMMIT_INTERVAL_MS {
            return invalid("persistence.commit_interval_ms must be at most 100");
        }
        if self.max_batch_bytes == 0 || self.queue_capacity == 0 || self.compaction_queue == 0 {
            return invalid(
                "persistence.max_batch_bytes, queue_capacity and compaction_queue must be at least 1",
            );
        }
        if self.compact_after_updates < 2 || self.compact_after_bytes == 0 {
            return invalid(
                "persistence.compact_after_updates must be at least 2 and compact_after_bytes at least 1",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_disabled() {
        let c = StoreConfig::default();
        assert!(c.validate().is_ok());
        assert!(!c.enabled());
        assert_eq!(c.commit_interval(), Duration::from_millis(50));
        assert_eq!(c.unload_grace(), Duration::from_secs(30));
        assert!(c.gc);
    }

    #[test]
    fn section_deserializes_and_rejects_unknown_keys() {
        let c: StoreConfig =
            serde_json::from_value(serde_json::json!({"dir": "/data", "commit_interval_ms": 10}))
                .unwrap();
        assert_eq!(c.dir, Some(PathBuf::from("/data")));
        assert_eq!(c.commit_interval_ms, 10);
        assert!(c.enabled());
        assert!(serde_json::from_value::<StoreConfig>(serde_json::json!({"dri": "/x"})).is_err());
    }

    #[test]
    fn validation() {
        let bad = |c: StoreConfig| c.validate().is_err();
        assert!(bad(StoreConfig {
            commit_interval_ms: 101,
            ..StoreConfig::default()
        }));
        assert!(bad(StoreConfig {
            dir: Some(PathBuf::new()),
            ..StoreConfig::default()
        }));
        assert!(bad(StoreConfig {
            queue_capacity: 0,
            ..StoreConfig::default()
        }));
        assert!(bad(StoreConfig {
            compact_after_updates: 1,
            ..StoreConfig::default()
        }));
        assert!(StoreConfig {
            commit_interval_ms: 0,
            ..StoreConfig::default()
        }
        .validate()
        .is_ok());
    }
}
