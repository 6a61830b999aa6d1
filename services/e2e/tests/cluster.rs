//! Cluster mode end to end: several real `yws-gateway` processes sharing rooms through one real
//! `redis-server` (and, once, a local 3-master Redis Cluster), driven by the real npm
//! `y-websocket` client (`tests/interop`) and raw sockets. Gateways are killed, restarted and
//! cut off from Redis while clients work; Redis is poisoned; every wait has a deadline.
//!
//! The tests run one at a time (they start many processes on a small machine).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic with a message is a test failure"
)]

use std::os::unix::process::ExitStatusExt;
use std::sync::Mutex;
use std::time::Duration;
use yws_e2e::process::{Service, ServiceBuilder};
use yws_e2e::redis::{RedisCluster, RedisServer};
use yws_e2e::ws::Follower;
use yws_e2e::{http, interop, unique_room, wait_until, ws};
use yws_protocol::encode;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A gateway builder in cluster mode on `redis`.
fn gateway(redis: &RedisServer) -> ServiceBuilder {
    ServiceBuilder::gateway().env("REDIS_URL", redis.url())
}

fn urls(gateways: &[&Service]) -> Vec<String> {
    gateways.iter().map(|g| g.ws_url()).collect()
}

fn readyz(gw: &Service) -> u16 {
    http::get(gw.addr, "/readyz").status
}

/// A [`Follower`] of `room` on `gw` (keeps the room loaded there and sees what it delivers).
fn follow(rt: &tokio::runtime::Runtime, gw: &Service, room: &str) -> Follower {
    let url = format!("{}/{room}", gw.ws_url());
    rt.block_on(Follower::connect(&url))
        .expect("connect a follower")
}

/// Waits (10 s) until `follower`'s node delivered exactly `text`.
fn delivered(rt: &tokio::runtime::Runtime, follower: &mut Follower, text: &str) {
    let ok = rt.block_on(follower.wait_text(Duration::from_secs(10), |t| t == text));
    assert!(
        ok,
        "expected {text:?}, the node delivered {:?}",
        follower.text()
    );
}

fn log_key(prefix: &str, room: &str) -> String {
    format!("{prefix}:{{{room}}}:log")
}

fn xlen(redis: &RedisServer, key: &str) -> u64 {
    redis
        .cli(&["XLEN", key])
        .and_then(|s| s.trim().parse().ok())
        .expect("XLEN")
}

fn assert_sigkilled(gw: &mut Service) {
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("the killed gateway is gone");
    assert_eq!(status.signal(), Some(9), "{status:?}");
}

#[test]
fn stock_client_scenarios_pass_across_two_gateways() {
    let _serial = serial();
    let redis = RedisServer::start();
    let a = gateway(&redis).spawn();
    let b = gateway(&redis).spawn();
    let ab = urls(&[&a, &b]);
    for scenario in [
        "converge",
        "late-join",
        "awareness",
        "offline",
        "echo",
        "big-update",
    ] {
        let room = unique_room(scenario);
        let verdict = interop::expect_pass(scenario, &ab, &["--room", &room]);
        println!("{verdict}");
        if scenario != "awareness" {
            assert!(
                xlen(&redis, &log_key("yws", &room)) > 0,
                "{scenario}: updates went through the room's stream"
            );
        } else {
            // B (node b) saw A's state (node a), a raw client on node a got B's state in its
            // query reply, and B saw A's removal as a frame sent by the servers.
            assert!(verdict["awareness_ms"].is_number(), "{verdict}");
            assert!(
                verdict["query_reply_clients"].as_u64() >= Some(2),
                "{verdict}"
            );
            assert_eq!(
                verdict["removal_frame"], "awareness null state",
                "{verdict}"
            );
        }
    }
    // The single raw client of `echo` only talks to the first URL: check node b as well.
    interop::expect_pass("echo", &[b.ws_url()], &["--room", &unique_room("echo-b")]);
    for gw in [&a, &b] {
        let fanout = http::metric(gw.addr, "yws_gateway_fanout_latency_seconds_count");
        assert!(fanout > 0.0, "{} applied other nodes' updates", gw.addr);
    }
}

