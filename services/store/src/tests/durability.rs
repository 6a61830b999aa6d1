//! What survives a restart, a shutdown and a crash.

use super::*;
use tokio::time::{sleep, Duration, Instant};

/// Waits (in real time, while virtual time stands still) until `done` holds: a commit runs on
/// a blocking thread, and only a real sleep lets it finish without moving the paused clock.
#[allow(
    clippy::disallowed_methods,
    reason = "a real sleep lets the blocking commit finish while the paused clock stands still"
)]
async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..5_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    panic!("condition not reached within 5 s of real time");
}

#[tokio::test]
async fn a_reopened_store_yields_an_identical_document() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["doc", "ünï/cödé 🎉", "doc2"];
    let mut originals = Vec::new();
    {
        let store = start(config(dir.path())).await;
        for name in names {
            // Fresh editors per room: an editor's updates build on its earlier ones.
            let (a, b) = (Editor::new(1), Editor::new(2));
            let r = load(&store, name).await;
            for i in 0..300 {
                let update = match i % 4 {
                    0 | 1 => a.type_at(0, "ab"),
                    2 => b.set(&format!("k{i}"), name),
                    _ => a.delete(1, 1),
                };
                append(&store, &r, &update).await;
            }
            store.close(&r).await;
            originals.push(r);
        }
        store.shutdown().await.unwrap();
    }
    let store = start(config(dir.path())).await;
    for (name, original) in names.iter().zip(&originals) {
        let reloaded = load(&store, name).await;
        assert!(same_state(reloaded.doc(), original.doc()), "{name}");
        assert_eq!(map(reloaded.doc()).len(), 75);
        assert_eq!(stored(&store, name).updates, 300);
    }
    store.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_commits_everything_queued() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        commit_interval_ms: 100,
        // Small batches: at shutdown most updates are still in the queue, not in a batch.
        max_batch_bytes: 256,
        ..config(dir.path())
    };
    let e = Editor::new(3);
    {
        let store = start(cfg.clone()).await;
        let r = load(&store, "s").await;
        for i in 0..500 {
            append(&store, &r, &e.set(&format!("k{i}"), "v")).await;
        }
        // Virtual time stood still: only full batches were committed, most updates are still
        // queued, and only shutdown itself can save them (no `close` first: it flushes too).
        assert!(stored(&store, "s").updates < 250);
        store.shutdown().await.unwrap();
    }
    let store = start(cfg).await;
    let r = load(&store, "s").await;
    assert_eq!(map(r.doc()).len(), 500);
    assert!(same_state(r.doc(), &e.doc));
    store.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_crash_loses_only_the_updates_of_the_open_window() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        commit_interval_ms: 50,
        ..config(dir.path())
    };
    let e = Editor::new(4);
    {
        let store = start(cfg.clone()).await;
        let r = load(&store, "w").await;
        for i in 0..20 {
            append(&store, &r, &e.set(&format!("a{i}"), "v")).await;
        }
        sleep(Duration::from_millis(49)).await;
        assert_eq!(stored(&store, "w").updates, 0, "batched for the window");
        sleep(Duration::from_millis(2)).await;
        until(|| stored(&store, "w").updates == 20).await;
        // Accepted at 51 ms: their window closes at 101 ms; the crash comes at 81 ms.
        for i in 0..20 {
            append(&store, &r, &e.set(&format!("b{i}"), "v")).await;
        }
        sleep(Duration::from_millis(30)).await;
        store.crash().await;
    }
    let store = start(cfg).await;
    let r = load(&store, "w").await;
    let keys = map(r.doc());
    assert!(
        (0..20).all(|i| keys.contains_key(&format!("a{i}"))),
        "committed before the crash"
    );
    assert!(
        (0..20).all(|i| !keys.contains_key(&format!("b{i}"))),
        "accepted less than one window before the crash: lost (documented)"
    );
    store.shutdown().await.unwrap();
}

