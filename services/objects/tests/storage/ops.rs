//! Every operation on both backends: write-once puts, reads, listings, deletion.

use crate::{segment, snapshot, Backend};
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use yws_objects::{Corruption, LogId, PutOutcome, SegmentId, SnapshotId, StorageError};

/// Runs a scenario against a directory and against the S3 server.
macro_rules! on_both_backends {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn file() {
                super::$scenario(crate::Backend::dir()).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn s3() {
                super::$scenario(crate::Backend::s3()).await
            }
        }
    };
}
pub(crate) use on_both_backends;

on_both_backends!(snapshots_are_write_once_and_found_by_name);
on_both_backends!(latest_snapshot_and_deletion);
on_both_backends!(segments_are_listed_by_range);
on_both_backends!(unreadable_objects_are_errors_not_data);

/// Rooms whose names need encoding, on both backends.
const ROOMS: [&str; 4] = ["plain-room", "team/ä b%.doc", "..", "x?y#z*\"<>|\\"];

async fn snapshots_are_write_once_and_found_by_name(backend: Backend) {
    let storage = backend.storage("docs/prod");
    storage.probe().await.unwrap();
    for room in ROOMS {
        let s = snapshot(room, 3, (1_733_400_000_000, 7), b"state one");
        let written = storage.put_snapshot(&s).await.unwrap();
        assert!(
            matches!(written, PutOutcome::Written { bytes } if bytes > 9),
            "{room}"
        );
        // Retrying the same put (its answer was lost) is a success, not a second object.
        let mut retry = s.clone();
        retry.written_at_ms += 5_000;
        assert_eq!(
            storage.put_snapshot(&retry).await.unwrap(),
            PutOutcome::AlreadyPresent
        );
        // Different content under the same name is refused; the first object stays.
        let mut other = s.clone();
        other.state = Bytes::from_static(b"state two");
        let err = storage.put_snapshot(&other).await.unwrap_err();
        assert!(matches!(err, StorageError::Conflict { .. }), "{err}");
        assert_eq!(storage.get_snapshot(room, &s.id()).await.unwrap(), s);

        // An operator finds the object from the room's name.
        let key = storage.layout().snapshot(room, &s.id()).unwrap();
        assert!(
            backend.file_of("docs/prod", key.as_ref()).is_file(),
            "{}: {key} on disk",
            backend.name()
        );
    }
    let missing = SnapshotId {
        epoch: 9,
        covered: LogId::new(1, 0),
    };
    let err = storage
        .get_snapshot("plain-room", &missing)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::NotFound { .. }), "{err}");
    assert!(storage.get_snapshot("", &missing).await.is_err());
    // Answers are not failures.
    let failed: u64 = ["put", "get", "head", "list", "delete"]
        .iter()
        .flat_map(|op| {
            ["timeout", "unreachable", "denied", "other"].map(|kind| {
                storage
                    .metrics()
                    .errors
                    .with_label_values(&[op, kind])
                    .get()
            })
        })
        .sum();
    assert_eq!(failed, 0);
    assert!(storage.metrics().written_bytes.get() > 0);
    assert!(storage.metrics().read_bytes.get() > 0);
}