#[test]
fn content_survives_every_gateway_restarting() {
    let _serial = serial();
    let redis = RedisServer::start();
    let mut a = gateway(&redis).spawn();
    let mut b = gateway(&redis).spawn();
    let room = unique_room("restart");
    let text = interop::write_doc(&a.ws_url(), &room, "written through node a; ");
    assert_eq!(text, "written through node a; ");
    // Everyone left; a late joiner on the other node gets it.
    interop::check_doc(&b.ws_url(), &room, &text);

    for gw in [&mut a, &mut b] {
        gw.terminate();
        let status = gw
            .wait_exit(Duration::from_secs(15))
            .expect("exits after SIGTERM");
        assert!(status.success(), "{status:?}");
    }
    let c = gateway(&redis).spawn();
    let d = gateway(&redis).spawn();
    interop::check_doc(&c.ws_url(), &room, &text);
    interop::check_doc(&d.ws_url(), &room, &text);
    // And the fresh nodes share the room live.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut on_c = follow(&rt, &c, &room);
    let text = interop::write_doc(&d.ws_url(), &room, "then through node d");
    assert_eq!(text, "written through node a; then through node d");
    delivered(&rt, &mut on_c, &text);
    interop::check_doc(&c.ws_url(), &room, &text);
}

#[test]
fn awareness_of_a_killed_gateway_disappears_from_the_other() {
    let _serial = serial();
    let redis = RedisServer::start();
    let timeout = ("YWS__ROOMS__AWARENESS_TIMEOUT_MS", 3000);
    let mut a = gateway(&redis).env(timeout.0, timeout.1).spawn();
    let b = gateway(&redis).env(timeout.0, timeout.1).spawn();
    // A (node a) renews its state every 250 ms; B (node b) must keep it for 7 s — longer than
    // timeout + maintenance interval, so renewals demonstrably cross nodes — and lose it once
    // node a is SIGKILLed (no goodbye from anyone).
    let verdict = interop::expect_pass(
        "awareness-failover",
        &urls(&[&a, &b]),
        &[
            "--room",
            &unique_room("aw-kill"),
            "--kill-pid",
            &a.pid().to_string(),
            "--hold-ms",
            "7000",
            "--timeout-ms",
            "60000",
        ],
    );
    println!("{verdict}");
    assert_sigkilled(&mut a);
    assert!(verdict["b_saw_renewal"].as_u64() >= Some(10), "{verdict}");
    assert_eq!(
        verdict["removal_frame"], "awareness null state",
        "{verdict}"
    );
    assert_eq!(readyz(&b), 200);
}

#[test]
fn sigkill_of_a_gateway_mid_edit_loses_nothing() {
    let _serial = serial();
    let redis = RedisServer::start();
    let mut a = gateway(&redis).spawn();
    let b = gateway(&redis).spawn();
    let room = unique_room("failover");
    let verdict = interop::expect_pass(
        "failover",
        &urls(&[&a, &b]),
        &[
            "--room",
            &room,
            "--kill-pid",
            &a.pid().to_string(),
            "--timeout-ms",
            "60000",
        ],
    );
    println!("{verdict}");
    assert_sigkilled(&mut a);
    assert!(
        verdict["a_markers_while_disconnected"].as_u64() >= Some(1),
        "{verdict}"
    );
    // Everything both clients wrote is in Redis: a gateway that never saw the room loads it.
    let text = verdict["text"].as_str().expect("failover reports text");
    let fresh = gateway(&redis).spawn();
    interop::check_doc(&fresh.ws_url(), &room, text);
}

