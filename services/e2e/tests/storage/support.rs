//! What the storage tests share: a store (a real S3-protocol server process or a directory),
//! gateways and compactors wired to it, and reads of what is stored.

use std::path::PathBuf;
use std::time::Duration;
use yws_e2e::process::ServiceBuilder;
use yws_e2e::redis::RedisServer;
use yws_e2e::redis_keys::RedisKeys;
use yws_objects::testing::S3Server;
use yws_objects::{ObjectStorage, Snapshot, SnapshotId, StorageConfig, StorageEnv, StorageMetrics};

pub(crate) const PREFIX: &str = "yws";
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// Where the tests' documents are stored.
pub(crate) enum Store {
    /// `s3://…` on a real S3-protocol server process (s3s-fs) on a loopback port.
    S3(S3Server),
    /// `file:///…`, a temporary directory.
    Dir(PathBuf),
}

impl Store {
    pub(crate) fn s3() -> Store {
        Store::S3(S3Server::start())
    }

    pub(crate) fn dir(name: &str) -> Store {
        let dir = std::env::temp_dir().join(format!(
            "yws-storage-{name}-{}-{}",
            std::process::id(),
            yws_e2e::free_port()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the storage directory");
        Store::Dir(dir)
    }

    pub(crate) fn url(&self) -> String {
        match self {
            Store::S3(server) => server.url("docs/e2e"),
            Store::Dir(dir) => format!("file://{}", dir.display()),
        }
    }

    fn env_vars(&self) -> Vec<(String, String)> {
        match self {
            Store::S3(server) => server.env_vars(),
            Store::Dir(_) => Vec::new(),
        }
    }

    /// `service` with `YWS_STORAGE_URL` and the credentials the store needs.
    pub(crate) fn wire(&self, service: ServiceBuilder) -> ServiceBuilder {
        self.env_vars()
            .into_iter()
            .fold(service.env("YWS_STORAGE_URL", self.url()), |s, (k, v)| {
                s.env(&k, v)
            })
    }

    /// A client of the store, as the binaries open it.
    pub(crate) fn open(&self) -> ObjectStorage {
        let config = StorageConfig {
            url: Some(self.url()),
            ..StorageConfig::default()
        };
        let env = StorageEnv::from_vars(self.env_vars());
        ObjectStorage::open(
            &config,
            &env,
            StorageMetrics::unregistered().expect("metrics"),
        )
        .expect("open the store")
    }

    /// The room's snapshot objects, oldest first.
    pub(crate) fn snapshots(&self, room: &str) -> Vec<SnapshotId> {
        let storage = self.open();
        runtime()
            .block_on(storage.list_snapshots(room))
            .expect("list snapshots")
    }

    /// One stored snapshot.
    pub(crate) fn snapshot(&self, room: &str, id: &SnapshotId) -> Snapshot {
        let storage = self.open();
        runtime()
            .block_on(storage.get_snapshot(room, id))
            .expect("read a snapshot")
    }
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A gateway on `redis` storing in `store`; new logs are queued 500 ms after they start.
pub(crate) fn gateway(redis: &RedisServer, store: &Store) -> ServiceBuilder {
    store.wire(
        ServiceBuilder::gateway()
            .env("REDIS_URL", redis.url())
            .env("YWS__REDIS__COMPACT_AFTER_MS", 500),
    )
}

/// A compactor on `redis` storing in `store`: polls every 100 ms, 7 s leases, compacts 500 ms
/// after a room is due, never deletes empty logs within a test.
pub(crate) fn compactor(redis: &RedisServer, store: &Store) -> ServiceBuilder {
    store.wire(
        ServiceBuilder::compactor()
            .env("REDIS_URL", redis.url())
            .env("YWS__COMPACTOR__POLL_INTERVAL_MS", 100)
            .env("YWS__COMPACTOR__COMPACT_AFTER_MS", 500)
            .env("YWS__COMPACTOR__CLEANUP_AFTER_MS", 600_000)
            .env("YWS__COMPACTOR__LEASE_MS", 7000)
            .env("YWS__REDIS__COMMAND_TIMEOUT_MS", 2000),
    )
}

/// A field of the room's snapshot hash.
pub(crate) fn snap_field(direct: &mut RedisKeys, room: &str, field: &str) -> Option<String> {
    let snap = direct.keys(room).snap;
    direct.conn.cmd_str(&["HGET", &snap, field]).text()
}

/// Waits until Redis records an object other than `previous` as the room's current snapshot
/// and the log is empty; returns its id.
pub(crate) fn wait_recorded(
    direct: &mut RedisKeys,
    room: &str,
    previous: Option<&str>,
) -> SnapshotId {
    let mut object = None;
    let done = direct.wait_until(WAIT, |s| {
        object = snap_field(s, room, "obj");
        object.is_some() && object.as_deref() != previous && s.log_len(room) == 0
    });
    assert!(
        done,
        "{room}: no new object recorded with an empty log within {WAIT:?} (obj {object:?}, log {})",
        direct.log_len(room)
    );
    let name = object.expect("recorded");
    SnapshotId::from_file_name(&name).unwrap_or_else(|| panic!("object name {name:?}"))
}

/// Every key of the room in Redis (the room's hash tag).
pub(crate) fn room_keys(direct: &mut RedisKeys, room: &str) -> Vec<String> {
    let pattern = format!("{PREFIX}:{{{room}}}:*");
    direct
        .conn
        .cmd_str(&["KEYS", &pattern])
        .items()
        .iter()
        .filter_map(|k| k.text())
        .collect()
}
