//! Edge limits of a real gateway process over real sockets on 127.0.0.1: slow HTTP senders
//! are cut off by their deadlines, the per-IP connection limit, and the room limit — while
//! `/healthz` and real clients keep working.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic with a message is a test failure"
)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use yws_e2e::process::{Service, ServiceBuilder};
use yws_e2e::{http, unique_room, wait_until, ws};

/// Slow senders connect from this loopback address, probes and real clients from 127.0.0.1.
const SLOW_IP: &str = "127.0.0.2";
/// The deadlines the gateway under test is given.
const DEADLINE: Duration = Duration::from_millis(1500);
/// Time a cut-off may take beyond its deadline (timer granularity, a loaded CI machine).
const SLACK: Duration = Duration::from_secs(5);

/// Connects from the loopback address `from`; `small_window`: a tiny receive buffer, so a
/// client that does not read stalls the server's writes soon.
async fn connect_from(from: &str, to: SocketAddr, small_window: bool) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    if small_window {
        socket.set_recv_buffer_size(4096).unwrap();
    }
    socket
        .bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), socket.connect(to))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// How a slow client behaves: what it sends at once, then what it drips, one byte every
/// 100 ms, until the server closes the connection; whether it reads what the server answers.
#[derive(Debug, Clone)]
struct Slow {
    head: String,
    drip: &'static [u8],
    reads: bool,
}

