//! Coalesced appends end to end: while a room's write to Redis is in flight, the room's further
//! updates on that gateway go out together in one `APPEND` call. Real `yws-gateway` processes
//! on one real `redis-server`, Rust y-websocket peers, and Redis `MONITOR` as the witness.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic with a message is a test failure"
)]

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Barrier;
use yrs::{GetString, Text, Transact};
use yws_e2e::monitor::Monitor;
use yws_e2e::peer::Peer;
use yws_e2e::process::{Service, ServiceBuilder};
use yws_e2e::redis::RedisServer;
use yws_e2e::unique_room;
use yws_protocol::encode;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn gateway(redis: &RedisServer) -> Service {
    ServiceBuilder::gateway()
        .env("REDIS_URL", redis.url())
        // Off by default until the demo-page presence regression it caused is understood.
        .env("YWS__REDIS__AWARENESS_WINDOW_MS", 50)
        .spawn()
}

/// An update of `peer`'s document that appends `piece` to its text (applied to it already).
fn edit(peer: &Peer, piece: &str) -> Vec<u8> {
    let text = peer.doc.get_or_insert_text("text");
    let mut txn = peer.doc.transact_mut();
    let end = text.len(&txn);
    text.insert(&mut txn, end, piece);
    txn.encode_update_v1()
}

fn text(peer: &Peer) -> String {
    let text = peer.doc.get_or_insert_text("text");
    text.get_string(&peer.doc.transact())
}

fn piece(writer: usize, i: usize) -> String {
    format!("<{writer}.{i}>")
}

/// Whether `text` holds every piece of `writers` × `per_writer`, each once.
fn holds_all(text: &str, writers: usize, per_writer: usize) -> bool {
    (0..writers).all(|w| (0..per_writer).all(|i| text.matches(&piece(w, i)).count() == 1))
}

const WRITERS_PER_GATEWAY: usize = 8;
const UPDATES_PER_WRITER: usize = 25;

#[test]
fn concurrent_writers_on_two_nodes_converge_and_each_update_is_echoed_once() {
    let _serial = serial();
    let redis = RedisServer::start();
    let gateways = [gateway(&redis), gateway(&redis)];
    let room = unique_room("coalesced");
    let urls: Vec<String> = gateways
        .iter()
        .map(|g| format!("{}/{room}", g.ws_url()))
        .collect();
    let monitor = Monitor::start(redis.port);
    let writers = 2 * WRITERS_PER_GATEWAY;
    let total = (writers * UPDATES_PER_WRITER) as u64;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let results = rt.block_on(async {
        let ready = Arc::new(Barrier::new(writers));
        let mut peers = tokio::task::JoinSet::new();
        for w in 0..writers {
            let (url, ready) = (urls[w % 2].clone(), ready.clone());
            peers.spawn(async move {
                let (mut peer, _) = Peer::join(&url, Duration::from_secs(10)).await;
                ready.wait().await;
                // Back to back: the gateway handles them while its earlier writes are out.
                for i in 0..UPDATES_PER_WRITER {
                    let update = edit(&peer, &piece(w, i));
                    peer.send(encode::update(&update)).await;
                }
                let converged = peer
                    .until(Duration::from_secs(30), |p| p.updates_received >= total)
                    .await;
                // Anything delivered twice would arrive meanwhile.
                peer.until(Duration::from_millis(500), |_| false).await;
                (w, converged, peer.updates_received, text(&peer))
            });
        }
        peers.join_all().await
    });
    let commands = monitor.stop();
    for (w, converged, received, text) in results {
        assert!(
            converged,
            "writer {w} received {received} of {total} updates"
        );
        assert_eq!(
            received, total,
            "writer {w}: every update (its own included) is delivered exactly once"
        );
        assert!(
            holds_all(&text, writers, UPDATES_PER_WRITER),
            "writer {w} has {text:?}"
        );
    }
    let log = format!("yws:{{{room}}}:log");
    let entries = commands
        .iter()
        .filter(|c| c.client == "lua" && c.is("XADD") && c.arg(1) == log)
        .count() as u64;
    let calls = commands
        .iter()
        .filter(|c| c.client != "lua" && (c.is("EVALSHA") || c.is("EVAL")))
        .filter(|c| c.arg(2) == "4" && c.arg(3) == log)
        .count() as u64;
    assert_eq!(entries, total, "one log entry per update");
    assert!(
        calls < total,
        "updates sent while a write was in flight went out together: {calls} APPEND calls for {total} updates"
    );
    let len = redis.cli(&["XLEN", &log]).unwrap();
    assert_eq!(len.trim(), total.to_string());
}

