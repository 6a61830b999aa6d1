//! Codec benchmarks: decode + validate of an update message, encode of a sync step 2 for a
//! large document, and awareness encoding for fan-out.
#![allow(
    clippy::expect_used,
    missing_docs,
    reason = "a benchmark panics on setup failure; criterion_main! generates an undocumented main"
)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use yrs::{Doc, ReadTxn, StateVector, Text, Transact};
use yws_protocol::{decode, encode, validate, AwarenessEntry, Message};

fn typing_update(len: usize) -> Vec<u8> {
    let doc = Doc::with_client_id(1);
    let text = doc.get_or_insert_text("t");
    let before = doc.transact().state_vector();
    text.push(&mut doc.transact_mut(), &"x".repeat(len));
    let update = doc.transact().encode_state_as_update_v1(&before);
    update
}

fn large_document(chars: usize) -> Doc {
    let doc = Doc::with_client_id(1);
    let text = doc.get_or_insert_text("t");
    // Many small transactions, like real typing, so the document has many blocks.
    for i in 0..chars / 16 {
        let mut txn = doc.transact_mut();
        let at = (i * 7) % (text.len(&txn) as usize + 1);
        text.insert(&mut txn, at as u32, "0123456789abcdef");
    }
    doc
}

fn bench_decode_apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_apply_update");
    for len in [16usize, 1024, 64 * 1024] {
        let frame = encode::update(&typing_update(len));
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(len), &frame, |b, frame| {
            b.iter(|| {
                let doc = Doc::new();
                for message in decode(black_box(frame)) {
                    if let Ok(Message::Update(bytes)) = message {
                        let update = validate::update(bytes).expect("valid update");
                        doc.transact_mut().apply_update(update).expect("applies");
                    }
                }
            })
        });
    }
    group.finish();
}

fn bench_sync_step2(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_sync_step2");
    group.sample_size(20);
    for chars in [64 * 1024usize, 1024 * 1024] {
        let doc = large_document(chars);
        group.throughput(Throughput::Bytes(chars as u64));
        group.bench_with_input(BenchmarkId::from_parameter(chars), &doc, |b, doc| {
            b.iter(|| {
                let update = doc
                    .transact()
                    .encode_state_as_update_v1(&StateVector::default());
                black_box(encode::sync_step2(&update))
            })
        });
    }
    group.finish();
}

fn bench_awareness(c: &mut Criterion) {
    let mut group = c.benchmark_group("awareness_encode");
    let states: Vec<String> = (0..1000)
        .map(|i| format!(r##"{{"user":{{"name":"user-{i}","color":"#30bced"}},"cursor":{{"anchor":{i},"head":{i}}}}}"##))
        .collect();
    for clients in [1usize, 100, 1000] {
        let entries: Vec<_> = (0..clients)
            .map(|i| AwarenessEntry {
                client_id: i as u64 + 1,
                clock: 5,
                state: &states[i],
            })
            .collect();
        group.throughput(Throughput::Elements(clients as u64));
        group.bench_with_input(BenchmarkId::new("all_states", clients), &entries, |b, e| {
            b.iter(|| black_box(encode::awareness(e.iter().copied())))
        });
    }
    let one = [AwarenessEntry {
        client_id: 1,
        clock: 5,
        state: &states[0],
    }];
    group.bench_function("one_state_decode", |b| {
        let frame = encode::awareness(one);
        b.iter(|| black_box(decode(black_box(&frame)).next()))
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_decode_apply,
    bench_sync_step2,
    bench_awareness
);
criterion_main!(benches);
