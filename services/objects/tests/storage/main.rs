//! `ObjectStorage` against real backends: a directory (`file://`) and a real S3-protocol
//! server process (`s3s-fs`, see `yws_objects::testing`) on a loopback port.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    reason = "a panic with a message is a test failure; tests may spawn: each test owns and awaits what it starts, and the runtime ends with it"
)]

mod failures;
mod large;
mod ops;

use bytes::Bytes;
use yws_objects::testing::S3Server;
use yws_objects::{
    LogId, ObjectStorage, Segment, SegmentEntry, Snapshot, StorageConfig, StorageEnv,
    StorageMetrics,
};

/// Settings for tests: short timeouts and backoffs, so failures show quickly.
pub fn test_config(url: String) -> StorageConfig {
    StorageConfig {
        url: Some(url),
        request_timeout_ms: 10_000,
        connect_timeout_ms: 2_000,
        max_retries: 3,
        retry_timeout_ms: 10_000,
        backoff_initial_ms: 10,
        backoff_max_ms: 100,
        ..StorageConfig::default()
    }
}

/// A backend under test, kept alive as long as the storage is used.
#[derive(Debug)]
pub enum Backend {
    /// `file://` storage in a temporary directory.
    Dir(tempfile::TempDir),
    /// A real s3s-fs process on a loopback port.
    S3(S3Server),
}

impl Backend {
    /// A fresh temporary directory.
    pub fn dir() -> Self {
        Backend::Dir(tempfile::tempdir().expect("tempdir"))
    }

    /// A fresh s3s-fs server with an empty bucket.
    pub fn s3() -> Self {
        Backend::S3(S3Server::start())
    }

    /// Storage under `prefix` (a bucket prefix on S3, a subdirectory on disk).
    pub fn storage_with(
        &self,
        prefix: &str,
        edit: impl FnOnce(&mut StorageConfig),
    ) -> ObjectStorage {
        let (url, env) = match self {
            Backend::Dir(dir) => (
                format!("file://{}/{prefix}", dir.path().display()),
                StorageEnv::default(),
            ),
            Backend::S3(server) => (server.url(prefix), server.env()),
        };
        let mut config = test_config(url);
        edit(&mut config);
        config.validate(&env).expect("valid test config");
        let metrics = StorageMetrics::unregistered().expect("metrics");
        ObjectStorage::open(&config, &env, metrics).expect("open storage")
    }

    /// Storage under `prefix` with the test defaults.
    pub fn storage(&self, prefix: &str) -> ObjectStorage {
        self.storage_with(prefix, |_| {})
    }

    /// Where the object `key` of storage opened under `prefix` is on disk: in the directory
    /// the URL names (keys are relative to it), or under the bucket for s3s-fs (keys include
    /// the prefix).
    pub fn file_of(&self, prefix: &str, key: &str) -> std::path::PathBuf {
        match self {
            Backend::Dir(dir) => dir.path().join(prefix).join(key),
            Backend::S3(server) => {
                assert!(key.starts_with(prefix), "{key} under {prefix}");
                server.bucket_dir().join(key)
            }
        }
    }

    /// The backend's name in assertion messages.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Dir(_) => "file://",
            Backend::S3(_) => "s3",
        }
    }
}

/// A snapshot object of `room` with the given epoch, covered log id and state.
pub fn snapshot(room: &str, epoch: u64, covered: (u64, u64), state: &[u8]) -> Snapshot {
    Snapshot {
        room: room.into(),
        epoch,
        covered: LogId::new(covered.0, covered.1),
        written_at_ms: 1_733_400_000_000 + epoch,
        state: Bytes::copy_from_slice(state),
    }
}

/// A segment with entries `first..=last` (ms ids, seq 0).
pub fn segment(room: &str, first: u64, last: u64) -> Segment {
    Segment {
        room: room.into(),
        epoch: 1,
        written_at_ms: 1_733_400_000_000,
        entries: (first..=last)
            .map(|ms| SegmentEntry {
                id: LogId::new(ms, 0),
                written_at_ms: ms * 10,
                update: Bytes::from(format!("update {ms}")),
            })
            .collect(),
    }
}

/// Deterministic pseudo-random bytes (incompressible, no dependency).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
