//! What one client can cost a node, and Redis, with frames built to hurt: real gateway
//! processes, a real `redis-server`, raw sockets.
//!
//! - Awareness floods against two gateways sharing a Redis: refused or coalesced before they
//!   reach other clients or Redis; Redis never runs a slow command; other rooms carry on.
//! - Frames of millions of tiny messages, sent by a client that never reads: the gateway's peak
//!   memory stays within a small multiple of the frame size.
//!
//! The tests run one at a time (they measure processes on a small machine).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a panic with a message is a test failure; tests print what they measured"
)]

use futures_util::{SinkExt, StreamExt};
use std::sync::Mutex;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use yws_e2e::docs::Author;
use yws_e2e::metrics::{peak_rss_bytes, scrape};
use yws_e2e::process::{Service, ServiceBuilder};
use yws_e2e::redis::RedisServer;
use yws_e2e::ws::{self, Follower};
use yws_e2e::{unique_room, wait_until};
use yws_protocol::awareness::encode_entries;
use yws_protocol::{encode, AwarenessEntry};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

const MIB: usize = 1024 * 1024;

/// One awareness message of `bytes` or a little more: client `id`'s state renewed with
/// rising clocks, over and over (before the fix, one entry of the Redis script per renewal).
fn renewals(id: u64, bytes: usize) -> Vec<u8> {
    let per_entry = 4 + 4 + 3; // id, clock, `{}` with its length
    let entries: Vec<AwarenessEntry<'_>> = (1..=(bytes / per_entry) as u64)
        .map(|clock| AwarenessEntry {
            client_id: id,
            clock: clock + 1_000_000,
            state: "{}",
        })
        .collect();
    encode::awareness_payload(&encode_entries(entries))
}

/// One frame of many awareness messages, each renewing client `id` once, and the last clock.
fn renewal_messages(id: u64, bytes: usize) -> (Vec<u8>, u64) {
    let mut frame = Vec::with_capacity(bytes + 64);
    let mut clock = 1_000_000u64;
    while frame.len() < bytes {
        clock += 1;
        frame.extend(encode::awareness([AwarenessEntry {
            client_id: id,
            clock,
            state: "{}",
        }]));
    }
    (frame, clock)
}

/// One awareness message removing `count` clients nobody ever saw.
fn unknown_removals(count: u64) -> Vec<u8> {
    let entries: Vec<AwarenessEntry<'_>> = (1..=count)
        .map(|client_id| AwarenessEntry {
            client_id: client_id + 1_000_000,
            clock: 1,
            state: "null",
        })
        .collect();
    encode::awareness_payload(&encode_entries(entries))
}

/// The (client, clock) entries of an awareness frame; empty for any other frame.
fn entries(frame: &[u8]) -> Vec<(u64, u64)> {
    match yws_protocol::decode(frame).next() {
        Some(Ok(yws_protocol::Message::Awareness(a))) => {
            a.entries().map(|e| (e.client_id, e.clock)).collect()
        }
        _ => vec![],
    }
}

/// `room` on `gw`, as a raw socket whose first frame (the server's step 1) was read.
async fn raw(gw: &Service, room: &str) -> ws::Socket {
    let mut socket = ws::connect(&format!("{}/{room}", gw.ws_url()))
        .await
        .expect("connect");
    ws::next_binary(&mut socket).await.expect("step 1");
    socket
}

/// An edit in the calm room reaches the followers on both gateways within 10 s.
async fn calm_room_works(writer: &mut ws::Socket, author: &Author, followers: &mut [Follower]) {
    let update = author.append("x");
    ws::send(writer, encode::update(&update)).await;
    let expected = author.text_len() as usize;
    for follower in followers.iter_mut() {
        assert!(
            follower
                .wait_text(Duration::from_secs(10), |t| t.len() == expected)
                .await,
            "the calm room stalled: {:?}",
            follower.text()
        );
    }
}

/// What the clients of [`floods`] saw.
#[derive(Debug)]
struct Floods {
    /// The close code of the oversized message.
    first_close: Option<u16>,
    /// The frames a witness in the flood room received (on the other gateway).
    relayed: Vec<Vec<u8>>,
    /// Whether the attacker of the other floods is still connected.
    attacker_alive: bool,
    /// Fields of the flood room's awareness hash in Redis, while the attacker is connected.
    fields: String,
}

