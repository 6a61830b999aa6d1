//! A standalone gateway (no Redis) against the real npm `y-websocket` client and raw sockets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic with a message is a test failure"
)]

use std::time::Duration;
use yws_e2e::process::ServiceBuilder;
use yws_e2e::{http, interop, unique_room, ws};
use yws_protocol::encode;

#[test]
fn stock_client_scenarios_pass() {
    let gw = ServiceBuilder::gateway().spawn();
    let urls = vec![gw.ws_url()];
    for scenario in [
        "converge",
        "late-join",
        "awareness",
        "offline",
        "big-update",
        "malformed",
        "echo",
    ] {
        let verdict = interop::expect_pass(scenario, &urls, &["--room", &unique_room(scenario)]);
        println!("{verdict}");
    }
    let metrics = http::get(gw.addr, "/metrics").text();
    assert!(metrics.contains("yws_gateway_connections_closed_total{reason=\"protocol_error\"}"));
}

#[test]
fn a_quiet_client_alone_in_a_room_is_never_dropped() {
    // The 3.x client closes after 30 s without any message; pings do not count.
    let gw = ServiceBuilder::gateway().spawn();
    interop::expect_pass(
        "keepalive",
        &[gw.ws_url()],
        &["--quiet-ms", "35000", "--timeout-ms", "60000"],
    );
}

