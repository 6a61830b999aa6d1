//! Background compaction: merged snapshots, smaller logs, nothing lost to a race.

use super::*;
use crate::schema::Op;
use crate::snapshotter::merge;
use tokio::time::{sleep, Duration};

/// Polls (with real sleeps; these tests run on real time) until `done` holds.
async fn eventually(mut done: impl FnMut() -> bool) {
    for _ in 0..1_000 {
        if done() {
            return;
        }
        sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 10 s");
}

fn compacting(dir: &Path, after_updates: u64) -> StoreConfig {
    StoreConfig {
        commit_interval_ms: 2,
        compact_after_updates: after_updates,
        ..config(dir)
    }
}

#[tokio::test]
async fn compaction_merges_the_log_and_shrinks_the_room() {
    let dir = tempfile::tempdir().unwrap();
    let store = start(compacting(dir.path(), 100)).await;
    let r = load(&store, "typing").await;
    let e = Editor::new(1);
    let mut raw = 0;
    for i in 0..400 {
        // Type a word, then delete it: garbage collection leaves almost nothing of it.
        let update = if i % 2 == 0 {
            e.type_at(0, "hello world ")
        } else {
            e.delete(0, 12)
        };
        raw += update.len() as u64;
        append(&store, &r, &update).await;
    }
    append(&store, &r, &e.type_at(0, "kept")).await;
    store.flush().await.unwrap();
    eventually(|| stored(&store, "typing").updates < 100).await;
    let log = stored(&store, "typing");
    assert!(log.snapshot, "a snapshot was written");
    assert!(store.metrics().compactions.get() >= 1);
    // The snapshot of everything merged is tiny (deleted text is collected); at most a tail
    // below the threshold stays as separate updates.
    assert!(
        log.snapshot_bytes < 200,
        "snapshot of {} bytes",
        log.snapshot_bytes
    );
    let size = log.snapshot_bytes + log.update_bytes;
    assert!(
        size * 2 < raw,
        "{size} bytes stored for {raw} bytes of updates"
    );
    let reloaded = load(&store, "typing").await;
    assert!(same_state(reloaded.doc(), r.doc()));
    assert_eq!(text(reloaded.doc()), "kept");
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_update_appended_during_a_compaction_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = start(StoreConfig {
        commit_interval_ms: 2,
        ..config(dir.path())
    })
    .await;
    let r = load(&store, "race").await;
    let e = Editor::new(2);
    for i in 0..50 {
        append(&store, &r, &e.set(&format!("k{i}"), "v")).await;
    }
    store.flush().await.unwrap();
    // The snapshotter has read and merged the log …
    let db = store.database().unwrap();
    let install = merge(&db, Arc::from("race"), true).unwrap().unwrap();
    assert_eq!(install.merged_updates, 50);
    // … when another update is committed, before the snapshot is written.
    append(&store, &r, &e.set("late", "v")).await;
    store.flush().await.unwrap();
    store.submit(Op::Install(install)).await.unwrap();
    store.flush().await.unwrap();
    let log = stored(&store, "race");
    assert!(log.snapshot);
    assert_eq!(log.updates, 1, "the late update stays in the log");
    assert_eq!(store.metrics().compactions.get(), 1);
    let reloaded = load(&store, "race").await;
    assert!(map(reloaded.doc()).contains_key("late"));
    assert!(same_state(reloaded.doc(), r.doc()));
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stale_snapshot_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = start(StoreConfig {
        commit_interval_ms: 2,
        ..config(dir.path())
    })
    .await;
    let db = store.database().unwrap();
    let r = load(&store, "gone").await;
    let e = Editor::new(3);
    for i in 0..10 {
        append(&store, &r, &e.set(&format!("k{i}"), "v")).await;
    }
    store.flush().await.unwrap();
    // Deleted while being compacted: the snapshot must not bring the room back.
    let install = merge(&db, Arc::from("gone"), true).unwrap().unwrap();
    store.delete_room("gone").await.unwrap();
    store.submit(Op::Install(install)).await.unwrap();
    store.flush().await.unwrap();
    assert_eq!(stored(&store, "gone"), RoomLog::default());
    assert!(store.list_rooms(None, 10).await.unwrap().is_empty());
    // Overtaken by a newer snapshot: the older one is dropped.
    let r = load(&store, "twice").await;
    append(&store, &r, &e.set("a", "1")).await;
    store.flush().await.unwrap();
    let older = merge(&db, Arc::from("twice"), true).unwrap().unwrap();
    append(&store, &r, &e.set("b", "2")).await;
    store.flush().await.unwrap();
    let newer = merge(&db, Arc::from("twice"), true).unwrap().unwrap();
    store.submit(Op::Install(newer)).await.unwrap();
    store.submit(Op::Install(older)).await.unwrap();
    store.flush().await.unwrap();
    assert_eq!(store.metrics().compactions.get(), 1);
    let reloaded = load(&store, "twice").await;
    assert!(same_state(reloaded.doc(), r.doc()));
    store.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_under_concurrent_appends_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = compacting(dir.path(), 20);
    let store = Arc::new(start(cfg.clone()).await);
    let r = load(&store, "busy").await;
    let mut tasks = Vec::new();
    for t in 0..4u64 {
        let (store, r) = (store.clone(), r.clone());
        tasks.push(tokio::spawn(async move {
            let e = Editor::new(100 + t);
            for i in 0..150 {
                append(&store, &r, &e.set(&format!("t{t}-{i}"), "v")).await;
                // Spread the appends over many commits, so compactions interleave with them.
                sleep(Duration::from_millis(1)).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    store.flush().await.unwrap();
    assert!(
        store.metrics().compactions.get() >= 3,
        "compactions ran meanwhile"
    );
    store.close(&r).await;
    store.shutdown().await.unwrap();
    drop(store);
    let store = start(cfg).await;
    let reloaded = load(&store, "busy").await;
    assert_eq!(map(reloaded.doc()).len(), 600);
    assert!(same_state(reloaded.doc(), r.doc()));
    store.shutdown().await.unwrap();
}

#[test]
fn an_entry_that_makes_yrs_panic_is_quarantined_and_the_snapshot_holds_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = schema::open(dir.path()).unwrap();
    let e = Editor::new(50);
    let good: Vec<Vec<u8>> = (0..4).map(|i| e.set(&format!("k{i}"), "v")).collect();
    let (bad, at) = poison();
    let mut bad_seq = 0;
    for (i, u) in good.iter().enumerate() {
        if i == at {
            bad_seq = schema::write_raw_update(&db, "p", &bad).unwrap();
        }
        schema::write_raw_update(&db, "p", u).unwrap();
    }
    let install = merge(&db, Arc::from("p"), true)
        .unwrap()
        .expect("something to merge");
    assert_eq!(install.skipped, vec![(schema::Kind::Update, bad_seq)]);
    let reference = Doc::new();
    for u in &good {
        reference
            .transact_mut()
            .apply_update(yws_protocol::validate::update(u).unwrap())
            .unwrap();
    }
    assert_eq!(
        install.snapshot,
        reference
            .transact()
            .encode_state_as_update_v1(&StateVector::default()),
        "exactly the state of the other entries"
    );
}
