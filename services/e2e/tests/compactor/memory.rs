//! Large documents: a 20 MiB document compacted in bounded memory, and (ignored, a
//! measurement) join times of a 20 MiB document with and without compaction.

use std::time::Duration;
use yws_e2e::docs::{same_state, Author};
use yws_e2e::metrics::peak_rss_bytes;
use yws_e2e::peer::Peer;
use yws_e2e::redis::RedisServer;
use yws_e2e::redis_keys::{now_ms, RedisKeys};
use yws_e2e::unique_room;

use crate::support::{
    compactor, gateway, runtime, send_all, wait_fully_compacted, Counts, PREFIX, SYNC_LIMIT,
};

const MIB: usize = 1024 * 1024;

/// `len` bytes of pseudo-random lowercase text (deterministic per `seed`).
fn filler(len: usize, seed: u64) -> String {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

#[test]
fn a_20_mib_document_is_compacted_in_bounded_memory() {
    let redis = RedisServer::start();
    let gw = gateway(&redis).spawn();
    let mut direct = RedisKeys::connect(redis.port, PREFIX);
    let room = unique_room("big");
    let author = Author::new(801);
    let rt = runtime();
    rt.block_on(async {
        let (mut peer, _) = Peer::join(&format!("{}/{room}", gw.ws_url()), SYNC_LIMIT).await;
        for i in 0..10 {
            let update = author.append(&filler(2 * MIB, i + 1));
            send_all(&mut peer, &[update]).await;
        }
        peer.close().await;
    });
    let log_bytes: u64 = direct
        .stored(&room)
        .entries
        .iter()
        .map(|e| e.1.len() as u64)
        .sum();
    assert_eq!(direct.log_len(&room), 10);

    // Started only now, the compactor merges the whole 20 MiB log in one run.
    let compactor = compactor(&redis).spawn();
    let idle_peak = peak_rss_bytes(compactor.pid()).expect("VmHWM");
    wait_fully_compacted(&mut direct, &room, &author.doc, Duration::from_secs(120));
    let c = Counts::of(&compactor);
    c.assert_clean();
    assert_eq!(
        (c.ok, c.entries_merged, c.bytes_merged),
        (1, 10, log_bytes),
        "{c:?}"
    );
    let peak = peak_rss_bytes(compactor.pid()).expect("VmHWM");
    let snapshot_len = direct.snapshot(&room).doc.map_or(0, |d| d.len());
    println!(
        "20 MiB document: log {:.1} MiB in 10 entries -> snapshot {:.1} MiB; compactor peak RSS {:.1} MiB ({:.1}x the document; {:.1} MiB before the task)",
        log_bytes as f64 / MIB as f64,
        snapshot_len as f64 / MIB as f64,
        peak as f64 / MIB as f64,
        peak as f64 / (20 * MIB) as f64,
        idle_peak as f64 / MIB as f64
    );
    assert!(peak < 10 * 20 * MIB as u64, "peak RSS {peak} bytes");

    let g2 = gateway(&redis).spawn();
    rt.block_on(async {
        let (joiner, took) = Peer::join(&format!("{}/{room}", g2.ws_url()), SYNC_LIMIT).await;
        same_state(&joiner.doc, &author.doc).expect("a joiner gets all 20 MiB at sync");
        println!("a joiner synced the compacted 20 MiB document in {took:?}");
        joiner.close().await;
    });
}

/// Median of a few durations.
fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[test]
#[ignore = "measurement, not a check: run with `--release -- --ignored --nocapture` (after \
            `cargo build --release --bins`) and read the figures"]
fn measure_join_time_of_a_20_mib_document_compacted_vs_uncompacted() {
    let redis = RedisServer::start();
    let mut direct = RedisKeys::connect(redis.port, PREFIX);
    let rt = runtime();
    for (chunk, label) in [
        (2 * MIB, "10 x 2 MiB"),
        (4096, "5120 x 4 KiB"),
        (200, "104858 x 200 B"),
    ] {
        // The same entries in two rooms; only one is compacted.
        let (raw, compacted) = (unique_room("raw"), unique_room("compacted"));
        let author = Author::new(1001);
        for i in 0..(20 * MIB).div_ceil(chunk) {
            // Prepended: finding the end of a long text is slow in a debug build.
            let update = author.insert(0, &filler(chunk, i as u64 + 1));
            direct.append(&raw, &update);
            direct.append(&compacted, &update);
        }
        direct.schedule(&compacted, now_ms());
        let mut c = compactor(&redis)
            .env("YWS__COMPACTOR__SWEEP_INTERVAL_MS", 0)
            .spawn();
        wait_fully_compacted(
            &mut direct,
            &compacted,
            &author.doc,
            Duration::from_secs(300),
        );
        c.terminate();
        c.wait_exit(Duration::from_secs(15));
        assert_eq!(direct.log_len(&raw) as usize, (20 * MIB).div_ceil(chunk));

        // Each join loads the room into a fresh gateway.
        let join = |room: &str| {
            let gw = gateway(&redis).spawn();
            let url = format!("{}/{room}", gw.ws_url());
            let (peer, took) = rt.block_on(Peer::join(&url, Duration::from_secs(120)));
            same_state(&peer.doc, &author.doc).expect("complete at sync");
            rt.block_on(peer.close());
            took
        };
        let (mut t_raw, mut t_compacted) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            t_raw.push(join(&raw));
            t_compacted.push(join(&compacted));
        }
        let (r, k) = (median(t_raw.clone()), median(t_compacted.clone()));
        println!(
            "join of a 20 MiB document written as {label}: uncompacted {r:?} (runs {t_raw:?}), compacted {k:?} (runs {t_compacted:?}); ratio uncompacted/compacted {:.2}",
            r.as_secs_f64() / k.as_secs_f64()
        );
    }
}
