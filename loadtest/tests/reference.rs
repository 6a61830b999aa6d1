//! Tiny loads against the real reference server (`@y/websocket-server`), started by each test
//! on a free loopback port. Skipped, with a message, when `loadtest/reference/node_modules`
//! has not been installed (`npm ci` there) or `node` is missing.

// Test helpers outside `#[test]` functions: unwrapping and printing the skip notice are fine.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods,
    reason = "helpers outside #[test]s: a panic with a message is a test failure; the skip notice is printed; tests may spawn: each test owns and awaits what it starts, and the runtime ends with it"
)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use yws_load::config::Flags;
use yws_load::report::Report;

fn server_js() -> Option<PathBuf> {
    let js = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("reference/node_modules/@y/websocket-server/src/server.js");
    if !js.exists() {
        println!(
            "SKIP: {} is missing; run `npm ci` in loadtest/reference",
            js.display()
        );
        return None;
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("SKIP: node is not installed");
        return None;
    }
    Some(js)
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn start(js: &PathBuf, port: u16) -> Child {
    let child = Command::new("node")
        .arg(js)
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the reference server did not listen on port {port}");
}

fn flags(port: u16) -> Flags {
    Flags {
        urls: Some(vec![format!("ws://127.0.0.1:{port}")]),
        rooms: Some(3),
        clients_per_room: Some(3),
        rate: Some(10.0),
        duration: Some(2.0),
        drain: Some(5.0),
        connect_timeout: Some(10.0),
        quiet: Some(true),
        ..Flags::default()
    }
}

async fn run(flags: Flags) -> Report {
    let settings = flags.resolve().expect("valid settings");
    yws_load::run::run(settings, CancellationToken::new())
        .await
        .expect("the run completes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_load_converges_with_every_delivery() {
    let Some(js) = server_js() else { return };
    let port = free_port();
    let server = start(&js, port).await;
    let pid = server.id().expect("running");
    let dir = tempfile::tempdir().unwrap();
    let report = run(Flags {
        awareness_rate: Some(2.0),
        server_pids: Some(vec![pid]),
        json: Some(dir.path().join("out/tiny.json")),
        ..flags(port)
    })
    .await;
    assert!(report.ok, "{:?}", report.problems);
    let step = &report.steps[0];
    assert_eq!(step.counters.synced_first, 9);
    assert!(step.counters.sent >= 90, "{:?}", step.counters);
    // Each update reaches the two other clients of its room.
    assert_eq!(step.counters.deliveries, 2 * step.counters.sent);
    assert_eq!(step.convergence.expected_deliveries, 2 * step.counters.sent);
    assert_eq!(step.convergence.converged_rooms, 3);
    assert!(step.latency.count > 0 && step.latency.p99_ms > 0.0);
    assert!(step.counters.awareness_received > 0);
    // The reference server echoes updates to their sender.
    assert_eq!(step.counters.echoes, step.counters.sent);
    let server = &step.servers[0];
    assert_eq!(server.pid, pid);
    assert!(server.samples.before.is_some_and(|s| s.rss_bytes > 0));
    assert!(step.server_cpu_ms_per_1k_deliveries.is_some());
    assert!(step.generator.cpu_run_s.is_some());
    assert!(!step.timeline.is_empty());
    let written = yws_load::write_outputs(&report).unwrap();
    assert_eq!(written.len(), 4, "{written:?}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/tiny.json")).unwrap()).unwrap();
    assert_eq!(json["ok"], true);
    assert!(
        std::fs::read_to_string(dir.path().join("out/tiny.latency.svg"))
            .unwrap()
            .starts_with("<svg")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_resync_and_converge_after_the_server_restarts() {
    let Some(js) = server_js() else { return };
    let port = free_port();
    let mut server = start(&js, port).await;
    let run = tokio::spawn(run(Flags {
        duration: Some(5.0),
        drain: Some(15.0),
        ..flags(port)
    }));
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    // The reference server keeps documents in memory only: after the restart the clients
    // must push their state back through sync step 2.
    server.kill().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _server = start(&js, port).await;
    let report = run.await.unwrap();
    let step = &report.steps[0];
    assert!(report.ok, "{:?} {:?}", report.problems, step.counters);
    assert!(step.counters.disconnects >= 9, "{:?}", step.counters);
    assert!(step.counters.resyncs >= 9, "{:?}", step.counters);
    assert_eq!(step.convergence.missing, 0);
    assert_eq!(step.convergence.converged_rooms, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joiners_receive_a_seeded_document() {
    let Some(js) = server_js() else { return };
    let port = free_port();
    let _server = start(&js, port).await;
    let report = run(Flags {
        rooms: Some(1),
        clients_per_room: Some(5),
        writers_per_room: Some(1),
        seed_bytes: Some(256 * 1024),
        connect_rate: Some(10.0),
        ..flags(port)
    })
    .await;
    assert!(report.ok, "{:?}", report.problems);
    let step = &report.steps[0];
    assert_eq!(step.seeders, 1);
    assert_eq!(step.counters.synced_first, 6);
    assert!(
        step.counters.step2_bytes_max >= 256 * 1024,
        "{:?}",
        step.counters
    );
    assert!(step.phases.seed_s > 0.0);
    // Five joiners started at 10 per second take about 0.4 s to start.
    assert!(step.phases.connect_s >= 0.35, "{:?}", step.phases);
    assert_eq!(step.convergence.converged_rooms, 1);
}