/// The floods of [`awareness_floods_reach_neither_other_clients_nor_redis`].
async fn floods(gateways: &[Service], redis: &RedisServer, calm: &str, flood: &str) -> Floods {
    let mut followers = Vec::new();
    for gw in gateways {
        let url = format!("{}/{calm}", gw.ws_url());
        followers.push(Follower::connect(&url).await.expect("follower"));
    }
    let mut writer = raw(&gateways[0], calm).await;
    let author = Author::new(4242);
    calm_room_works(&mut writer, &author, &mut followers).await;
    // A client of the flood room on the other gateway, which must see the attacker's one
    // relayed state and nothing else of the floods.
    let mut witness = raw(&gateways[1], flood).await;
    assert!(redis.cli(&["SLOWLOG", "RESET"]).is_some());

    // 1. One 19 MiB awareness message renewing one client 2.8 million times: over
    //    `rooms.max_awareness_message_bytes`.
    let mut attacker = raw(&gateways[0], flood).await;
    ws::send(&mut attacker, renewals(7, 30 * MIB)).await;
    let first_close = ws::close_code(&mut attacker).await;
    calm_room_works(&mut writer, &author, &mut followers).await;

    // 2. One 2 MiB message (under the limit) renewing one client ~290 000 times: one
    //    entry reaches the room and Redis.
    let mut attacker = raw(&gateways[0], flood).await;
    ws::send(&mut attacker, renewals(8, 3 * MIB)).await;
    // 3. A 30 MiB frame of ~3 million one-renewal messages: relayed once.
    let (frame, last_clock) = renewal_messages(8, 30 * MIB);
    ws::send(&mut attacker, frame).await;
    // 4. A removal of 300 000 clients nobody ever saw: changes nothing, leaves nothing.
    ws::send(&mut attacker, unknown_removals(300_000)).await;
    calm_room_works(&mut writer, &author, &mut followers).await;

    // What reached the witness: until client 8's last clock arrived, then a moment more.
    let mut relayed = Vec::new();
    let mut wait = Duration::from_secs(120);
    while let Ok(Some(Ok(message))) = tokio::time::timeout(wait, witness.next()).await {
        let Message::Binary(frame) = message else {
            continue;
        };
        let frame = frame.to_vec();
        if frame == encode::empty_awareness() {
            continue;
        }
        if entries(&frame).contains(&(8, last_clock)) {
            wait = Duration::from_secs(2);
        }
        relayed.push(frame);
    }
    // Nothing it sent broke a limit: still connected.
    ws::send(&mut attacker, encode::query_awareness()).await;
    let attacker_alive = ws::next_binary(&mut attacker).await.is_some();
    // Read while the attacker is connected (its state goes when it leaves).
    let fields = redis
        .cli(&["HLEN", &format!("yws:{{{flood}}}:aw")])
        .expect("HLEN");
    Floods {
        first_close,
        relayed,
        attacker_alive,
        fields: fields.trim().to_string(),
    }
}

#[test]
fn awareness_floods_reach_neither_other_clients_nor_redis() {
    let _serial = serial();
    let redis = RedisServer::start();
    assert!(redis
        .cli(&["CONFIG", "SET", "slowlog-log-slower-than", "10000"])
        .is_some());
    let gateways: Vec<Service> = (0..2)
        .map(|_| {
            ServiceBuilder::gateway()
                .env("REDIS_URL", redis.url())
                .spawn()
        })
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let calm = unique_room("calm");
    let flood = unique_room("flood");
    // What the clients saw, checked after Redis's own record (bounded: before the fix, the
    // frame of renewals alone made millions of Redis calls).
    let floods = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(180),
            floods(&gateways, &redis, &calm, &flood),
        )
        .await
    });

    let slow = redis.cli(&["SLOWLOG", "GET", "16"]).expect("SLOWLOG GET");
    println!("SLOWLOG (commands over 10 ms): {slow:?}");
    assert!(
        slow.trim().is_empty(),
        "Redis ran commands over 10 ms:\n{}",
        &slow[..slow.len().min(2000)]
    );
    let Floods {
        first_close,
        relayed,
        attacker_alive,
        fields,
    } = floods.expect("the gateways handled the floods within 3 minutes");
    assert_eq!(fields, "1", "one awareness field in Redis");
    assert_eq!(
        first_close,
        Some(1008),
        "an oversized message closes with 1008"
    );
    let rejected: f64 = gateways
        .iter()
        .map(|gw| {
            scrape(
                gw.addr,
                "yws_gateway_awareness_rejected_total{reason=\"message_too_large\"}",
            )
        })
        .sum();
    assert_eq!(rejected, 1.0);
    // The witness saw client 8's state once per frame that changed it, and nothing else.
    let seen: Vec<Vec<(u64, u64)>> = relayed.iter().map(|f| entries(f)).collect();
    println!("relayed to the witness: {seen:?}");
    assert_eq!(seen.len(), 2, "one relay per frame that changed client 8");
    for frame in &relayed {
        assert!(
            frame.len() < 64,
            "one small entry, not a flood: {} bytes",
            frame.len()
        );
    }
    assert!(attacker_alive);
}

