//! Many rooms at once, corrupt entries, listing and deletion, the `Rooms` registry.

use super::*;
use crate::StoreError;
use tokio::time::{sleep, Duration};
use yws_core::{Rooms, RoomsSettings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_rooms_and_tasks_append_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        commit_interval_ms: 5,
        queue_capacity: 64,
        ..config(dir.path())
    };
    let store = Arc::new(start(cfg.clone()).await);
    let mut tasks = Vec::new();
    let mut rooms = Vec::new();
    for n in 0..20u64 {
        let r = load(&store, &format!("room-{n}")).await;
        rooms.push(r.clone());
        for t in 0..3u64 {
            let (store, r) = (store.clone(), r.clone());
            tasks.push(tokio::spawn(async move {
                let e = Editor::new(1000 + n * 10 + t);
                for i in 0..30 {
                    append(&store, &r, &e.set(&format!("t{t}-{i}"), "v")).await;
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    for r in &rooms {
        store.close(r).await;
    }
    assert_eq!(store.tracker().len(), 0);
    assert_eq!(store.metrics().pending_updates.get(), 0);
    store.shutdown().await.unwrap();
    drop(store);
    let store = start(cfg).await;
    for (n, original) in rooms.iter().enumerate() {
        let r = load(&store, &format!("room-{n}")).await;
        assert_eq!(map(r.doc()).len(), 90, "room-{n}");
        assert!(same_state(r.doc(), original.doc()));
    }
    assert_eq!(store.list_rooms(None, 100).await.unwrap().len(), 20);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_corrupt_entry_is_skipped_counted_and_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        commit_interval_ms: 2,
        ..config(dir.path())
    };
    let e = Editor::new(9);
    {
        let store = start(cfg.clone()).await;
        let r = load(&store, "bad").await;
        append(&store, &r, &e.set("a", "1")).await;
        append(&store, &r, &e.set("b", "2")).await;
        store.shutdown().await.unwrap();
    }
    {
        // Damage the log behind the store's back: bytes that are no yjs update at all.
        let (db, _) = schema::open(dir.path()).unwrap();
        schema::write_raw_update(&db, "bad", &[0xff, 0xff, 0xff, 0x0f, 0x02, 0x07]).unwrap();
    }
    {
        let store = start(cfg.clone()).await;
        let r = load(&store, "bad").await;
        assert_eq!(store.metrics().entries_skipped.get(), 1);
        assert_eq!(map(r.doc()).len(), 2, "the readable entries are loaded");
        append(&store, &r, &e.set("c", "3")).await;
        store.shutdown().await.unwrap();
    }
    // Compacting on open (the log is over the threshold) moves the entry to quarantine.
    let store = start(StoreConfig {
        compact_after_updates: 2,
        ..cfg
    })
    .await;
    let r = load(&store, "bad").await;
    assert_eq!(map(r.doc()).len(), 3);
    for _ in 0..1_000 {
        if store.metrics().compactions.get() > 0 {
            break;
        }
        sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(store.metrics().compactions.get(), 1);
    assert_eq!(
        store.metrics().entries_skipped.get(),
        2,
        "at load and at compaction"
    );
    let db = store.database().unwrap();
    assert_eq!(schema::quarantined(&db, "bad").unwrap(), 1);
    let log = stored(&store, "bad");
    assert!(log.snapshot && log.updates == 0);
    let reloaded = load(&store, "bad").await;
    assert!(same_state(reloaded.doc(), r.doc()));
    assert_eq!(
        store.metrics().entries_skipped.get(),
        2,
        "nothing unreadable is left"
    );
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn rooms_are_listed_in_pages_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = start(StoreConfig {
        commit_interval_ms: 2,
        ..config(dir.path())
    })
    .await;
    for name in ["z", "a", "é", "c/d", "b", "snap"] {
        let r = load(&store, name).await;
        append(&store, &r, &Editor::new(1).set("k", name)).await;
    }
    store.flush().await.unwrap();
    // "snap" keeps only a snapshot: it is listed all the same.
    let db = store.database().unwrap();
    let install = crate::snapshotter::merge(&db, Arc::from("snap"), true)
        .unwrap()
        .unwrap();
    store
        .submit(crate::schema::Op::Install(install))
        .await
        .unwrap();
    store.flush().await.unwrap();
    assert_eq!(stored(&store, "snap").updates, 0);

    let all = store.list_rooms(None, 100).await.unwrap();
    assert_eq!(all, ["a", "b", "c/d", "snap", "z", "é"], "sorted by bytes");
    assert_eq!(store.list_rooms(None, 2).await.unwrap(), ["a", "b"]);
    assert_eq!(
        store.list_rooms(Some("b"), 2).await.unwrap(),
        ["c/d", "snap"]
    );
    assert_eq!(store.list_rooms(Some("snap"), 5).await.unwrap(), ["z", "é"]);
    assert!(store.list_rooms(Some("é"), 5).await.unwrap().is_empty());
    assert!(store.list_rooms(None, 0).await.unwrap().is_empty());

    store.delete_room("b").await.unwrap();
    store.delete_room("snap").await.unwrap();
    store.delete_room("never-existed").await.unwrap();
    assert_eq!(
        store.list_rooms(None, 100).await.unwrap(),
        ["a", "c/d", "z", "é"]
    );
    let b = load(&store, "b").await;
    assert!(map(b.doc()).is_empty(), "deleted rooms load empty");
    // A deleted room can be written again.
    append(&store, &b, &Editor::new(2).set("new", "v")).await;
    store.flush().await.unwrap();
    assert_eq!(stored(&store, "b").updates, 1);
    assert_eq!(store.list_rooms(Some("a"), 1).await.unwrap(), ["b"]);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_room_poisoned_by_an_update_is_loaded_again_from_the_store_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(start(config(dir.path())).await);
    let backend: Arc<dyn RoomBackend> = store.clone();
    let rooms = Rooms::new(backend, RoomsSettings::default());
    let name = RoomName::new("poisoned", 64).unwrap();
    let e = Editor::new(12);
    let (bad, at) = poison();
    let good: Vec<Vec<u8>> = (0..4).map(|i| e.set(&format!("k{i}"), "v")).collect();
    let lease = rooms.lease(&name).await.unwrap();
    let first = lease.room().clone();
    for (i, u) in good.iter().enumerate() {
        if i == at {
            // As the gateway does: written first, then applied — and yrs panics.
            store.append(&first, &bad).await.unwrap();
            let decoded = yws_protocol::validate::update(&bad).unwrap();
            assert!(first.apply_update(decoded, &bad).is_err());
            assert!(first.is_poisoned(), "the suspect copy is out of service");
        }
        if !first.is_poisoned() {
            append(&store, &first, u).await;
        } else {
            let lease = rooms.lease(&name).await.unwrap();
            append(&store, lease.room(), u).await;
        }
    }
    drop(lease);
    // A fresh load (the poisoned copy was replaced) holds every good update and nothing else.
    let lease = rooms.lease(&name).await.unwrap();
    assert!(!Arc::ptr_eq(lease.room(), &first) && !lease.room().is_poisoned());
    let reference = Editor::new(12);
    for u in &good {
        reference
            .doc
            .transact_mut()
            .apply_update(yws_protocol::validate::update(u).unwrap())
            .unwrap();
    }
    assert!(same_state(lease.room().doc(), &reference.doc));
    drop(lease);
    rooms.close_all().await;
    store.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_rooms_registry_unloads_and_reloads_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        start(StoreConfig {
            unload_grace_ms: 1000,
            ..config(dir.path())
        })
        .await,
    );
    assert_eq!(store.unload_grace(), Some(Duration::from_secs(1)));
    let backend: Arc<dyn RoomBackend> = store.clone();
    let rooms = Rooms::new(backend, RoomsSettings::default());
    let name = RoomName::new("registry", 64).unwrap();
    let e = Editor::new(11);
    {
        let lease = rooms.lease(&name).await.unwrap();
        for i in 0..10 {
            append(&store, lease.room(), &e.set(&format!("k{i}"), "v")).await;
        }
    }
    sleep(Duration::from_secs(2)).await;
    assert_eq!(
        rooms.maintain_once().await,
        1,
        "unloaded after the grace period"
    );
    assert!(rooms.is_empty());
    let lease = rooms.lease(&name).await.unwrap();
    assert_eq!(map(lease.room().doc()).len(), 10);
    drop(lease);
    rooms.close_all().await;
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_closed_store_refuses_work_and_its_file_is_exclusive() {
    let dir = tempfile::tempdir().unwrap();
    let store = start(config(dir.path())).await;
    assert!(store.is_ready());
    let second = StoreBackend::start(
        config(dir.path()),
        StoreMetrics::new(&prometheus::Registry::new()).unwrap(),
    )
    .await;
    assert!(
        matches!(second, Err(StoreError::Open { .. })),
        "one process per store"
    );
    let r = load(&store, "x").await;
    store.shutdown().await.unwrap();
    assert!(!store.is_ready());
    assert!(store
        .append(&r, &Editor::new(1).set("k", "v"))
        .await
        .is_err());
    assert!(matches!(
        store.list_rooms(None, 1).await,
        Err(StoreError::Closed)
    ));
    assert!(store.open(&room("y")).await.is_err());
    store.shutdown().await.unwrap();
    // Once shut down, the file is free again.
    let again = start(config(dir.path())).await;
    again.shutdown().await.unwrap();
    let missing = StoreBackend::start(
        StoreConfig::default(),
        StoreMetrics::new(&prometheus::Registry::new()).unwrap(),
    )
    .await;
    assert!(matches!(missing, Err(StoreError::InvalidConfig(_))));
}
