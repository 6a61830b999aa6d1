//! Redis Cluster topology changes under live rooms: when a room's slot migrates to another
//! master, the old owner ends the slot's sharded subscriptions (`SUNSUBSCRIBE` pushes). Each
//! gateway polls the room's log meanwhile, subscribes again (now on the new owner) and live
//! delivery goes on — with the convergence watchdog off, so the renewal alone is tested.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic with a message is a test failure"
)]

use std::time::{Duration, Instant};
use yws_e2e::process::{Service, ServiceBuilder};
use yws_e2e::redis::RedisCluster;
use yws_e2e::ws::Follower;
use yws_e2e::{http, interop, unique_room, wait_until};

const WITHOUT_LIVE: &str = "yws_redis_rooms_without_live_delivery";

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The tests run one at a time (each starts a Redis Cluster and gateways on a small machine).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn gateway(cluster: &RedisCluster) -> Service {
    ServiceBuilder::gateway()
        .env("REDIS_CLUSTER_NODES", cluster.seeds())
        .env("YWS__REDIS__WATCHDOG_INTERVAL_MS", 0)
        .spawn()
}

#[test]
fn a_room_whose_slot_migrates_keeps_live_delivery_on_every_node() {
    let _serial = serial();
    let cluster = RedisCluster::start();
    let (a, b) = (gateway(&cluster), gateway(&cluster));
    let room = unique_room("migrate");
    let text = interop::write_doc(&a.ws_url(), &room, "before; ");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut followers: Vec<Follower> = [&a, &b]
        .iter()
        .map(|gw| {
            rt.block_on(Follower::connect(&format!("{}/{room}", gw.ws_url())))
                .unwrap()
        })
        .collect();
    for f in &mut followers {
        assert!(rt.block_on(f.wait_text(Duration::from_secs(10), |t| t == text)));
    }

    let log = format!("yws:{{{room}}}:log");
    let to = (cluster.owner_of(&log) + 1) % cluster.nodes.len();
    cluster.move_slot_of(&log, to);
    assert_eq!(cluster.owner_of(&log), to);
    for gw in [&a, &b] {
        assert!(
            gw.wait_for_log("ended the room's subscription", Duration::from_secs(10)),
            "{}: the dropped subscription went unnoticed",
            gw.addr
        );
        assert!(
            gw.wait_for_log("room resubscribed", Duration::from_secs(15)),
            "{}: not resubscribed",
            gw.addr
        );
        assert!(wait_until(Duration::from_secs(5), || {
            http::metric(gw.addr, WITHOUT_LIVE) == 0.0
        }));
    }
    // Edits on either node reach the other one live, through the new owner.
    let text = interop::write_doc(&a.ws_url(), &room, "after a; ");
    let text_b = interop::write_doc(&b.ws_url(), &room, "after b; ");
    assert!(text_b.starts_with(&text));
    for f in &mut followers {
        let ok = rt.block_on(f.wait_text(Duration::from_secs(10), |t| t == text_b));
        assert!(ok, "expected {text_b:?}, the node delivered {:?}", f.text());
    }
    // `/readyz` copies the gauge every second.
    assert!(wait_until(Duration::from_secs(5), || {
        http::get(a.addr, "/readyz").text() == "ready\n"
    }));
}

#[test]
fn a_master_failover_moves_live_delivery_to_the_promoted_replica() {
    let _serial = serial();
    let mut cluster = RedisCluster::start_with_replicas(1);
    // The seeds are the three masters, as a user would configure them.
    let masters: Vec<String> = cluster.nodes[..3]
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let gateway = || {
        ServiceBuilder::gateway()
            .env("REDIS_CLUSTER_NODES", masters.join(","))
            .env("YWS__REDIS__WATCHDOG_INTERVAL_MS", 0)
            .spawn()
    };
    let (a, b) = (gateway(), gateway());
    let room = unique_room("failover");
    let text = interop::write_doc(&a.ws_url(), &room, "before; ");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut followers: Vec<Follower> = [&a, &b]
        .iter()
        .map(|gw| {
            rt.block_on(Follower::connect(&format!("{}/{room}", gw.ws_url())))
                .unwrap()
        })
        .collect();
    for f in &mut followers {
        assert!(rt.block_on(f.wait_text(Duration::from_secs(10), |t| t == text)));
    }

    // SIGKILL the room's master; its replica takes over.
    let log = format!("yws:{{{room}}}:log");
    let owner = cluster.owner_of(&log);
    let killed = Instant::now();
    cluster.nodes[owner].stop();
    assert!(
        wait_until(Duration::from_secs(30), || cluster.failed_over(&log, owner)),
        "no replica took over"
    );
    let promoted = Instant::now();
    println!(
        "replica promoted {:.1} s after the kill",
        (promoted - killed).as_secs_f64()
    );

    // Edits on either node reach the other one live, through the promoted master.
    interop::write_doc_when_possible(&a.ws_url(), &room, "after a; ", Duration::from_secs(30));
    interop::write_doc_when_possible(&b.ws_url(), &room, "after b; ", Duration::from_secs(30));
    // Both edits, in the same order on both nodes (b may have written before a's arrived).
    let both = |t: &str| t.len() == 26 && t.contains("after a; ") && t.contains("after b; ");
    for (f, gw) in followers.iter_mut().zip([&a, &b]) {
        let ok = rt.block_on(f.wait_text(Duration::from_secs(20), both));
        assert!(ok, "{}: delivered {:?}", gw.addr, f.text());
    }
    assert_eq!(followers[0].text(), followers[1].text());
    println!(
        "both nodes delivered both edits {:.1} s after the promotion",
        promoted.elapsed().as_secs_f64()
    );
    for gw in [&a, &b] {
        assert!(wait_until(Duration::from_secs(10), || {
            http::metric(gw.addr, WITHOUT_LIVE) == 0.0
        }));
        assert_eq!(http::get(gw.addr, "/readyz").status, 200);
        for line in gw.logs().lines().filter(|l| {
            ["resubscri", "replaced", "live delivery", "pub/sub"]
                .iter()
                .any(|k| l.contains(k))
        }) {
            println!("{}: {line}", gw.addr);
        }
    }
}

