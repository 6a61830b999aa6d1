//! CI smoke of `yws-load` against real gateways, so the load tool keeps working.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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
