//! Store benchmarks on a real file (in a temporary directory, so on whatever disk `TMPDIR` is):
//! accepting and committing a burst of updates, the latency of one fsync'd commit, and loading
//! a room (snapshot plus log tail).
#![allow(
    clippy::expect_used,
    missing_docs,
    reason = "a benchmark panics on setup failure; criterion_main! generates an undocumented main"
)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::sync::Arc;
use std::time::Duration;
use yrs::{Doc, ReadTxn, Text, Transact};
use yws_core::{Room, RoomBackend, RoomName, RoomSettings};
use yws_store::{StoreBackend, StoreConfig, StoreMetrics};

/// `n` typing updates of one client, each a few characters, as a text editor sends them.
fn typing(n: usize) -> Vec<Vec<u8>> {
    let doc = Doc::with_client_id(1);
    let text = doc.get_or_insert_text("t");
    (0..n)
        .map(|i| {
            let before = doc.transact().state_vector();
            let at = (i * 7) % (text.len(&doc.transact()) as usize + 1);
            text.insert(&mut doc.transact_mut(), at as u32, "abc");
            let update = doc.transact().encode_state_as_update_v1(&before);
            update
        })
        .collect()
}

fn room(name: &str) -> Arc<Room> {
    let name = RoomName::new(name, 64).expect("valid name");
    Arc::new(Room::new(name, RoomSettings::default()))
}

fn bench_store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = StoreConfig {
        dir: Some(dir.path().to_path_buf()),
        ..StoreConfig::default()
    };
    let metrics = StoreMetrics::new(&prometheus::Registry::new()).expect("metrics");
    let store = rt
        .block_on(StoreBackend::start(config, metrics))
        .expect("store");
    let updates = typing(1000);

    let mut group = c.benchmark_group("store");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));

    let burst = room("burst");
    rt.block_on(store.open(&burst)).expect("open");
    group.throughput(Throughput::Elements(updates.len() as u64));
    group.bench_function("append_1000_then_flush", |b| {
        b.iter(|| {
            rt.block_on(async {
                for update in &updates {
                    store.append(&burst, update).await.expect("append");
                }
                store.flush().await.expect("flush");
            })
        })
    });

    let single = room("single");
    rt.block_on(store.open(&single)).expect("open");
    group.throughput(Throughput::Elements(1));
    group.bench_function("append_1_then_flush", |b| {
        b.iter(|| {
            rt.block_on(async {
                store.append(&single, &updates[0]).await.expect("append");
                store.flush().await.expect("flush");
            })
        })
    });

    // A room of 3000 updates: compaction leaves a snapshot and a short tail.
    let big = room("big");
    rt.block_on(async {
        store.open(&big).await.expect("open");
        for update in typing(3000) {
            store.append(&big, &update).await.expect("append");
        }
        store.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    group.bench_function("open_room_3000_updates", |b| {
        b.iter(|| {
            rt.block_on(async {
                let fresh = room("big");
                store.open(&fresh).await.expect("open");
                store.close(&fresh).await;
            })
        })
    });
    group.finish();
    rt.block_on(store.shutdown()).expect("shutdown");
}

criterion_group!(benches, bench_store);
criterion_main!(benches);
