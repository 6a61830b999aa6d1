//! Edge limits of a real gateway process over real sockets on 127.0.0.1: the room limit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic with a message is a test failure"
)]

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use yws_e2e::http;
use yws_e2e::process::ServiceBuilder;

/// The status of an upgrade to `room` from 127.0.0.1 (a 101 is closed right away).
async fn upgrade_status(addr: SocketAddr, room: &str) -> String {
    let request = format!(
        "GET /{room} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_beyond_max_rooms_are_refused_before_the_upgrade() {
    let gw = ServiceBuilder::gateway()
        .env("YWS__ROOMS__MAX_ROOMS", 2)
        .spawn();
    let addr = gw.addr;
    let switching = "HTTP/1.1 101 Switching Protocols";
    let unavailable = "HTTP/1.1 503 Service Unavailable";
    assert_eq!(upgrade_status(addr, "room-a").await, switching);
    assert_eq!(upgrade_status(addr, "room-b").await, switching);
    assert_eq!(upgrade_status(addr, "room-c").await, unavailable);
    let update = {
        use yrs::{ReadTxn, Text, Transact};
        let doc = yrs::Doc::with_client_id(1);
        doc.get_or_insert_text("t")
            .push(&mut doc.transact_mut(), "hello");
        let update = doc
            .transact()
            .encode_state_as_update_v1(&yrs::StateVector::default());
        update
    };
    let post = tokio::task::spawn_blocking(move || {
        http::request(addr, "POST", "/api/rooms/room-d/update", &[], &update).status
    });
    assert_eq!(post.await.unwrap(), 503, "the API creates no room either");
    // Rooms the node holds stay open to everyone.
    assert_eq!(upgrade_status(addr, "room-a").await, switching);
    assert!(gw.wait_for_log("rooms.max_rooms", Duration::from_secs(5)));
    let metrics = http::get(addr, "/metrics").text();
    assert_eq!(http::metric_sum(&metrics, "yws_gateway_rooms_max"), 2.0);
    assert_eq!(
        http::metric_sum(
            &metrics,
            "yws_gateway_upgrades_rejected_total{reason=\"rooms_full\"}"
        ),
        1.0
    );
    // Deleting a room makes room for a new one.
    let deleted = tokio::task::spawn_blocking(move || {
        http::request(addr, "DELETE", "/api/rooms/room-b", &[], &[]).status
    });
    assert_eq!(deleted.await.unwrap(), 204);
    assert_eq!(upgrade_status(addr, "room-c").await, switching);
}
