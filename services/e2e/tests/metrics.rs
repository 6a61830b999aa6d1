//! Metrics after real traffic through two gateways and a compactor: the counters moved, and
//! every scrape passes `promtool check metrics`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic with a message is a test failure"
)]

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;
use yws_e2e::http::{get, metric_sum};
use yws_e2e::process::ServiceBuilder;
use yws_e2e::redis::RedisServer;
use yws_e2e::{interop, unique_room, wait_until, ws};

fn scrape(addr: SocketAddr) -> String {
    let response = get(addr, "/metrics");
    assert_eq!(response.status, 200);
    response.text()
}

/// `promtool check metrics` on an exposition (installed by deploy/check.sh, which the test
/// command runs first).
fn promtool_check(exposition: &str, what: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (scripts/test.sh installs Debian's prometheus package)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed for {what}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn counters_move_with_traffic_and_scrapes_are_valid() {
    let redis = RedisServer::start();
    let gateway = || {
        ServiceBuilder::gateway()
            .env("REDIS_URL", redis.url())
            .env("YWS__REDIS__COMPACT_AFTER_MS", 500)
    };
    let (a, b) = (gateway().spawn(), gateway().spawn());
    let compactor = ServiceBuilder::compactor()
        .env("REDIS_URL", redis.url())
        .env("YWS__COMPACTOR__POLL_INTERVAL_MS", 200)
        .spawn();

    let room = unique_room("metrics");
    interop::expect_pass("converge", &[a.ws_url(), b.ws_url()], &["--room", &room]);
    // A malformed frame, to move the error counters.
    let mut bad = ws::connect(&format!("{}/{room}", a.ws_url()))
        .await
        .unwrap();
    ws::next_binary(&mut bad).await.unwrap();
    ws::send(&mut bad, vec![9, 9, 9]).await;
    assert_eq!(ws::close_code(&mut bad).await, Some(1002));

    assert!(
        wait_until(Duration::from_secs(20), || metric_sum(
            &scrape(compactor.addr),
            "yws_compactor_compactions_total{result=\"ok\"}"
        ) >= 1.0),
        "the compactor compacted the room"
    );

    // The converge clients are gone; their connections are counted as closed once the
    // gateways finished closing them.
    for gw in [&a, &b] {
        assert!(wait_until(Duration::from_secs(10), || metric_sum(
            &scrape(gw.addr),
            "yws_gateway_connections_closed_total"
        ) >= 1.0));
    }
    let (ma, mb, mc) = (scrape(a.addr), scrape(b.addr), scrape(compactor.addr));
    for (name, text) in [("gateway a", &ma), ("gateway b", &mb)] {
        assert!(
            metric_sum(text, "yws_gateway_connections_opened_total") >= 1.0,
            "{name}"
        );
        assert!(
            metric_sum(text, "yws_gateway_messages_received_total{type=\"update\"}") > 0.0,
            "{name}"
        );
        assert!(
            metric_sum(text, "yws_gateway_messages_sent_total{type=\"update\"}") > 0.0,
            "{name}"
        );
        assert!(
            metric_sum(text, "yws_gateway_sent_bytes_total") > 0.0,
            "{name}"
        );
        assert!(
            metric_sum(text, "yws_gateway_fanout_latency_seconds_count") > 0.0,
            "{name}: cross-node deliveries measured"
        );
        // Each delivery is measured twice: on arrival (read lag) and once handed to the
        // clients (fan-out), which comes later.
        assert_eq!(
            metric_sum(text, "yws_redis_stream_read_lag_seconds_count"),
            metric_sum(text, "yws_gateway_fanout_latency_seconds_count"),
            "{name}"
        );
        assert!(
            metric_sum(text, "yws_redis_stream_read_lag_seconds_sum")
                <= metric_sum(text, "yws_gateway_fanout_latency_seconds_sum"),
            "{name}: a delivery arrives before it is handed to the clients"
        );
        assert!(
            metric_sum(
                text,
                "yws_redis_command_duration_seconds_count{op=\"append\"}"
            ) > 0.0,
            "{name}"
        );
        assert!(metric_sum(text, "yws_redis_up") == 1.0, "{name}");
        assert!(
            metric_sum(text, "yws_gateway_room_load_seconds_count") >= 1.0,
            "{name}"
        );
        assert!(
            metric_sum(text, "process_resident_memory_bytes") > 0.0,
            "{name}"
        );
        promtool_check(text, name);
    }
    assert!(metric_sum(&ma, "yws_gateway_malformed_messages_total") >= 1.0);
    assert!(wait_until(Duration::from_secs(10), || metric_sum(
        &scrape(a.addr),
        "yws_gateway_connections_closed_total{reason=\"protocol_error\"}"
    ) >= 1.0));
    assert!(metric_sum(&mc, "yws_compactor_entries_merged_total") > 0.0);
    assert!(metric_sum(&mc, "yws_compactor_snapshot_bytes_count") >= 1.0);
    assert!(metric_sum(&mc, "yws_compactor_compaction_duration_seconds_count") >= 1.0);
    assert!(mc.contains("yws_compactor_queue_depth"));
    assert!(mc.contains("yws_compactor_lease_takeovers_total 0"));
    assert!(mc.contains("process_cpu_seconds_total"));
    assert!(metric_sum(&mc, "process_resident_memory_bytes") > 0.0);
    promtool_check(&mc, "compactor");
    // No room name ever becomes a label.
    for text in [&ma, &mb, &mc] {
        assert!(!text.contains(&room), "a room name leaked into the metrics");
    }
}
