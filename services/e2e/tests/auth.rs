//! Authentication at the upgrade, end to end: the real gateway, real tokens, a real webhook
//! server, the npm client passing its token through `params`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    reason = "a panic with a message is a test failure; real processes are polled from plain threads, where std::thread::sleep is right"
)]

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use yws_e2e::process::{Service, ServiceBuilder};
use yws_e2e::{http, interop, repo_root, unique_room, ws};
use yws_protocol::encode as frame;

const SECRET: &str = "e2e-test-secret-not-for-production";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn hs256(claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn token(rooms: &[&str], access: &str, exp_in: i64) -> String {
    hs256(
        &json!({ "sub": "tester", "rooms": rooms, "access": access, "exp": now() as i64 + exp_in }),
    )
}

fn jwt_gateway() -> Service {
    ServiceBuilder::gateway()
        .env("AUTH_JWT_SECRET", SECRET)
        .env("AUTH_JWT_LEEWAY_SECS", 0)
        .spawn()
}

/// The HTTP status of an upgrade attempt (reads only the status line: a 101 keeps the
/// connection open).
fn upgrade_status(gw: &Service, path: &str, extra: &[(&str, &str)]) -> u16 {
    let mut stream = std::net::TcpStream::connect(gw.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        gw.addr
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn every_jwt_refusal_happens_before_the_upgrade() {
    let gw = jwt_gateway();
    let room = "team-a/doc";
    let ok = token(&["team-a/*"], "rw", 60);
    assert_eq!(
        upgrade_status(&gw, &format!("/{room}?token={ok}"), &[]),
        101
    );
    let bearer = format!("Bearer {ok}");
    assert_eq!(
        upgrade_status(&gw, &format!("/{room}"), &[("Authorization", &bearer)]),
        101
    );

    let mut bad_signature = ok.clone();
    bad_signature.pop();
    bad_signature.push(if ok.ends_with('A') { 'B' } else { 'A' });
    let rsa_key =
        std::fs::read(repo_root().join("services/auth/tests/fixtures/rsa_private.pem")).unwrap();
    let rs256 = encode(
        &Header::new(Algorithm::RS256),
        &json!({ "rooms": ["*"], "exp": now() + 60 }),
        &EncodingKey::from_rsa_pem(&rsa_key).unwrap(),
    )
    .unwrap();
    let not_yet = hs256(&json!({ "rooms": ["*"], "exp": now() + 600, "nbf": now() + 300 }));
    let cases: [(&str, String, u16); 7] = [
        ("no token", String::new(), 401),
        ("garbage", "not.a.jwt".into(), 401),
        ("bad signature", bad_signature, 401),
        ("wrong algorithm", rs256, 401),
        ("expired", token(&["*"], "rw", -120), 401),
        ("not yet valid", not_yet, 401),
        ("wrong room", token(&["team-b/*"], "rw", 60), 403),
    ];
    for (what, t, status) in cases {
        let path = if t.is_empty() {
            format!("/{room}")
        } else {
            format!("/{room}?token={t}")
        };
        assert_eq!(upgrade_status(&gw, &path, &[]), status, "{what}");
    }
    let metrics = http::get(gw.addr, "/metrics").text();
    assert!(
        metrics.contains("yws_gateway_auth_refusals_total{reason=\"room_not_allowed\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("yws_gateway_auth_refusals_total{reason=\"expired\"} 1"));
}

#[test]
fn stock_client_passes_its_token_through_params() {
    let gw = jwt_gateway();
    let room = unique_room("authz");
    let t = token(&[&room], "rw", 300);
    interop::expect_pass(
        "auth-params",
        &[gw.ws_url()],
        &["--room", &room, "--token", &t],
    );
    let verdict = interop::run(
        "expect-refused",
        &[gw.ws_url()],
        &["--room", &room, "--expect-status", "401"],
    );
    assert!(verdict.ok(), "{}", verdict.json);
}

#[tokio::test]
async fn read_only_edits_do_not_reach_others_and_the_connection_stays_open() {
    let gw = jwt_gateway();
    let room = unique_room("ro");
    let writer_url = format!(
        "{}/{room}?token={}",
        gw.ws_url(),
        token(&[&room], "rw", 300)
    );
    let reader_url = format!(
        "{}/{room}?token={}",
        gw.ws_url(),
        token(&[&room], "read", 300)
    );
    let mut writer = ws::connect(&writer_url).await.unwrap();
    let mut reader = ws::connect(&reader_url).await.unwrap();
    ws::next_binary(&mut writer).await.unwrap();
    ws::next_binary(&mut reader).await.unwrap();

    let doc = yrs::Doc::with_client_id(77);
    let update = {
        use yrs::{ReadTxn, Text, Transact};
        doc.get_or_insert_text("t")
            .push(&mut doc.transact_mut(), "from the reader");
        let u = doc
            .transact()
            .encode_state_as_update_v1(&yrs::StateVector::default());
        u
    };
    ws::send(&mut reader, frame::update(&update)).await;
    // The reader may publish awareness, and it is relayed.
    let state = yws_protocol::AwarenessEntry {
        client_id: 77,
        clock: 1,
        state: r#"{"user":"reader"}"#,
    };
    ws::send(&mut reader, frame::awareness([state])).await;
    let relayed = ws::next_binary(&mut writer).await.unwrap();
    assert_eq!(
        relayed[0], 1,
        "the first thing the writer sees is the reader's awareness, not its edit"
    );
    // The reader is still connected and still receives the writer's edits.
    let doc2 = yrs::Doc::with_client_id(78);
    let writer_update = {
        use yrs::{ReadTxn, Text, Transact};
        doc2.get_or_insert_text("t")
            .push(&mut doc2.transact_mut(), "from the writer");
        let u = doc2
            .transact()
            .encode_state_as_update_v1(&yrs::StateVector::default());
        u
    };
    ws::send(&mut writer, frame::update(&writer_update)).await;
    loop {
        let f = ws::next_binary(&mut reader)
            .await
            .expect("reader still connected");
        if f[..2] == [0, 2] {
            assert_eq!(
                yws_protocol::decode(&f).collect::<Vec<_>>(),
                vec![Ok(yws_protocol::Message::Update(&writer_update))]
            );
            break;
        }
    }
    let metrics = http::get(gw.addr, "/metrics").text();
    assert!(
        metrics.contains("yws_gateway_readonly_updates_dropped_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_expiring_token_closes_the_live_connection_with_4401() {
    let gw = jwt_gateway();
    let room = unique_room("exp");
    let url = format!("{}/{room}?token={}", gw.ws_url(), token(&[&room], "rw", 2));
    let mut client = ws::connect(&url).await.unwrap();
    ws::next_binary(&mut client).await.unwrap();
    assert_eq!(ws::close_code(&mut client).await, Some(4401));
}

/// A one-thread HTTP server standing in for the app's auth endpoint: answers by the
/// `X-Test-Verdict` header it is forwarded (`rw`, `read`, `deny`, `hang`), counts calls.
fn webhook() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/auth", listener.local_addr().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let request: Value = serde_json::from_slice(&body).unwrap();
                let verdict = request["headers"]["x-test-verdict"]
                    .as_str()
                    .unwrap_or("deny")
                    .to_string();
                let (status, answer) = match verdict.as_str() {
                    "rw" => ("200 OK", r#"{"access":"rw"}"#),
                    "read" => ("200 OK", r#"{"access":"read"}"#),
                    "admin"
                        if request["operation"] == "list_rooms"
                            && request.get("room").is_none() =>
                    {
                        ("200 OK", r#"{"admin":true}"#)
                    }
                    "hang" => {
                        std::thread::sleep(Duration::from_secs(10));
                        return;
                    }
                    _ => ("403 Forbidden", r#"{"error":"no"}"#),
                };
                let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}", answer.len());
            });
        }
    });
    (url, calls)
}

#[test]
fn webhook_grants_refuses_and_fails_closed() {
    let (url, calls) = webhook();
    let gw = ServiceBuilder::gateway()
        .env("AUTH_URL", &url)
        .env("AUTH_WEBHOOK_FORWARD_HEADERS", "x-test-verdict")
        .env("AUTH_WEBHOOK_TIMEOUT_MS", 300)
        .spawn();
    assert_eq!(
        upgrade_status(&gw, "/room", &[("X-Test-Verdict", "rw")]),
        101
    );
    assert_eq!(
        upgrade_status(&gw, "/room", &[("X-Test-Verdict", "read")]),
        101
    );
    assert_eq!(
        upgrade_status(&gw, "/room", &[("X-Test-Verdict", "deny")]),
        403
    );
    assert_eq!(
        upgrade_status(&gw, "/room", &[("X-Test-Verdict", "hang")]),
        503,
        "timeout fails closed"
    );
    assert!(calls.load(Ordering::SeqCst) >= 4);
    assert!(
        gw.wait_for_log("webhook", Duration::from_secs(5)),
        "a clear log line names the webhook failure"
    );
    // Listing is told apart from a join: a room grant does not list, an admin answer does.
    let list = |verdict| {
        http::request(
            gw.addr,
            "GET",
            "/api/rooms",
            &[("X-Test-Verdict", verdict)],
            &[],
        )
    };
    assert_eq!(list("rw").status, 403, "a plain grant does not list rooms");
    assert_eq!(list("admin").status, 200);
}

#[test]
fn listing_rooms_needs_the_admin_claim() {
    let gw = jwt_gateway();
    let list = |t: &str| http::get(gw.addr, &format!("/api/rooms?token={t}"));
    // Patterns covering a room literally named `*` do not list the deployment.
    for rooms in [&["*"][..], &["**"], &["\\*"]] {
        let refused = list(&token(rooms, "rw", 60));
        assert_eq!(refused.status, 403, "{rooms:?}: {}", refused.text());
    }
    let admin = hs256(&json!({ "sub": "ops", "admin": true, "exp": now() + 60 }));
    assert_eq!(list(&admin).status, 200);
    // `admin` grants no room, and a room named `*` is an ordinary room.
    assert_eq!(
        upgrade_status(&gw, &format!("/doc?token={admin}"), &[]),
        403
    );
    let star = token(&["\\*"], "rw", 60);
    assert_eq!(upgrade_status(&gw, &format!("/*?token={star}"), &[]), 101);
    assert_eq!(upgrade_status(&gw, &format!("/x?token={star}"), &[]), 403);
    let metrics = http::get(gw.addr, "/metrics").text();
    assert!(
        metrics.contains("yws_gateway_auth_refusals_total{reason=\"not_admin\"} 3"),
        "{metrics}"
    );
}

#[test]
fn an_unusable_key_file_is_invalid_configuration() {
    let (status, stderr) = ServiceBuilder::gateway()
        .env("AUTH_JWT_PUBLIC_KEY_FILE", "/nonexistent/yws/key.pem")
        .run_to_exit(Duration::from_secs(10));
    assert_eq!(
        status.code(),
        Some(64),
        "exit 64, like any invalid setting: {stderr}"
    );
    assert!(
        stderr.contains("auth.jwt_public_key_file") && stderr.contains("/nonexistent/yws/key.pem"),
        "the error names the setting and the file: {stderr}"
    );
}

#[test]
fn cookie_auth_checks_origin_and_needs_an_allow_list() {
    let (status, stderr) = ServiceBuilder::gateway()
        .env("AUTH_JWT_SECRET", SECRET)
        .env("AUTH_TOKEN_COOKIE", "yws_token")
        .run_to_exit(Duration::from_secs(10));
    assert_eq!(
        status.code(),
        Some(64),
        "cookie auth without an Origin allow-list is refused: {stderr}"
    );

    let gw = ServiceBuilder::gateway()
        .env("AUTH_JWT_SECRET", SECRET)
        .env("AUTH_TOKEN_COOKIE", "yws_token")
        .env("AUTH_ALLOWED_ORIGINS", "https://app.example")
        .spawn();
    let cookie = format!("yws_token={}", token(&["*"], "rw", 60));
    assert_eq!(
        upgrade_status(
            &gw,
            "/doc",
            &[("Cookie", &cookie), ("Origin", "https://app.example")]
        ),
        101
    );
    assert_eq!(
        upgrade_status(
            &gw,
            "/doc",
            &[("Cookie", &cookie), ("Origin", "https://evil.example")]
        ),
        403
    );
}

#[test]
fn the_admin_console_takes_a_jwt_with_the_admin_claim() {
    // No admin.token: a JWT key alone turns the console on, for tokens carrying `admin`.
    let gw = jwt_gateway();
    assert_eq!(http::get(gw.addr, "/admin").status, 200);
    let cluster = |bearer: Option<&str>| {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        http::request(gw.addr, "GET", "/admin/api/cluster", &headers, b"")
    };
    let admin = hs256(&json!({ "sub": "ops", "admin": true, "exp": now() + 60 }));
    let ok = cluster(Some(&admin));
    assert_eq!(ok.status, 200, "{}", ok.text());
    let body: Value = serde_json::from_slice(&ok.body).unwrap();
    assert_eq!(body["nodes"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(cluster(None).status, 401);
    assert_eq!(cluster(Some("not-a-jwt")).status, 401);
    let room_grant = token(&["**"], "rw", 60);
    assert_eq!(cluster(Some(&room_grant)).status, 403);
}