/// A room whose log lives on master `node` of `cluster`.
fn room_on(cluster: &RedisCluster, node: usize, prefix: &str) -> String {
    loop {
        let room = unique_room(prefix);
        if cluster.owner_of(&format!("yws:{{{room}}}:log")) == node {
            return room;
        }
    }
}

/// Waits `seconds` (the npm clients connect and start editing meanwhile).
fn pause(seconds: u64) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async { tokio::time::sleep(Duration::from_secs(seconds)).await });
}

fn edit_loop(gateways: [&Service; 2], room: &str, seconds: u64) -> interop::Running {
    let urls: Vec<String> = gateways.iter().map(|g| g.ws_url()).collect();
    let duration = (seconds * 1000).to_string();
    interop::spawn(
        "edit-loop",
        &urls,
        &[
            "--room",
            room,
            "--duration-ms",
            &duration,
            "--timeout-ms",
            "90000",
        ],
    )
}

fn assert_edit_loop_passed(running: interop::Running) {
    let verdict = running.finish(Duration::from_secs(100));
    assert!(
        verdict.ok(),
        "edit-loop failed: {}\n{}",
        verdict.json,
        verdict.stderr
    );
}

#[test]
fn resharding_under_edits_loses_nothing() {
    let _serial = serial();
    let cluster = RedisCluster::start();
    let (a, b) = (gateway(&cluster), gateway(&cluster));
    // Three npm clients edit one room through both gateways while its slot, and the slot of
    // a second room edited meanwhile, move to other masters.
    let rooms = [
        room_on(&cluster, 0, "reshard"),
        room_on(&cluster, 1, "reshard"),
    ];
    let loops: Vec<interop::Running> = rooms.iter().map(|r| edit_loop([&a, &b], r, 10)).collect();
    pause(3);
    cluster.move_slot_of(&format!("yws:{{{}}}:log", rooms[0]), 1);
    cluster.move_slot_of(&format!("yws:{{{}}}:log", rooms[1]), 2);
    for running in loops {
        assert_edit_loop_passed(running);
    }
    for gw in [&a, &b] {
        assert!(wait_until(Duration::from_secs(5), || {
            http::metric(gw.addr, WITHOUT_LIVE) == 0.0
        }));
    }
}

#[test]
fn killing_the_first_seed_master_under_edits_loses_nothing() {
    let _serial = serial();
    let mut cluster = RedisCluster::start_with_replicas(1);
    let masters: Vec<String> = cluster.nodes[..3]
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let gateway = || {
        ServiceBuilder::gateway()
            .env("REDIS_CLUSTER_NODES", masters.join(","))
            .env("YWS__REDIS__WATCHDOG_INTERVAL_MS", 0)
            .spawn()
    };
    let (a, b) = (gateway(), gateway());
    // The room lives on the first seed, the node a gateway would ask first.
    let room = room_on(&cluster, 0, "first-seed");
    let running = edit_loop([&a, &b], &room, 15);
    pause(3);
    cluster.nodes[0].stop();
    assert_edit_loop_passed(running);
    assert!(cluster.failed_over(&format!("yws:{{{room}}}:log"), 0));
    // Both gateways serve the same document (the edit-loop's late joiner checked one).
    let path = format!(
        "/api/rooms/{room}?objects=%7B%22text%22%3A%22Text%22%2C%22markers%22%3A%22Array%22%2C%22map%22%3A%22Map%22%7D"
    );
    let (on_a, on_b) = (http::get(a.addr, &path), http::get(b.addr, &path));
    assert_eq!(on_a.status, 200, "{}", on_a.text());
    assert_eq!(on_a.text(), on_b.text());
}