async fn latest_snapshot_and_deletion(backend: Backend) {
    let storage = backend.storage("p");
    let room = "team/ä b%.doc";
    assert_eq!(storage.latest_snapshot(room).await.unwrap(), None);
    assert_eq!(storage.list_snapshots(room).await.unwrap(), vec![]);
    // Epochs 2, 10, 9: names sort by epoch numerically (10 after 9).
    for (epoch, covered) in [(2, 100), (10, 300), (9, 250)] {
        let s = snapshot(room, epoch, (covered, 0), format!("v{epoch}").as_bytes());
        storage.put_snapshot(&s).await.unwrap();
    }
    storage
        .put_snapshot(&snapshot("neighbour", 50, (1, 0), b"n"))
        .await
        .unwrap();
    storage.put_segment(&segment(room, 301, 305)).await.unwrap();
    let ids: Vec<u64> = storage
        .list_snapshots(room)
        .await
        .unwrap()
        .iter()
        .map(|id| id.epoch)
        .collect();
    assert_eq!(ids, [2, 9, 10]);
    let latest = storage.latest_snapshot(room).await.unwrap().unwrap();
    assert_eq!((latest.epoch, &latest.state[..]), (10, &b"v10"[..]));

    // Superseded snapshots go one by one; deleting twice is fine.
    let old = SnapshotId {
        epoch: 2,
        covered: LogId::new(100, 0),
    };
    storage.delete_snapshot(room, &old).await.unwrap();
    storage.delete_snapshot(room, &old).await.unwrap();
    assert_eq!(storage.list_snapshots(room).await.unwrap().len(), 2);

    // Deleting the room removes its snapshots and segments, nothing of other rooms.
    assert_eq!(storage.delete_room(room).await.unwrap(), 3);
    assert_eq!(storage.latest_snapshot(room).await.unwrap(), None);
    assert!(storage
        .list_segments(room, LogId::ZERO, LogId::new(u64::MAX, u64::MAX))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(storage.delete_room(room).await.unwrap(), 0);
    assert_eq!(
        storage
            .latest_snapshot("neighbour")
            .await
            .unwrap()
            .unwrap()
            .epoch,
        50
    );
}

async fn segments_are_listed_by_range(backend: Backend) {
    let storage = backend.storage("");
    let room = "history";
    for (first, last) in [(1, 10), (11, 20), (21, 30)] {
        let seg = segment(room, first, last);
        assert!(matches!(
            storage.put_segment(&seg).await.unwrap(),
            PutOutcome::Written { .. }
        ));
        // Archiving the same run again after a crash is harmless.
        assert_eq!(
            storage.put_segment(&seg).await.unwrap(),
            PutOutcome::AlreadyPresent
        );
    }
    // A stray object in the log directory is passed over.
    let stray = storage
        .layout()
        .segment_dir(room)
        .unwrap()
        .join("notes.txt");
    storage
        .raw_store()
        .put(&stray, PutPayload::from_static(b"x"))
        .await
        .unwrap();
    let id = |ms: u64| LogId::new(ms, 0);
    let range = |a: u64, b: u64| SegmentId {
        first: id(a),
        last: id(b),
    };
    let list = |from: u64, to: u64| {
        let storage = storage.clone();
        async move { storage.list_segments(room, id(from), id(to)).await.unwrap() }
    };
    assert_eq!(list(15, 25).await, [range(11, 20), range(21, 30)]);
    assert_eq!(list(10, 10).await, [range(1, 10)]);
    assert_eq!(list(0, 1).await, [range(1, 10)]);
    assert_eq!(list(31, 99).await, []);
    assert_eq!(
        list(0, 99).await,
        [range(1, 10), range(11, 20), range(21, 30)]
    );
    // `from` inside a segment still finds it (listing starts at its last id).
    assert_eq!(list(12, 12).await, [range(11, 20)]);
    // A time range: every id of ms 20 and 21.
    let by_time = storage
        .list_segments(room, LogId::first_at(20), LogId::last_at(21))
        .await
        .unwrap();
    assert_eq!(by_time, [range(11, 20), range(21, 30)]);

    let got = storage.get_segment(room, &range(11, 20)).await.unwrap();
    assert_eq!(got, segment(room, 11, 20));
    assert_eq!(got.entries[2].id, id(13));
    assert_eq!(&got.entries[2].update[..], b"update 13");
    assert!(matches!(
        storage.get_segment(room, &range(11, 21)).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(
        storage.put_segment(&segment(room, 5, 4)).await.is_err(),
        "empty"
    );
}

async fn unreadable_objects_are_errors_not_data(backend: Backend) {
    let storage = backend.storage("c");
    let good = snapshot("a", 1, (10, 0), b"document");
    storage.put_snapshot(&good).await.unwrap();
    let raw = storage.raw_store();
    let path_a = storage.layout().snapshot("a", &good.id()).unwrap();
    let bytes = raw.get(&path_a).await.unwrap().bytes().await.unwrap();

    // A damaged payload: the checksum says so, and the latest snapshot is an error (never
    // an older snapshot instead).
    let newer = snapshot("a", 2, (20, 0), b"newer");
    let path_newer = storage.layout().snapshot("a", &newer.id()).unwrap();
    let mut damaged = encoded(&newer);
    let last = damaged.len() - 1;
    damaged[last] ^= 0xFF;
    put_raw(&storage, &path_newer, damaged).await;
    let err = storage.latest_snapshot("a").await.unwrap_err();
    assert!(
        matches!(
            &err,
            StorageError::Corrupt {
                problem: Corruption::PayloadChecksum { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("checksum"), "{err}");
    // Write-once also holds against a damaged object: it is reported, not replaced.
    assert!(matches!(
        storage.put_snapshot(&newer).await,
        Err(StorageError::Corrupt { .. })
    ));

    // Truncated.
    let truncated = SnapshotId {
        epoch: 3,
        covered: LogId::new(30, 0),
    };
    put_raw(
        &storage,
        &storage.layout().snapshot("a", &truncated).unwrap(),
        bytes[..bytes.len() / 2].to_vec(),
    )
    .await;
    assert!(matches!(
        storage.get_snapshot("a", &truncated).await,
        Err(StorageError::Corrupt {
            problem: Corruption::Truncated { .. },
            ..
        })
    ));

    // Room a's object copied under room b's name is not room b's document.
    let path_b = storage.layout().snapshot("b", &good.id()).unwrap();
    put_raw(&storage, &path_b, bytes.to_vec()).await;
    assert!(matches!(
        storage.get_snapshot("b", &good.id()).await,
        Err(StorageError::Corrupt {
            problem: Corruption::Misplaced(_),
            ..
        })
    ));
    assert_eq!(storage.metrics().corrupt_objects.get(), 4);
}

fn encoded(s: &yws_objects::Snapshot) -> Vec<u8> {
    yws_objects::format::encode_snapshot(s).unwrap().to_vec()
}

async fn put_raw(storage: &yws_objects::ObjectStorage, path: &Path, bytes: Vec<u8>) {
    storage
        .raw_store()
        .put(path, PutPayload::from(bytes))
        .await
        .unwrap();
}