/// Tiny deterministic generator, so the schedules differ but every run is the same.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[tokio::test(start_paused = true)]
async fn after_a_crash_everything_accepted_before_the_last_window_is_there() {
    let interval = Duration::from_millis(50);
    let mut rng = Lcg(42);
    for round in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig {
            commit_interval_ms: interval.as_millis() as u64,
            ..config(dir.path())
        };
        let e = Editor::new(10 + round);
        let mut accepted = Vec::new();
        let crashed_at = {
            let store = start(cfg.clone()).await;
            let r = load(&store, "p").await;
            for i in 0..80 {
                sleep(Duration::from_millis(rng.below(25))).await;
                append(&store, &r, &e.set(&format!("k{i}"), "v")).await;
                accepted.push(Instant::now());
            }
            sleep(Duration::from_millis(rng.below(60))).await;
            let at = Instant::now();
            store.crash().await;
            at
        };
        let store = start(cfg).await;
        let keys = map(load(&store, "p").await.doc());
        let kept: Vec<bool> = (0..80)
            .map(|i| keys.contains_key(&format!("k{i}")))
            .collect();
        let lost = kept.iter().filter(|k| !**k).count();
        // What survives is a prefix: a commit never skips an earlier update.
        assert!(
            kept.windows(2).all(|w| w[0] || !w[1]),
            "round {round}: a hole"
        );
        for (i, at) in accepted.iter().enumerate() {
            if *at + interval <= crashed_at {
                assert!(
                    kept[i],
                    "round {round}: update {i} accepted a full window before the crash was lost"
                );
            }
        }
        let in_window = accepted
            .iter()
            .filter(|at| **at + interval > crashed_at)
            .count();
        assert!(
            lost <= in_window,
            "round {round}: lost {lost} > {in_window}"
        );
        store.shutdown().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_makes_appends_wait_and_drops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        commit_interval_ms: 100,
        queue_capacity: 3,
        ..config(dir.path())
    };
    let store = Arc::new(start(cfg).await);
    let r = load(&store, "q").await;
    let e = Editor::new(5);
    for i in 0..3 {
        append(&store, &r, &e.set(&format!("k{i}"), "v")).await;
    }
    let fourth = {
        let (store, r, u) = (store.clone(), r.clone(), e.set("k3", "v"));
        tokio::spawn(async move { store.append(&r, &u).await })
    };
    sleep(Duration::from_millis(50)).await;
    assert!(
        !fourth.is_finished(),
        "three updates uncommitted: the fourth waits"
    );
    assert_eq!(store.metrics().pending_updates.get(), 3);
    sleep(Duration::from_millis(60)).await;
    until(|| fourth.is_finished()).await;
    fourth.await.unwrap().unwrap();
    store.flush().await.unwrap();
    assert_eq!(stored(&store, "q").updates, 4);
    assert_eq!(store.metrics().pending_updates.get(), 0);
    store.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn open_and_close_commit_what_is_queued_for_the_room() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        commit_interval_ms: 100,
        ..config(dir.path())
    };
    let store = start(cfg).await;
    let started = Instant::now();
    let r = load(&store, "c").await;
    let e = Editor::new(6);
    for i in 0..5 {
        append(&store, &r, &e.set(&format!("k{i}"), "v")).await;
    }
    assert_eq!(stored(&store, "c").updates, 0);
    // A newer Room of the same name (the old one is being unloaded) sees every update.
    let newer = load(&store, "c").await;
    assert_eq!(map(newer.doc()).len(), 5);
    append(&store, &r, &e.set("last", "v")).await;
    store.close(&r).await;
    assert_eq!(stored(&store, "c").updates, 6, "close commits");
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "without waiting for the window"
    );
    store.close(&newer).await;
    assert_eq!(store.tracker().len(), 0, "nothing tracked for closed rooms");
    store.shutdown().await.unwrap();
}