#[test]
fn frames_of_tiny_messages_cost_no_memory_per_message() {
    let _serial = serial();
    let gw = ServiceBuilder::gateway().spawn();
    let frame_bytes = 30 * MIB;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let before = peak_rss_bytes(gw.pid()).expect("VmHWM");
    rt.block_on(async {
        // A room with a document, so each sync step 2 has something to say.
        let room = unique_room("tiny");
        let mut writer = raw(&gw, &room).await;
        ws::send(&mut writer, encode::update(&Author::new(1).append("hello"))).await;
        // Sync step 1 with an empty state vector: four bytes, 7.8 million to a frame.
        let step1 = encode::sync_step1(&yrs::StateVector::default());
        let steps: Vec<u8> = step1.iter().copied().cycle().take(frame_bytes).collect();
        // The client sends and never reads.
        let mut flooder = raw(&gw, &room).await;
        for frame in [vec![3u8; frame_bytes], steps, vec![3u8; frame_bytes]] {
            // Not `ws::send`: a gateway that gave up on the client is measured all the same.
            let _ = flooder.send(Message::Binary(frame.into())).await;
        }
        let query = "yws_gateway_messages_received_total{type=\"query_awareness\"}";
        let too_slow = "yws_gateway_connections_closed_total{reason=\"too_slow\"}";
        // Until the gateway handled every frame, or gave up on the client.
        wait_until(Duration::from_secs(240), || {
            scrape(gw.addr, query) >= (2 * frame_bytes) as f64 || scrape(gw.addr, too_slow) > 0.0
        });
        let peak = peak_rss_bytes(gw.pid()).expect("VmHWM");
        println!(
            "gateway peak RSS: {} MiB before, {} MiB after three {} MiB frames (bound {} MiB)",
            before / MIB as u64,
            peak / MIB as u64,
            frame_bytes / MIB,
            3 * frame_bytes / MIB
        );
        assert!(
            peak < 3 * frame_bytes as u64,
            "peak RSS {peak} bytes is over 3 × the frame size"
        );
        assert_eq!(
            scrape(gw.addr, too_slow),
            0.0,
            "nobody was closed as too slow"
        );
        assert!(
            scrape(gw.addr, query) >= (2 * frame_bytes) as f64,
            "the gateway did not handle the frames in time"
        );
        assert!(
            scrape(
                gw.addr,
                "yws_gateway_messages_received_total{type=\"sync_step1\"}"
            ) >= (frame_bytes / step1.len()) as f64
        );
        // Still connected: one answer per frame.
        ws::send(&mut writer, encode::query_awareness()).await;
        assert!(ws::next_binary(&mut writer).await.is_some());
        drop(flooder);
    });
}

/// A client that stops reading blocks the gateway's writes to it once the socket buffers are
/// full; with room left in its outbox it is never "too slow" by the outbox's measure. The
/// write gives up after two ping intervals (here 2 × 2 s) and the connection is closed as too slow, while
/// the writer in the same room carries on.
#[test]
fn a_client_that_stops_reading_is_dropped_after_two_ping_intervals() {
    let _serial = serial();
    let gw = ServiceBuilder::gateway()
        .env("YWS__SERVER__PING_INTERVAL_MS", 2000)
        .env("YWS__SERVER__OUTBOX_BYTES", 256 * MIB)
        .spawn();
    let too_slow = "yws_gateway_connections_closed_total{reason=\"too_slow\"}";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // 48 MiB, made before connecting (the clients must answer pings): more than the socket
        // buffers between the gateway and a client that does not read can hold, far less than
        // its outbox.
        let author = Author::new(1);
        let chunk = "x".repeat(2 * MIB);
        let updates: Vec<Vec<u8>> = (0..24)
            .map(|_| encode::update(&author.append(&chunk)))
            .collect();
        let room = unique_room("stops-reading");
        let mut writer = raw(&gw, &room).await;
        let stuck = raw(&gw, &room).await;
        for (i, update) in updates.into_iter().enumerate() {
            ws::send(&mut writer, update).await;
            // The writer reads its echo, so only the other client falls behind.
            loop {
                let Some(frame) = ws::next_binary(&mut writer).await else {
                    panic!(
                        "no echo of update {i}: {:?}\n{}",
                        ws::close_code(&mut writer).await,
                        gw.logs()
                    );
                };
                if frame.len() > MIB {
                    break;
                }
            }
        }
        wait_until(Duration::from_secs(60), || scrape(gw.addr, too_slow) >= 1.0);
        assert_eq!(
            scrape(gw.addr, too_slow),
            1.0,
            "the stuck client was dropped"
        );
        ws::send(&mut writer, encode::query_awareness()).await;
        assert!(
            ws::next_binary(&mut writer).await.is_some(),
            "the writer carries on"
        );
        drop(stuck);
    });
}
