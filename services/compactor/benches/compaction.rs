//! The compactor's pure core, [`Merger`], on realistic updates: three people typing in one
//! document, each update one keystroke as a y-websocket client sends it (the diff of one
//! transaction), with backspaces, newlines and cursor jumps, every client applying the others'
//! keystrokes as it would live.
//!
//! - `merge/typing/N`: an empty snapshot plus N log entries → merged state (throughput: log
//!   bytes merged per second).
//! - `merge/snapshot+1000`: the steady state: a snapshot of 100k keystrokes plus 1000 new ones.
//! - `merge/typing-no-gc/100000`: the same as `merge/typing/100000` with GC off.
//!
//! `cargo bench -p yws-compactor --bench compaction`
#![allow(
    clippy::expect_used,
    missing_docs,
    reason = "a benchmark panics on setup failure; criterion_main! generates an undocumented main"
)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update};
use yws_compactor::merge::{Applied, Merger};

/// One typist's document and cursor.
struct Typist {
    doc: Doc,
    cursor: u32,
}

/// `n` keystroke updates of three typists taking turns (a few keys each), in the order a
/// server would log them, and the text every typist ends with. Deterministic.
fn typing(n: usize) -> (Vec<Vec<u8>>, String) {
    let mut typists: Vec<Typist> = (1..=3)
        .map(|id| Typist {
            doc: Doc::with_client_id(id),
            cursor: 0,
        })
        .collect();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut updates = Vec::with_capacity(n);
    let mut turn = 0;
    while updates.len() < n {
        let who = turn % typists.len();
        turn += 1;
        for _ in 0..(1 + next() % 8) {
            if updates.len() == n {
                break;
            }
            let t = &mut typists[who];
            let text = t.doc.get_or_insert_text("text");
            let len = text.len(&t.doc.transact());
            t.cursor = t.cursor.min(len);
            let roll = next() % 100;
            // The transaction's own update, as a client sends it (a state-vector diff would
            // carry the whole delete set of the document).
            let update = {
                let mut txn = t.doc.transact_mut();
                if roll < 8 && t.cursor > 0 {
                    t.cursor -= 1;
                    text.remove_range(&mut txn, t.cursor, 1);
                } else {
                    let key = if roll < 10 {
                        "\n"
                    } else {
                        &"etaoinshrdlu "[(roll % 13) as usize..][..1]
                    };
                    text.insert(&mut txn, t.cursor, key);
                    t.cursor += 1;
                }
                if roll == 99 {
                    t.cursor = (next() % u64::from(len + 1)) as u32;
                }
                txn.encode_update_v1()
            };
            for (i, other) in typists.iter().enumerate() {
                if i != who {
                    other
                        .doc
                        .transact_mut()
                        .apply_update(Update::decode_v1(&update).expect("decodes"))
                        .expect("applies");
                }
            }
            updates.push(update);
        }
    }
    let doc = &typists[0].doc;
    let text = doc.get_or_insert_text("text").get_string(&doc.transact());
    (updates, text)
}

/// The text of a state.
fn text_of(state: &[u8]) -> String {
    let doc = Doc::new();
    doc.transact_mut()
        .apply_update(Update::decode_v1(state).expect("decodes"))
        .expect("applies");
    let text = doc.get_or_insert_text("text");
    let txn = doc.transact();
    text.get_string(&txn)
}

fn merge(gc: bool, snapshot: Option<&[u8]>, updates: &[Vec<u8>]) -> Vec<u8> {
    let mut merger = Merger::new(gc);
    if let Some(s) = snapshot {
        assert_eq!(merger.apply(s), Applied::Merged);
    }
    for u in updates {
        assert_eq!(merger.apply(u), Applied::Merged);
    }
    merger.encode()
}

fn bench(c: &mut Criterion) {
    let (all, typed) = typing(101_000);
    let bytes = |u: &[Vec<u8>]| u.iter().map(|u| u.len() as u64).sum::<u64>();
    let mut group = c.benchmark_group("merge");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for n in [10_000usize, 100_000] {
        let updates = &all[..n];
        group.throughput(Throughput::Bytes(bytes(updates)));
        group.bench_with_input(BenchmarkId::new("typing", n), updates, |b, u| {
            b.iter(|| black_box(merge(true, None, u)))
        });
    }
    let updates = &all[..100_000];
    group.throughput(Throughput::Bytes(bytes(updates)));
    group.bench_with_input(
        BenchmarkId::new("typing-no-gc", 100_000),
        updates,
        |b, u| b.iter(|| black_box(merge(false, None, u))),
    );

    let snapshot = merge(true, None, &all[..100_000]);
    assert_eq!(
        text_of(&merge(true, None, &all)),
        typed,
        "merging the log gives the typists' document"
    );
    let tail = &all[100_000..];
    group.throughput(Throughput::Bytes(bytes(tail) + snapshot.len() as u64));
    group.bench_function("snapshot+1000", |b| {
        b.iter(|| black_box(merge(true, Some(&snapshot), tail)))
    });
    group.finish();

    // The figures a reader needs to interpret the throughput.
    let doc = Doc::new();
    doc.transact_mut()
        .apply_update(Update::decode_v1(&snapshot).expect("decodes"))
        .expect("applies");
    let text_len = doc.get_or_insert_text("text").len(&doc.transact());
    let full = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    eprintln!(
        "input: 100000 keystroke updates, {} bytes ({:.1} bytes each); merged snapshot {} bytes for {} characters of text ({} bytes re-encoded)",
        bytes(&all[..100_000]),
        bytes(&all[..100_000]) as f64 / 100_000.0,
        snapshot.len(),
        text_len,
        full.len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