#[test]
fn redis_restart_closes_clients_with_1013_and_recovers() {
    let _serial = serial();
    let mut redis = RedisServer::start();
    // Every write is fsynced before Redis answers, so whatever a client saw echoed survives
    // the SIGKILL below.
    redis
        .cli(&["CONFIG", "SET", "appendfsync", "always"])
        .unwrap();
    let a = gateway(&redis).spawn();
    let b = gateway(&redis).spawn();
    let before = unique_room("before-outage");
    let before_text = interop::write_doc(&a.ws_url(), &before, "written before the outage");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let raw_room = unique_room("raw-outage");
    let mut raw = Vec::new();
    for gw in [&a, &b] {
        let url = format!("{}/{raw_room}", gw.ws_url());
        let mut socket = rt.block_on(ws::connect(&url)).unwrap();
        rt.block_on(ws::next_binary(&mut socket))
            .expect("sync step 1");
        raw.push(socket);
    }
    let outage_room = unique_room("outage");
    let outage = interop::spawn(
        "outage",
        &urls(&[&a, &b]),
        &[
            "--room",
            &outage_room,
            "--expect-close",
            "1013",
            "--timeout-ms",
            "90000",
        ],
    );
    assert!(
        outage.wait_for_stderr("outage: clients ready", Duration::from_secs(30)),
        "the stock clients did not get ready"
    );
    let closes: Vec<_> = raw
        .into_iter()
        .map(|mut s| rt.spawn(async move { ws::close_code(&mut s).await }))
        .collect();

    redis.stop();
    assert!(
        wait_until(Duration::from_secs(10), || readyz(&a) == 503
            && readyz(&b) == 503),
        "/readyz did not turn 503"
    );
    for close in closes {
        assert_eq!(rt.block_on(close).unwrap(), Some(1013));
    }
    match rt.block_on(ws::connect(&format!("{}/{raw_room}", a.ws_url()))) {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("expected HTTP 503 while Redis is down, got {other:?}"),
    }
    assert_eq!(http::metric(a.addr, "yws_redis_up"), 0.0);

    redis.restart();
    assert!(
        wait_until(Duration::from_secs(20), || readyz(&a) == 200
            && readyz(&b) == 200),
        "/readyz did not come back"
    );
    let verdict = outage.finish(Duration::from_secs(90));
    assert!(
        verdict.ok(),
        "outage scenario failed (exit {}):\n{}\n{}",
        verdict.code,
        verdict.json,
        verdict.stderr
    );
    println!("{}", verdict.json);
    let outage_text = verdict.json["text"].as_str().unwrap().to_string();

    // Written before the stop: in the AOF. Written after the restart: in the new log.
    interop::check_doc(&b.ws_url(), &before, &before_text);
    interop::check_doc(&a.ws_url(), &outage_room, &outage_text);
    let ba = urls(&[&b, &a]);
    for scenario in ["converge", "late-join"] {
        interop::expect_pass(scenario, &ba, &["--room", &unique_room(scenario)]);
    }
    assert_eq!(http::metric(a.addr, "yws_redis_up"), 1.0);
}

#[test]
fn redis_outage_closes_the_clients_of_every_room_promptly() {
    let _serial = serial();
    let mut redis = RedisServer::start();
    let a = gateway(&redis).spawn();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut raw = Vec::new();
    for i in 0..8 {
        let url = format!("{}/{}", a.ws_url(), unique_room(&format!("evict{i}")));
        let mut socket = rt.block_on(ws::connect(&url)).unwrap();
        rt.block_on(ws::next_binary(&mut socket))
            .expect("sync step 1");
        raw.push(socket);
    }
    redis.stop();
    assert!(
        wait_until(Duration::from_secs(10), || readyz(&a) == 503),
        "/readyz did not turn 503"
    );
    // Once the node knows Redis is gone, every client should hear so within the same generous
    // deadline (10 s in ws::close_code), however many rooms the node has loaded.
    let closes: Vec<_> = raw
        .into_iter()
        .map(|mut s| rt.spawn(async move { ws::close_code(&mut s).await }))
        .collect();
    let codes: Vec<Option<u16>> = closes
        .into_iter()
        .map(|c| rt.block_on(c).unwrap())
        .collect();
    assert!(
        codes.iter().all(|c| *c == Some(1013)),
        "close codes within 10 s after /readyz turned 503: {codes:?}"
    );
    redis.restart();
    assert!(
        wait_until(Duration::from_secs(10), || readyz(&a) == 200),
        "/readyz did not come back within 10 s after Redis did"
    );
}

#[test]
fn rooms_on_every_shard_of_a_redis_cluster() {
    let _serial = serial();
    let cluster = RedisCluster::start();
    let seeds = cluster.seeds();
    let a = ServiceBuilder::gateway()
        .env("REDIS_CLUSTER_NODES", &seeds)
        .spawn();
    let b = ServiceBuilder::gateway()
        .env("REDIS_CLUSTER_NODES", &seeds)
        .spawn();

    // Four rooms per master, chosen by the slot of their hash tag.
    let mut rooms: Vec<(String, usize)> = Vec::new();
    let mut per_node = [0usize; 3];
    for i in 0.. {
        let room = unique_room(&format!("shard{i}"));
        let owner = cluster.owner_of(&log_key("yws", &room));
        if per_node[owner] < 4 {
            per_node[owner] += 1;
            rooms.push((room, owner));
        }
        if rooms.len() == 12 {
            break;
        }
    }
    for (i, (room, _)) in rooms.iter().enumerate() {
        let order = if i % 2 == 0 { [&a, &b] } else { [&b, &a] };
        for scenario in ["converge", "late-join"] {
            interop::expect_pass(scenario, &urls(&order), &["--room", room]);
        }
    }
    for (i, node) in cluster.nodes.iter().enumerate() {
        let keys = node.cli(&["--scan", "--pattern", "yws:*:log"]).unwrap();
        println!(
            "node {i} (port {}): {} room logs",
            node.port,
            keys.lines().count()
        );
    }
    for (room, owner) in &rooms {
        let keys = cluster.nodes[*owner]
            .cli(&["--scan", "--pattern", "yws:*:log"])
            .unwrap();
        assert!(
            keys.lines().any(|k| k == log_key("yws", room)),
            "{room}'s log is not on node {owner}: {keys}"
        );
    }
}