#[test]
fn a_failed_batch_closes_its_writers_and_shows_nothing_it_did_not_write() {
    let _serial = serial();
    let redis = RedisServer::start();
    let (writing_gw, reading_gw) = (gateway(&redis), gateway(&redis));
    let room = unique_room("coalesced-fail");
    let url = |gw: &Service| format!("{}/{room}", gw.ws_url());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (mut first, _) = Peer::join(&url(&writing_gw), Duration::from_secs(10)).await;
        let (mut local_reader, _) = Peer::join(&url(&writing_gw), Duration::from_secs(10)).await;
        let (mut remote_reader, _) = Peer::join(&url(&reading_gw), Duration::from_secs(10)).await;
        let written = edit(&first, "written;");
        first.send(encode::update(&written)).await;
        for reader in [&mut local_reader, &mut remote_reader] {
            assert!(
                reader
                    .until(Duration::from_secs(10), |p| text(p) == "written;")
                    .await
            );
        }
        // Every write to the room fails from now on (XADD on a key of the wrong type, after
        // the script's checks): whole batches fail.
        let log = format!("yws:{{{room}}}:log");
        redis.cli(&["DEL", &log]).unwrap();
        redis.cli(&["SET", &log, "not a stream"]).unwrap();
        let mut writers = Vec::new();
        for _ in 0..6 {
            let (peer, _) = Peer::join(&url(&writing_gw), Duration::from_secs(10)).await;
            writers.push(peer);
        }
        for (w, peer) in writers.iter_mut().enumerate() {
            for i in 0..3 {
                let update = edit(peer, &piece(w, i));
                peer.send(encode::update(&update)).await;
            }
        }
        for (w, peer) in writers.iter_mut().enumerate() {
            assert_eq!(
                peer.close_code().await,
                Some(1013),
                "writer {w} is closed: its update was not written"
            );
        }
        // Nobody was shown an update that was not written, on either node.
        for reader in [&mut local_reader, &mut remote_reader] {
            reader.until(Duration::from_secs(1), |_| false).await;
            assert_eq!(text(reader), "written;");
        }
        let (late, _) = Peer::join(&url(&writing_gw), Duration::from_secs(10)).await;
        assert_eq!(
            text(&late),
            "written;",
            "the room's state on the writing node"
        );
    });
}

/// The newest state of `client` in the awareness messages `socket` reads within `limit`, once
/// it equals `want`; `None` if it never does.
async fn awareness_until(
    socket: &mut yws_e2e::ws::Socket,
    client: u64,
    want: &str,
    limit: Duration,
) -> Option<String> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let frame = tokio::time::timeout_at(deadline, yws_e2e::ws::next_binary(socket))
            .await
            .ok()??;
        for message in yws_protocol::decode(&frame).map_while(Result::ok) {
            if let yws_protocol::Message::Awareness(update) = message {
                for e in update.entries().filter(|e| e.client_id == client) {
                    if e.state == want {
                        return Some(e.state.to_string());
                    }
                }
            }
        }
    }
}

#[test]
fn a_burst_of_awareness_changes_crosses_nodes_in_few_calls_and_ends_at_the_newest_state() {
    let _serial = serial();
    let redis = RedisServer::start();
    let (a, b) = (gateway(&redis), gateway(&redis));
    let room = unique_room("coalesced-aw");
    let monitor = Monitor::start(redis.port);
    const CHANGES: u64 = 40;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let newest = format!(r#"{{"cursor":{CHANGES}}}"#);
    let seen = rt.block_on(async {
        let mut observer = yws_e2e::ws::connect(&format!("{}/{room}", b.ws_url()))
            .await
            .unwrap();
        let mut typist = yws_e2e::ws::connect(&format!("{}/{room}", a.ws_url()))
            .await
            .unwrap();
        // Both rooms are loaded and subscribed before the burst.
        let (mut join_a, _) =
            Peer::join(&format!("{}/{room}", a.ws_url()), Duration::from_secs(10)).await;
        let (mut join_b, _) =
            Peer::join(&format!("{}/{room}", b.ws_url()), Duration::from_secs(10)).await;
        let marker = edit(&join_a, "ready");
        join_a.send(encode::update(&marker)).await;
        assert!(
            join_b
                .until(Duration::from_secs(10), |p| text(p) == "ready")
                .await
        );
        // A keystroke each: one awareness change per frame, back to back.
        for clock in 1..=CHANGES {
            let state = format!(r#"{{"cursor":{clock}}}"#);
            let frame = encode::awareness([yws_protocol::AwarenessEntry {
                client_id: 7,
                clock,
                state: &state,
            }]);
            yws_e2e::ws::send(&mut typist, frame).await;
        }
        awareness_until(&mut observer, 7, &newest, Duration::from_secs(10)).await
    });
    let commands = monitor.stop();
    assert_eq!(
        seen.as_deref(),
        Some(newest.as_str()),
        "the other node shows the newest state"
    );
    let aw = format!("yws:{{{room}}}:aw");
    let calls = commands
        .iter()
        .filter(|c| c.client != "lua" && (c.is("EVALSHA") || c.is("EVAL")))
        .filter(|c| c.arg(2) == "1" && c.arg(3) == aw)
        .count() as u64;
    let stores = commands
        .iter()
        .filter(|c| c.client == "lua" && c.is("HSET") && c.arg(1) == aw)
        .count() as u64;
    assert!(calls >= 1, "awareness went through Redis");
    assert!(
        calls < CHANGES / 2,
        "{calls} AWARENESS calls for {CHANGES} changes: gathered per window"
    );
    assert!(
        stores <= 2,
        "the stored state of one client is refreshed at most every interval: {stores} writes"
    );
}