/// Runs one slow client; returns how long the server let it live and what it answered (a
/// client that does not read notices the end when its drip fails).
async fn slow_client(addr: SocketAddr, slow: Slow) -> (Duration, String) {
    let mut stream = connect_from(SLOW_IP, addr, !slow.reads).await;
    let start = Instant::now();
    stream.write_all(slow.head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let mut drip = slow.drip.iter().cycle();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{slow:?} was never cut off; answered {}",
            String::from_utf8_lossy(&answer)
        );
        tokio::select! {
            read = stream.read(&mut buf), if slow.reads => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            },
            _ = tick.tick() => {
                if let Some(byte) = drip.next() {
                    if stream.write_all(&[*byte]).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
    (
        start.elapsed(),
        String::from_utf8_lossy(&answer).into_owned(),
    )
}

/// `GET /healthz` from 127.0.0.1, off the async threads.
async fn healthz(addr: SocketAddr) -> u16 {
    tokio::task::spawn_blocking(move || http::get(addr, "/healthz").status)
        .await
        .unwrap()
}

/// A real client joins a room and gets the server's sync step 1.
async fn real_client_syncs(gw: &Service) {
    let url = format!("{}/{}", gw.ws_url(), unique_room("real"));
    let mut client = ws::connect(&url).await.expect("a real client connects");
    let first = ws::next_binary(&mut client).await.expect("sync step 1");
    assert_eq!(first[..2], [0, 0], "the server's sync step 1 comes first");
}

fn slow_gateway() -> Service {
    let ms = DEADLINE.as_millis();
    ServiceBuilder::gateway()
        .env("YWS__SERVER__HEADER_TIMEOUT_MS", ms)
        .env("YWS__SERVER__BODY_TIMEOUT_MS", ms)
        .env("YWS__SERVER__HANDSHAKE_TIMEOUT_MS", ms)
        .spawn()
}

fn slow(head: &str, drip: &'static [u8]) -> Slow {
    Slow {
        head: head.to_owned(),
        drip,
        reads: true,
    }
}

/// The slow clients of each kind: name, behaviour, what the answer starts with.
fn slow_kinds() -> Vec<(&'static str, Slow, &'static str)> {
    let upgrade = "GET /slow-upgrade HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    // Pipelined requests whose answers (64 × the 330 KB demo script: more than any socket
    // buffer holds) are never read, then an upgrade: the server's writes stall before the 101.
    let pipelined = format!(
        "{}{upgrade}\r\n",
        "GET /assets/demo.js HTTP/1.1\r\nHost: x\r\n\r\n".repeat(64)
    );
    vec![
        ("silent", slow("", b""), ""),
        (
            "idle keep-alive",
            slow("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b""),
            "HTTP/1.1 200",
        ),
        (
            "slow head",
            slow("GET /healthz HTTP/1.1\r\nHost: x\r\n", b"x-pad: 1\r\n"),
            "",
        ),
        (
            "slow upgrade head",
            slow(upgrade, b"x-pad: 1\r\n"),
            "",
        ),
        (
            "slow body",
            slow(
                "POST /api/rooms/slow-body/update HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n",
                b"\0",
            ),
            "HTTP/1.1 408",
        ),
        (
            "no reads",
            Slow {
                head: pipelined,
                drip: b"\r\n",
                reads: false,
            },
            "",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_senders_are_cut_off_in_time_while_others_keep_working() {
    let gw = slow_gateway();
    let addr = gw.addr;
    let mut senders = JoinSet::new();
    for (name, slow, answer_starts) in slow_kinds() {
        for _ in 0..10 {
            let slow = slow.clone();
            senders.spawn(async move { (name, answer_starts, slow_client(addr, slow).await) });
        }
    }
    // While they dawdle, the node serves everyone else.
    tokio::time::sleep(DEADLINE / 3).await;
    assert_eq!(healthz(addr).await, 200);
    real_client_syncs(&gw).await;

    while let Some(joined) = senders.join_next().await {
        let (name, answer_starts, (lived, answer)) = joined.unwrap();
        let first_line = answer.lines().next().unwrap_or_default();
        println!("{name}: cut off after {lived:?}, answered {first_line:?}");
        assert!(
            lived >= DEADLINE - Duration::from_millis(200),
            "{name}: cut off after {lived:?}, before its deadline"
        );
        assert!(
            lived <= DEADLINE + SLACK,
            "{name}: lived {lived:?}, deadline {DEADLINE:?}"
        );
        assert!(answer.starts_with(answer_starts), "{name}: {answer}");
    }
    assert_eq!(healthz(addr).await, 200);
    real_client_syncs(&gw).await;
    let metrics = http::get(addr, "/metrics").text();
    for (reason, at_least) in [
        ("header_timeout", 40.0),
        ("body_timeout", 10.0),
        ("write_stall", 10.0),
    ] {
        let name = format!("yws_gateway_http_cutoffs_total{{reason=\"{reason}\"}}");
        let counted = http::metric_sum(&metrics, &name);
        assert!(counted >= at_least, "{name} = {counted}");
    }
}

/// The status line of a request sent from `from`, read until the server closes.
async fn status_from(from: &str, addr: SocketAddr, request: &str) -> String {
    let mut stream = connect_from(from, addr, false).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_ip_limit_counts_http_and_websockets_of_one_address() {
    let gw = ServiceBuilder::gateway()
        .env("YWS__SERVER__MAX_CONNECTIONS_PER_IP", 3)
        .spawn();
    let addr = gw.addr;
    let healthz_request = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    // Two idle connections and one WebSocket from one address fill its share.
    let idle_a = connect_from(SLOW_IP, addr, false).await;
    let idle_b = connect_from(SLOW_IP, addr, false).await;
    let (mut socket, _) = tokio_tungstenite::client_async(
        format!("ws://{addr}/{}", unique_room("per-ip")),
        connect_from(SLOW_IP, addr, false).await,
    )
    .await
    .expect("the third connection is a WebSocket");
    let refused = status_from(SLOW_IP, addr, healthz_request).await;
    assert_eq!(refused, "HTTP/1.1 503 Service Unavailable");
    // Other addresses are not affected.
    assert_eq!(healthz(addr).await, 200);
    real_client_syncs(&gw).await;
    // The WebSocket keeps its slot after the upgrade; closing it frees the slot.
    drop((idle_a, idle_b));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = status_from(SLOW_IP, addr, healthz_request).await;
        if status == "HTTP/1.1 200 OK" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "freed slots are usable again: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The WebSocket still holds its slot: two more fill the share again.
    let _a = connect_from(SLOW_IP, addr, false).await;
    let _b = connect_from(SLOW_IP, addr, false).await;
    let refused = status_from(SLOW_IP, addr, healthz_request).await;
    assert_eq!(
        refused, "HTTP/1.1 503 Service Unavailable",
        "the WebSocket counts"
    );
    let _ = socket.close(None).await;
    drop(socket);
    assert!(wait_until(Duration::from_secs(10), || {
        http::metric(addr, "yws_gateway_connections") == 0.0
    }));
    let metrics = http::get(addr, "/metrics").text();
    let refusals = http::metric_sum(
        &metrics,
        "yws_gateway_http_cutoffs_total{reason=\"per_ip_limit\"}",
    );
    assert!(refusals >= 2.0, "per_ip_limit refusals: {refusals}");
}

/// The status of an upgrade to `room` from 127.0.0.1 (a 101 is closed right away).
async fn upgrade_status(addr: SocketAddr, room: &str) -> String {
    let request = format!(
        "GET /{room} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    let mut stream = connect_from("127.0.0.1", addr, false).await;
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