#[test]
fn poison_in_the_log_and_on_the_channel_is_skipped() {
    let _serial = serial();
    let redis = RedisServer::start();
    let a = gateway(&redis).spawn();
    let b = gateway(&redis).spawn();
    let room = unique_room("poison");
    let (log, channel) = (log_key("yws", &room), format!("yws:{{{room}}}:ch"));
    interop::write_doc(&a.ws_url(), &room, "valid before; ");

    // Followers keep the room loaded (and subscribed) on both nodes meanwhile.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut followers = [follow(&rt, &a, &room), follow(&rt, &b, &room)];
    for f in &mut followers {
        delivered(&rt, f, "valid before; ");
    }
    for args in [
        &["XADD", &log, "*", "u", "garbage", "n", "x", "t", "0"][..],
        &["XADD", &log, "*", "foo", "bar"][..],
        &["PUBLISH", &channel, "junk"][..],
        // Well-formed header announcing an entry far ahead: the node reads the log to catch
        // up, through the poisoned entries.
        &["PUBLISH", &channel, "u1-0 99999999999999-0 x 0\ngarbage"][..],
    ] {
        redis.cli(args).expect("redis-cli");
    }
    let text = interop::write_doc(&b.ws_url(), &room, "valid after");
    assert_eq!(text, "valid before; valid after");
    // Both nodes still deliver live updates (node a got this one over the channel).
    for f in &mut followers {
        delivered(&rt, f, &text);
    }
    interop::check_doc(&a.ws_url(), &room, &text);
    interop::check_doc(&b.ws_url(), &room, &text);
    // A node that loads the room from the log skips the poisoned entries.
    let c = gateway(&redis).spawn();
    interop::check_doc(&c.ws_url(), &room, &text);

    for gw in [&a, &b, &c] {
        let metrics = http::get(gw.addr, "/metrics").text();
        let skipped: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with("yws_redis_entries_skipped_total"))
            .collect();
        println!("{}: {skipped:?}", gw.addr);
        let total = http::metric_sum(&metrics, "yws_redis_entries_skipped_total");
        assert!(total > 0.0, "{}: nothing skipped", gw.addr);
    }
    for gw in [&a, &b] {
        let junk = http::metric(
            gw.addr,
            "yws_redis_entries_skipped_total{reason=\"bad_message\"}",
        );
        assert!(junk > 0.0, "{}: the junk message was not counted", gw.addr);
    }
    let loaded = http::get(c.addr, "/metrics").text();
    for reason in ["reason=\"bad_update\"", "reason=\"no update\""] {
        let name = format!("yws_redis_entries_skipped_total{{{reason}}}");
        assert!(http::metric_sum(&loaded, &name) > 0.0, "{name}:\n{loaded}");
    }
    // The followers are still served.
    for f in &mut followers {
        rt.block_on(ws::send(&mut f.socket, encode::query_awareness()));
        assert!(rt.block_on(ws::next_binary(&mut f.socket)).is_some());
    }

    // An undecodable update from a client closes it (1007) and never reaches the stream.
    let len = xlen(&redis, &log);
    let mut bad = rt
        .block_on(ws::connect(&format!("{}/{room}", a.ws_url())))
        .unwrap();
    rt.block_on(ws::next_binary(&mut bad)).expect("sync step 1");
    rt.block_on(ws::send(&mut bad, encode::update(&[0xff; 16])));
    assert_eq!(rt.block_on(ws::close_code(&mut bad)), Some(1007));
    assert_eq!(xlen(&redis, &log), len);
    interop::check_doc(&b.ws_url(), &room, &text);
    for gw in [&a, &b, &c] {
        assert_eq!(http::get(gw.addr, "/healthz").status, 200);
    }
}

