//! CI smoke of `yws-load` against real gateways, so the load tool keeps working.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic with a message is a test failure"
)]

use std::process::Command;
use yws_e2e::process::{binary, ServiceBuilder};
use yws_e2e::redis::RedisServer;
use yws_e2e::repo_root;

fn smoke(urls: &[String], report: &str) -> serde_json::Value {
    let out = std::env::temp_dir().join(format!("yws-load-{report}-{}.json", std::process::id()));
    let status = Command::new(binary("yws-load"))
        .arg("--scenario")
        .arg(repo_root().join("loadtest/scenarios/smoke.toml"))
        .arg("--urls")
        .arg(urls.join(","))
        .arg("--json")
        .arg(&out)
        .arg("--quiet")
        .status()
        .expect("run yws-load");
    assert!(status.success(), "yws-load smoke failed: {status:?}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(report["ok"], true, "{}", report["problems"]);
    let step = report["steps"][0].clone();
    let convergence = &step["convergence"];
    assert_eq!(
        convergence["rooms"], convergence["converged_rooms"],
        "{convergence}"
    );
    assert_eq!(convergence["missing"], 0, "{convergence}");
    step
}

#[test]
fn load_smoke_against_a_standalone_gateway() {
    let gw = ServiceBuilder::gateway().spawn();
    let report = smoke(&[gw.ws_url()], "standalone");
    assert!(
        report["counters"]["deliveries"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
}

#[test]
fn load_smoke_across_two_gateways() {
    let redis = RedisServer::start();
    let a = ServiceBuilder::gateway()
        .env("REDIS_URL", redis.url())
        .spawn();
    let b = ServiceBuilder::gateway()
        .env("REDIS_URL", redis.url())
        .spawn();
    let report = smoke(&[a.ws_url(), b.ws_url()], "cluster");
    assert!(
        report["counters"]["deliveries"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
}

/// `--seed-updates`: the seed document reaches the room's Redis log as one entry per update
/// (not as one sync step 2), and a later joiner receives all of it.
#[test]
fn a_split_seed_is_logged_as_one_entry_per_update() {
    let redis = RedisServer::start();
    let gw = ServiceBuilder::gateway()
        .env("REDIS_URL", redis.url())
        .spawn();
    let prefix = format!("e2e-seed-{}", std::process::id());
    let out = std::env::temp_dir().join(format!("yws-load-{prefix}.json"));
    let status = Command::new(binary("yws-load"))
        .args([
            "--urls",
            &gw.ws_url(),
            "--rooms",
            "1",
            "--clients-per-room",
            "2",
        ])
        .args(["--rate", "0", "--duration", "0", "--quiet"])
        .args(["--seed-bytes", "262144", "--seed-updates", "64"])
        .args(["--room-prefix", &prefix, "--json"])
        .arg(&out)
        .status()
        .expect("run yws-load");
    assert!(status.success(), "yws-load failed: {status:?}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(report["ok"], true, "{}", report["problems"]);
    let step = &report["steps"][0];
    assert_eq!(step["convergence"]["converged_rooms"], 1, "{step}");
    assert!(
        step["counters"]["step2_bytes_max"].as_u64().unwrap_or(0) >= 256 * 1024,
        "a joiner got the whole seed: {}",
        step["counters"]
    );
    let log = redis
        .cli(&["XLEN", &format!("yws:{{{prefix}-0}}:log")])
        .expect("redis-cli XLEN");
    assert_eq!(log.trim(), "64", "one log entry per seed update");
}
