//! Deleting a room while it is in use, across two gateways sharing a real `redis-server`: a
//! deleted document is never served again by any node, a node that missed the deletion cannot
//! write into the room that follows it, and a new room of the same name starts empty.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic with a message is a test failure"
)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use yrs::updates::decoder::Decode;
use yrs::{GetString, Map, ReadTxn, StateVector, Text, Transact, Update};
use yws_e2e::process::{Service, ServiceBuilder};
use yws_e2e::redis::RedisServer;
use yws_e2e::ws::{self, Follower};
use yws_e2e::{http, unique_room, wait_until};

fn gateway(redis: &RedisServer) -> Service {
    ServiceBuilder::gateway()
        .env("REDIS_URL", redis.url())
        .spawn()
}

/// An update from a new client: `text` typed into the empty `text`, or `key` set in `posts`.
fn fresh_update(text: Option<&str>, key: Option<&str>) -> Vec<u8> {
    let doc = yrs::Doc::new();
    let (shared, posts) = (
        doc.get_or_insert_text("text"),
        doc.get_or_insert_map("posts"),
    );
    let mut txn = doc.transact_mut();
    if let Some(text) = text {
        shared.insert(&mut txn, 0, text);
    }
    if let Some(key) = key {
        posts.insert(&mut txn, key, true);
    }
    txn.encode_state_as_update_v1(&StateVector::default())
}

/// What a node serves of the room: its `text` and the keys of `posts` (`None`: no such room).
fn view(gw: &Service, room: &str) -> Option<(String, Vec<String>)> {
    let response = http::get(gw.addr, &format!("/api/rooms/{room}"));
    if response.status == 404 {
        return None;
    }
    assert_eq!(response.status, 200, "{}", response.text());
    let doc = yrs::Doc::new();
    let (text, posts) = (
        doc.get_or_insert_text("text"),
        doc.get_or_insert_map("posts"),
    );
    doc.transact_mut()
        .apply_update(Update::decode_v1(&response.body).unwrap())
        .unwrap();
    let txn = doc.transact();
    let mut keys: Vec<String> = posts.keys(&txn).map(str::to_string).collect();
    keys.sort();
    Some((text.get_string(&txn), keys))
}

fn post(gw: &Service, room: &str, update: &[u8]) -> u16 {
    http::request(
        gw.addr,
        "POST",
        &format!("/api/rooms/{room}/update"),
        &[],
        update,
    )
    .status
}

#[test]
fn deletes_racing_joins_and_posts_on_two_gateways_never_serve_the_old_document() {
    let redis = RedisServer::start();
    let (a, b) = (gateway(&redis), gateway(&redis));
    let mut refused = 0;
    for round in 0..10 {
        let room = unique_room("delete-race");
        assert_eq!(post(&a, &room, &fresh_update(Some("old;"), None)), 200);
        assert_eq!(view(&b, &room).unwrap().0, "old;"); // loaded on b too
        let started = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let conflicts = AtomicUsize::new(0);
        std::thread::scope(|s| {
            // Reads on both nodes, two on the deleting node; posts on the other (a refused
            // post retires a stale copy, which would hide one on the node it reads from).
            for (i, gw) in [&a, &b, &a, &b].into_iter().enumerate() {
                let (room, started, stop, conflicts) = (&room, &started, &stop, &conflicts);
                s.spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::SeqCst) {
                        if i < 3 {
                            // Joins: a read loads the room when it is not loaded.
                            view(gw, room);
                        } else {
                            let key = format!("r{round}-{i}-{n}");
                            match post(gw, room, &fresh_update(None, Some(&key))) {
                                200 => {}
                                409 => {
                                    conflicts.fetch_add(1, Ordering::SeqCst);
                                }
                                status => panic!("POST answered {status}"),
                            }
                        }
                        n += 1;
                        started.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
            while started.load(Ordering::SeqCst) < 8 + round {
                std::thread::yield_now();
            }
            let deleted = http::request(a.addr, "DELETE", &format!("/api/rooms/{room}"), &[], &[]);
            assert_eq!(deleted.status, 204, "{}", deleted.text());
            let until = Instant::now() + Duration::from_millis(200);
            while Instant::now() < until {
                std::thread::yield_now();
            }
            stop.store(true, Ordering::SeqCst);
        });
        refused += conflicts.load(Ordering::SeqCst);
        // Every node converges on what the log holds after the deletion — the posts that
        // came after it, never the old text — and a node loading the room afresh agrees.
        let fresh = gateway(&redis);
        let mut views = Vec::new();
        let agreed = wait_until(Duration::from_secs(10), || {
            views = [&a, &b, &fresh].map(|gw| view(gw, &room)).to_vec();
            views.iter().all(|v| v == &views[2])
        });
        assert!(agreed, "round {round}: nodes disagree: {views:?}");
        if let Some((text, _)) = &views[2] {
            assert_eq!(
                text, "",
                "round {round}: the deleted text is back: {views:?}"
            );
        }
    }
    println!("posts refused as written to a deleted room: {refused}");
}

#[test]
fn a_node_that_missed_the_deletion_cannot_write_into_the_next_room() {
    let redis = RedisServer::start();
    let (a, b) = (gateway(&redis), gateway(&redis));
    let room = unique_room("delete-missed");
    assert_eq!(post(&a, &room, &fresh_update(Some("old;"), None)), 200);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut on_b = rt
        .block_on(Follower::connect(&format!("{}/{room}", b.ws_url())))
        .unwrap();
    assert!(rt.block_on(on_b.wait_text(Duration::from_secs(10), |t| t == "old;")));

    // The room is deleted and b never hears of it (its delete message is lost): the
    // `DELETE` script's effect on the keys, without the publish.
    let tag = format!("yws:{{{room}}}");
    let keys: Vec<String> = ["log", "snap", "meta", "aw", "lease", "cb"]
        .iter()
        .map(|k| format!("{tag}:{k}"))
        .collect();
    let mut del = vec!["DEL"];
    del.extend(keys.iter().map(String::as_str));
    redis.cli(&del).unwrap();
    redis.cli(&["INCR", &format!("{tag}:gen")]).unwrap();

    // b's stale copy cannot write into the new room: refused, its clients closed (4404).
    assert_eq!(post(&b, &room, &fresh_update(None, Some("stale"))), 409);
    assert_eq!(rt.block_on(ws::close_code(&mut on_b.socket)), Some(4404));
    assert!(
        b.wait_for_log(
            "the room was deleted since it loaded here",
            Duration::from_secs(5)
        ),
        "no log line"
    );
    // a missed it too (it loaded the room for the first post): refused once, then its next
    // write loads the room that followed the deletion, which starts empty.
    assert_eq!(view(&b, &room), None);
    assert_eq!(post(&a, &room, &fresh_update(Some("new;"), None)), 409);
    assert_eq!(post(&a, &room, &fresh_update(Some("new;"), None)), 200);
    let expected = Some(("new;".to_string(), Vec::new()));
    assert!(wait_until(Duration::from_secs(10), || view(&b, &room) == expected));
    assert_eq!(view(&a, &room), expected);
}