#[test]
fn a_corrupt_live_message_does_not_stop_live_delivery() {
    let _serial = serial();
    let redis = RedisServer::start();
    let a = gateway(&redis).spawn();
    let b = gateway(&redis).spawn();
    let room = unique_room("corrupt-live");
    let channel = format!("yws:{{{room}}}:ch");
    interop::write_doc(&a.ws_url(), &room, "one; ");
    // A follower keeps the room loaded (and live) on node a.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut on_a = follow(&rt, &a, &room);
    delivered(&rt, &mut on_a, "one; ");
    // A corrupt message that chains onto the room's last entry but names an id that is not
    // in the log and carries an undecodable update.
    let meta = format!("yws:{{{room}}}:meta");
    let last = redis.cli(&["HGET", &meta, "last"]).unwrap();
    let message = format!("u{} 99999999999999-0 x 0\ngarbage", last.trim());
    redis.cli(&["PUBLISH", &channel, &message]).unwrap();
    assert!(a.wait_for_log("could not be applied; skipped", Duration::from_secs(10)));
    // Node a must still apply what node b writes afterwards.
    let text = interop::write_doc(&b.ws_url(), &room, "two");
    assert_eq!(text, "one; two");
    delivered(&rt, &mut on_a, &text);
}

#[test]
fn prefixes_keep_deployments_apart() {
    let _serial = serial();
    let redis = RedisServer::start();
    let alpha = gateway(&redis).env("YWS_REDIS_PREFIX", "alpha").spawn();
    let beta = gateway(&redis).env("YWS_REDIS_PREFIX", "beta").spawn();
    let room = unique_room("shared-name");

    let beta2 = gateway(&redis).env("YWS_REDIS_PREFIX", "beta").spawn();
    // A follower keeps the room loaded on beta, so a leak over pub/sub would show there.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut on_beta = follow(&rt, &beta, &room);

    assert_eq!(
        interop::write_doc(&beta.ws_url(), &room, "beta's text; "),
        "beta's text; "
    );
    let alpha_text = interop::write_doc(&alpha.ws_url(), &room, "alpha's text");
    assert_eq!(alpha_text, "alpha's text", "alpha started empty");
    // Written after alpha's update and delivered to beta over the same pub/sub connection that
    // alpha's would have used: once it is there, anything leaked from alpha is there too.
    let beta_text = interop::write_doc(&beta2.ws_url(), &room, "more from beta");
    assert_eq!(beta_text, "beta's text; more from beta");
    delivered(&rt, &mut on_beta, &beta_text);
    interop::check_doc(&beta.ws_url(), &room, &beta_text);
    interop::check_doc(&alpha.ws_url(), &room, &alpha_text);
    // Another gateway with the same prefix shares alpha's rooms.
    let alpha2 = gateway(&redis).env("YWS_REDIS_PREFIX", "alpha").spawn();
    interop::check_doc(&alpha2.ws_url(), &room, &alpha_text);

    let scan = |pattern: &str| redis.cli(&["--scan", "--pattern", pattern]).unwrap();
    assert!(scan("alpha:*")
        .lines()
        .any(|k| k == log_key("alpha", &room)));
    assert!(scan("beta:*").lines().any(|k| k == log_key("beta", &room)));
    assert_eq!(scan("yws:*").trim(), "", "nothing under the default prefix");
}

/// `rediss://`: gateways reach Redis over TLS (a self-signed certificate, so `#insecure`).
#[test]
fn rediss_urls_connect_over_tls() {
    let _serial = serial();
    let dir = std::env::temp_dir().join(format!("yws-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("redis.crt"), dir.join("redis.key"));
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success());
    let (redis, tls_port) = RedisServer::start_with_extra_port(|tls_port| {
        [
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            cert.to_str().unwrap(),
            "--tls-key-file",
            key.to_str().unwrap(),
            "--tls-ca-cert-file",
            cert.to_str().unwrap(),
            "--tls-auth-clients",
            "no",
        ]
        .map(String::from)
        .to_vec()
    });
    let url = format!("rediss://127.0.0.1:{tls_port}/#insecure");
    let a = ServiceBuilder::gateway().env("REDIS_URL", &url).spawn();
    let b = ServiceBuilder::gateway().env("REDIS_URL", &url).spawn();
    let room = unique_room("tls");
    interop::expect_pass("converge", &urls(&[&a, &b]), &["--room", &room]);
    let log = redis.cli(&["EXISTS", &log_key("yws", &room)]).unwrap();
    assert_eq!(log.trim(), "1", "the room's log was written through TLS");
}