#[test]
fn http_routes_and_refusals() {
    let gw = ServiceBuilder::gateway()
        .env("YWS__SERVER__MAX_ROOM_NAME_BYTES", 16)
        .spawn();
    assert_eq!(http::get(gw.addr, "/healthz").status, 200);
    assert_eq!(http::get(gw.addr, "/readyz").status, 200);
    let metrics = http::get(gw.addr, "/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.text().contains("yws_gateway_connections "));
    assert!(metrics.text().contains("process_cpu_seconds_total"));
    assert_eq!(http::get(gw.addr, "/some-room").status, 426);
    assert_eq!(http::request(gw.addr, "POST", "/", &[], b"x").status, 405);
    assert_eq!(
        http::request(gw.addr, "POST", "/some-room", &[], b"x").status,
        404
    );
    let upgrade = |path: &str| {
        http::request(
            gw.addr,
            "GET",
            path,
            &[
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
            &[],
        )
        .status
    };
    assert_eq!(upgrade("/"), 400, "empty room name");
    assert_eq!(upgrade("/a%0Ab"), 400, "control character");
    assert_eq!(upgrade(&format!("/{}", "x".repeat(17))), 400, "too long");
    assert_eq!(upgrade("/%FF"), 400, "not UTF-8");
    let rejected = http::get(gw.addr, "/metrics").text();
    assert!(
        rejected.contains("yws_gateway_upgrades_rejected_total{reason=\"bad_room_name\"} 4"),
        "{rejected}"
    );
}

#[tokio::test]
async fn connection_limit_answers_503() {
    let gw = ServiceBuilder::gateway()
        .env("YWS__SERVER__MAX_CONNECTIONS", 2)
        .spawn();
    let url = format!("{}/{}", gw.ws_url(), unique_room("limit"));
    let _a = ws::connect(&url).await.unwrap();
    let _b = ws::connect(&url).await.unwrap();
    match ws::connect(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("expected HTTP 503, got {other:?}"),
    }
    drop(_a);
    // The slot frees up once the first connection is gone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if ws::connect(&url).await.is_ok() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn oversized_messages_close_with_1009_and_others_carry_on() {
    let gw = ServiceBuilder::gateway()
        .env("YWS__SERVER__MAX_MESSAGE_BYTES", 4096)
        .spawn();
    let url = format!("{}/{}", gw.ws_url(), unique_room("big"));
    let mut good = ws::connect(&url).await.unwrap();
    let mut bad = ws::connect(&url).await.unwrap();
    ws::next_binary(&mut good).await.unwrap();
    ws::next_binary(&mut bad).await.unwrap();
    ws::send(&mut bad, encode::update(&vec![0u8; 8192])).await;
    assert_eq!(ws::close_code(&mut bad).await, Some(1009));
    ws::send(&mut good, encode::query_awareness()).await;
    assert!(
        ws::next_binary(&mut good).await.is_some(),
        "the other client is unaffected"
    );
}

/// Three updates that yrs 0.28.1 decodes but crashes on (a segmentation fault) when applied in
/// order: the one whose item points at its own client's future is refused with 1007, and the
/// node keeps serving.
#[tokio::test]
async fn updates_that_crash_yrs_are_refused_and_the_node_lives() {
    let gw = ServiceBuilder::gateway().spawn();
    let url = format!("{}/{}", gw.ws_url(), unique_room("yrs-crash"));
    let mut good = ws::connect(&url).await.unwrap();
    let mut bad = ws::connect(&url).await.unwrap();
    ws::next_binary(&mut good).await.unwrap();
    ws::next_binary(&mut bad).await.unwrap();
    let frame = include_bytes!("../../protocol/fuzz/regressions/yrs-apply-segfault-three-updates");
    ws::send(&mut bad, frame.to_vec()).await;
    assert_eq!(ws::close_code(&mut bad).await, Some(1007));
    ws::send(&mut good, encode::query_awareness()).await;
    assert!(
        ws::next_binary(&mut good).await.is_some(),
        "the other client is unaffected"
    );
    let mut again = ws::connect(&url).await.unwrap();
    assert!(
        ws::next_binary(&mut again).await.is_some(),
        "the room still loads"
    );
    assert_eq!(http::get(gw.addr, "/healthz").status, 200);
}

#[tokio::test]
async fn sigterm_closes_clients_with_1012_and_exits_cleanly() {
    let mut gw = ServiceBuilder::gateway()
        .env("YWS__SERVER__SHUTDOWN_TIMEOUT_MS", 5000)
        .spawn();
    let url = format!("{}/{}", gw.ws_url(), unique_room("term"));
    let mut client = ws::connect(&url).await.unwrap();
    ws::next_binary(&mut client).await.unwrap();
    gw.terminate();
    assert_eq!(ws::close_code(&mut client).await, Some(1012));
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("exits within the deadline");
    assert!(status.success(), "{status:?}");
    assert!(gw.logs().contains("shutdown complete"));
}

#[test]
fn invalid_configuration_exits_64() {
    for (key, value) in [
        ("PORT", "not-a-port"),
        ("YWS__SERVER__NO_SUCH_KEY", "1"),
        ("YWS__SERVER__MAX_CONNECTIONS", "0"),
    ] {
        let (status, stderr) = ServiceBuilder::gateway()
            .env(key, value)
            .run_to_exit(Duration::from_secs(10));
        assert_eq!(status.code(), Some(64), "{key}={value}: {stderr}");
        assert!(!stderr.is_empty(), "says what is wrong");
    }
    let (status, stderr) = ServiceBuilder::gateway()
        .args(&["--config", "/nonexistent.toml"])
        .run_to_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(64), "{stderr}");
}

#[test]
fn config_file_and_path_prefix() {
    let dir = std::env::temp_dir().join(format!("yws-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gateway.toml");
    std::fs::write(
        &file,
        "[server]\npath_prefix = \"/collab\"\n[log]\nformat = \"json\"\n",
    )
    .unwrap();
    let gw = ServiceBuilder::gateway()
        .args(&["--config", file.to_str().unwrap()])
        .spawn();
    let url = format!("{}/collab", gw.ws_url());
    interop::expect_pass("converge", &[url], &["--room", &unique_room("prefixed")]);
    assert!(gw.logs().lines().any(|l| l.starts_with('{')), "JSON logs");
    assert_eq!(http::get(gw.addr, "/collab/doc").status, 426);
    assert_eq!(http::get(gw.addr, "/elsewhere").status, 404);
}
