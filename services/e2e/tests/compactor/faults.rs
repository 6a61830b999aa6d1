//! Compactors that die: a crash at each fault point loses nothing and is finished by another
//! replica, and compactors killed in a loop while clients edit lose nothing either.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;
use yws_e2e::docs::{self, same_state, Author};
use yws_e2e::peer::Peer;
use yws_e2e::process::{Service, ServiceBuilder};
use yws_e2e::redis::RedisServer;
use yws_e2e::redis_keys::{now_ms, RedisKeys};
use yws_e2e::{interop, unique_room};

use crate::support::{
    compactor, gateway, runtime, small_edits, wait_fully_compacted, Counts, PREFIX, SYNC_LIMIT,
    WAIT,
};

/// Kills a compactor at `point` (via `YWS_COMPACTOR_FAULT`, which aborts the process) in a
/// room of 300 entries read in pages of 50, checks nothing was lost, and lets a second
/// compactor take over and finish.
fn crash_at(point: &str) {
    let redis = RedisServer::start();
    let mut direct = RedisKeys::connect(redis.port, PREFIX);
    let room = unique_room(point);
    let keys = direct.keys(&room);
    let author = Author::new(401);
    let updates = small_edits(&author);
    let mut last_id = String::new();
    for u in &updates {
        last_id = direct.append(&room, u);
    }
    direct.schedule(&room, now_ms());
    let paged = |b: ServiceBuilder| b.env("YWS__COMPACTOR__PAGE_ENTRIES", 50);

    let mut doomed = paged(compactor(&redis))
        .env("YWS_COMPACTOR_FAULT", point)
        .spawn();
    let status = doomed
        .wait_exit(WAIT)
        .expect("the compactor dies at the fault point");
    assert_eq!(status.signal(), Some(6), "abort(): {status:?}");
    // The log reader thread may still be draining the pipe when the exit is seen.
    assert!(doomed.wait_for_log("aborting at fault point", Duration::from_secs(5)));

    // Nothing lost: snapshot + remaining log hold every update.
    let stored = direct.stored(&room);
    same_state(&stored.doc(), &author.doc).expect("snapshot + log after the crash");
    let snap = &stored.snapshot;
    let (expect_upto, expect_len) = match point {
        "before_write" => (None, 300),
        "after_write" => (Some(last_id.as_str()), 300),
        "during_trim" => (Some(last_id.as_str()), 250),
        "after_trim" => (Some(last_id.as_str()), 0),
        other => panic!("unknown point {other}"),
    };
    assert_eq!(snap.upto.as_deref(), expect_upto, "snapshot coverage");
    assert_eq!(direct.log_len(&room), expect_len, "log after the crash");
    assert!(
        direct.meta(&room, "claim").is_some(),
        "the dead replica's claim remains"
    );
    assert!(direct.exists(&keys.lease), "its lease has not expired yet");
    let rt = runtime();
    let gw = gateway(&redis).spawn();
    rt.block_on(async {
        let (joiner, _) = Peer::join(&format!("{}/{room}", gw.ws_url()), SYNC_LIMIT).await;
        same_state(&joiner.doc, &author.doc).expect("a joiner right after the crash");
        joiner.close().await;
    });

    let rescuer = paged(compactor(&redis)).spawn();
    let mut counts = Counts::default();
    let finished = direct.wait_until(WAIT, |s| {
        counts = Counts::of(&rescuer);
        counts.ok + counts.nothing >= 1 && s.log_len(&room) == 0 && s.meta(&room, "claim").is_none()
    });
    assert!(finished, "the rescuer finished the task: {counts:?}");
    wait_fully_compacted(&mut direct, &room, &author.doc, Duration::from_secs(1));
    counts.assert_clean();
    assert_eq!(
        counts.takeovers, 1,
        "the dead replica held a lease: {counts:?}"
    );
    if point == "before_write" {
        assert_eq!((counts.ok, counts.entries_merged), (1, 300), "{counts:?}");
    } else {
        // The snapshot was already written: only the trim is left, and the empty log goes.
        assert_eq!(
            (counts.nothing, counts.entries_merged),
            (1, 0),
            "{counts:?}"
        );
    }
    assert_eq!(
        direct.snapshot(&room).upto.as_deref(),
        Some(last_id.as_str())
    );
    rt.block_on(async {
        let (joiner, _) = Peer::join(&format!("{}/{room}", gw.ws_url()), SYNC_LIMIT).await;
        same_state(&joiner.doc, &author.doc).expect("a joiner after the takeover");
        joiner.close().await;
    });
}

#[test]
fn crash_before_write_loses_nothing_and_is_taken_over() {
    crash_at("before_write");
}

#[test]
fn crash_after_write_loses_nothing_and_is_taken_over() {
    crash_at("after_write");
}

#[test]
fn crash_during_trim_loses_nothing_and_is_taken_over() {
    crash_at("during_trim");
}

#[test]
fn crash_after_trim_loses_nothing_and_is_taken_over() {
    crash_at("after_trim");
}

