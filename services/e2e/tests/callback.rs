//! The reference server's HTTP callback (`CALLBACK_URL`, …) against a real receiver.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic with a message is a test failure"
)]

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use yrs::{Array, Map, ReadTxn, StateVector, Text, Transact, XmlFragment, XmlTextPrelim};
use yws_e2e::process::{Service, ServiceBuilder};
use yws_e2e::redis::RedisServer;
use yws_e2e::{http, interop, unique_room, ws};

/// One callback as received.
#[derive(Debug, Clone)]
struct Received {
    body: Value,
    raw: Vec<u8>,
    signature: Option<String>,
}

/// A receiver on 127.0.0.1 answering with the next status of `statuses` (then 200).
fn receiver(statuses: Vec<u16>) -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/callback", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    let statuses = Arc::new(Mutex::new(statuses.into_iter()));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (tx, statuses) = (tx.clone(), statuses.clone());
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let (mut length, mut signature) = (0usize, None);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if lower.starts_with("x-yws-signature:") {
                        signature = Some(line.split_once(':').unwrap().1.trim().to_string());
                    }
                }
                let mut raw = vec![0; length];
                reader.read_exact(&mut raw).unwrap();
                let status = statuses.lock().unwrap().next().unwrap_or(200);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                if status == 200 {
                    let body = serde_json::from_slice(&raw).unwrap();
                    let _ = tx.send(Received {
                        body,
                        raw,
                        signature,
                    });
                }
            });
        }
    });
    (url, rx)
}

fn with_callback(builder: ServiceBuilder, url: &str) -> ServiceBuilder {
    builder
        .env("CALLBACK_URL", url)
        .env("CALLBACK_DEBOUNCE_WAIT", 300)
        .env("CALLBACK_DEBOUNCE_MAXWAIT", 2000)
        .env("CALLBACK_TIMEOUT", 2000)
        .env(
            "CALLBACK_OBJECTS",
            r#"{"text":"Text","meta":"Map","list":"Array","xml":"XmlFragment"}"#,
        )
}

/// An update with content in a Text, a Map, an Array and an XmlFragment.
fn rich_update() -> Vec<u8> {
    let doc = yrs::Doc::with_client_id(4242);
    let (text, meta) = (
        doc.get_or_insert_text("text"),
        doc.get_or_insert_map("meta"),
    );
    let (list, xml) = (
        doc.get_or_insert_array("list"),
        doc.get_or_insert_xml_fragment("xml"),
    );
    {
        let mut txn = doc.transact_mut();
        text.push(&mut txn, "hello callback");
        meta.insert(&mut txn, "title", "Doc");
        list.push_back(&mut txn, "a");
        list.push_back(&mut txn, "b");
        xml.push_back(&mut txn, XmlTextPrelim::new("xml text"));
    }
    let update = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    update
}

async fn send_update(gw: &Service, room: &str, update: Vec<u8>) {
    let mut client = ws::connect(&format!("{}/{room}", gw.ws_url()))
        .await
        .unwrap();
    ws::next_binary(&mut client).await.unwrap();
    ws::send(&mut client, yws_protocol::encode::update(&update)).await;
    // Wait for the echo: the update is applied.
    while let Some(frame) = ws::next_binary(&mut client).await {
        if frame[..2] == [0, 2] {
            break;
        }
    }
}

#[tokio::test]
async fn the_body_has_the_reference_shape_for_every_object_type() {
    let (url, received) = receiver(vec![]);
    let gw = with_callback(ServiceBuilder::gateway(), &url).spawn();
    let room = unique_room("cb");
    send_update(&gw, &room, rich_update()).await;
    let got = received
        .recv_timeout(Duration::from_secs(10))
        .expect("a callback");
    assert_eq!(
        got.body,
        json!({
            "room": room,
            "data": {
                "text": { "type": "Text", "content": "hello callback" },
                "meta": { "type": "Map", "content": { "title": "Doc" } },
                "list": { "type": "Array", "content": ["a", "b"] },
                "xml": { "type": "XmlFragment", "content": "xml text" },
            }
        })
    );
    assert!(got.signature.is_none(), "unsigned without a secret");
    // The receiver hands the body over as it answers; the gateway counts once it read the answer.
    assert!(yws_e2e::wait_until(Duration::from_secs(5), || {
        http::metric(gw.addr, "yws_gateway_callbacks_total{result=\"sent\"}") == 1.0
    }));
}

#[tokio::test]
async fn signed_and_retried_after_server_errors() {
    let (url, received) = receiver(vec![500, 503]);
    let gw = with_callback(ServiceBuilder::gateway(), &url)
        .env("CALLBACK_SECRET", "shared-secret")
        .env("YWS__CALLBACK__RETRY_BACKOFF_MS", 100)
        .spawn();
    let room = unique_room("cb-retry");
    send_update(&gw, &room, rich_update()).await;
    let got = received
        .recv_timeout(Duration::from_secs(15))
        .expect("delivered after retries");
    let mut mac = Hmac::<Sha256>::new_from_slice(b"shared-secret").unwrap();
    mac.update(&got.raw);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(got.signature.as_deref(), Some(expected.as_str()));
    assert_eq!(
        http::metric(gw.addr, "yws_gateway_callbacks_total{result=\"retried\"}"),
        2.0
    );
}

#[test]
fn two_gateways_send_one_callback_per_window() {
    let redis = RedisServer::start();
    let (url, received) = receiver(vec![]);
    let a = with_callback(
        ServiceBuilder::gateway().env("REDIS_URL", redis.url()),
        &url,
    )
    .spawn();
    let b = with_callback(
        ServiceBuilder::gateway().env("REDIS_URL", redis.url()),
        &url,
    )
    .spawn();
    let room = unique_room("cb-cluster");
    // Clients on both nodes edit together (the room is loaded on both).
    interop::expect_pass("converge", &[a.ws_url(), b.ws_url()], &["--room", &room]);
    let first = received
        .recv_timeout(Duration::from_secs(10))
        .expect("one callback");
    assert_eq!(first.body["room"], room.as_str());
    // No second callback for the same burst from the other node.
    assert!(
        received.recv_timeout(Duration::from_secs(3)).is_err(),
        "a duplicate callback arrived"
    );
    let sent = http::metric(a.addr, "yws_gateway_callbacks_total{result=\"sent\"}")
        + http::metric(b.addr, "yws_gateway_callbacks_total{result=\"sent\"}");
    assert_eq!(sent, 1.0);
    // A later edit gets its own callback, with the final content.
    let text = interop::expect_pass(
        "write-doc",
        &[b.ws_url()],
        &["--room", &room, "--text", "|later"],
    );
    let later = received
        .recv_timeout(Duration::from_secs(10))
        .expect("a callback for the later edit");
    assert_eq!(later.body["data"]["text"]["content"], text["text"]);
}