/// JSON with every number as f64 (yrs and Yjs may encode the same integer differently).
fn normalized(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Number(n) => serde_json::json!(n.as_f64()),
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), normalized(v))).collect())
        }
        other => other.clone(),
    }
}

/// A compactor that works in small steps with short leases, so kills land mid-task and
/// tasks are taken over within 2 s.
fn brisk_compactor(redis: &RedisServer) -> ServiceBuilder {
    compactor(redis)
        .env("YWS__COMPACTOR__POLL_INTERVAL_MS", 50)
        .env("YWS__COMPACTOR__COMPACT_AFTER_MS", 300)
        .env("YWS__COMPACTOR__CLEANUP_AFTER_MS", 1000)
        .env("YWS__COMPACTOR__PAGE_ENTRIES", 20)
        .env("YWS__COMPACTOR__LEASE_MS", 2000)
        .env("YWS__REDIS__COMMAND_TIMEOUT_MS", 500)
}

#[test]
fn compactors_killed_in_a_loop_while_clients_edit_lose_nothing() {
    let redis = RedisServer::start();
    let gateways: Vec<Service> = (0..2)
        .map(|_| {
            gateway(&redis)
                .env("YWS__REDIS__COMPACT_AFTER_MS", 300)
                .env("YWS__REDIS__COMPACT_MAX_ENTRIES", 100)
                .spawn()
        })
        .collect();
    let urls: Vec<String> = gateways.iter().map(Service::ws_url).collect();
    let room = unique_room("killloop");
    let scenario = {
        let (urls, room) = (urls.clone(), room.clone());
        std::thread::spawn(move || {
            interop::run(
                "edit-loop",
                &urls,
                &[
                    "--room",
                    &room,
                    "--duration-ms",
                    "15000",
                    "--timeout-ms",
                    "60000",
                ],
            )
        })
    };
    // One compactor at a time; every other one dies at a fault point, the rest are SIGKILLed
    // after 0.8–2 s.
    let faults = [
        None,
        Some("before_write"),
        None,
        Some("after_write"),
        None,
        Some("during_trim"),
        None,
        Some("after_trim"),
    ];
    let mut seed = now_ms();
    let (mut lives, mut aborted, mut killed, mut takeovers) = (0usize, 0, 0, 0);
    while !scenario.is_finished() {
        let mut builder = brisk_compactor(&redis);
        if let Some(point) = faults[lives % faults.len()] {
            builder = builder.env("YWS_COMPACTOR_FAULT", point);
        }
        let mut c = builder.spawn();
        lives += 1;
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let life = Duration::from_millis(800 + (seed >> 33) % 1200);
        match c.wait_exit(life) {
            Some(status) => {
                assert_eq!(
                    status.signal(),
                    Some(6),
                    "only fault points end a compactor"
                );
                aborted += 1;
            }
            None => {
                c.kill();
                killed += 1;
            }
        }
        takeovers += c.logs().matches("taking over a task").count();
    }
    let verdict = scenario.join().expect("scenario thread");
    assert!(
        verdict.ok(),
        "edit-loop failed: {}\n{}",
        verdict.json,
        verdict.stderr
    );
    let expected = normalized(&verdict.json["final"]);

    // A clean compactor finishes whatever the dead ones left.
    let clean = brisk_compactor(&redis).spawn();
    let mut direct = RedisKeys::connect(redis.port, PREFIX);
    let mut last = String::new();
    let done = direct.wait_until(WAIT, |s| {
        let stored = s.stored(&room);
        let Some(doc) = &stored.snapshot.doc else {
            return false;
        };
        let got = normalized(&docs::content(&docs::doc_from(doc)));
        last = format!(
            "{} log entries, {} of {} markers in the snapshot",
            stored.entries.len(),
            got["markers"].as_array().map_or(0, Vec::len),
            expected["markers"].as_array().map_or(0, Vec::len)
        );
        stored.entries.is_empty() && got == expected
    });
    assert!(
        done,
        "the snapshot never matched the converged document: {last}"
    );
    takeovers += clean.logs().matches("taking over a task").count();
    Counts::of(&clean).assert_clean();
    let snapshot = docs::doc_from(&direct.snapshot(&room).doc.expect("snapshot"));
    let g3 = gateway(&redis).spawn();
    runtime().block_on(async {
        let (joiner, _) = Peer::join(&format!("{}/{room}", g3.ws_url()), SYNC_LIMIT).await;
        same_state(&joiner.doc, &snapshot).expect("a joiner holds exactly the snapshot");
        joiner.close().await;
    });
    println!(
        "edits {} ({} markers); {lives} compactors: {aborted} aborted at fault points, {killed} SIGKILLed; {takeovers} takeovers",
        verdict.json["edits"], verdict.json["markers"]
    );
    assert!(aborted >= 1, "at least one compactor died mid-task");
    assert!(takeovers >= 1, "a task of a dead compactor was taken over");
}
