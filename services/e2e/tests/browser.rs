//! The gateway's pages in a real browser: Debian's `chromium` driven by npm `playwright-core`
//! (`tests/browser`), against real gateways and, for the demo, a real `redis-server`. The
//! scenarios fail on any console error, Content-Security-Policy violation or request that
//! leaves the machine; screenshots go to `target/browser-artifacts/`.
//!
//! The tests run one at a time (each starts a browser beside the servers).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic with a message is a test failure"
)]

use std::sync::Mutex;
use std::time::Duration;
use yws_e2e::process::{Service, ServiceBuilder};
use yws_e2e::redis::RedisServer;
use yws_e2e::{browser, http, interop, unique_room};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn page_url(gw: &Service) -> String {
    format!("http://{}", gw.addr)
}

fn screenshots(verdict: &serde_json::Value) -> Vec<std::path::PathBuf> {
    let shots: Vec<_> = verdict["screenshots"]
        .as_array()
        .expect("the scenario lists its screenshots")
        .iter()
        .map(|s| std::path::PathBuf::from(s.as_str().expect("a path")))
        .collect();
    for shot in &shots {
        assert!(shot.starts_with(browser::artifacts()), "{}", shot.display());
        let bytes = std::fs::read(shot).expect("the screenshot exists");
        assert!(bytes.starts_with(b"\x89PNG"), "{} is a PNG", shot.display());
    }
    shots
}

#[test]
fn the_landing_page_leads_to_a_working_demo() {
    let _serial = serial();
    // Standalone: the demo is on by default.
    let gw = ServiceBuilder::gateway().spawn();
    let verdict = browser::expect_pass("landing", &[page_url(&gw)], &["--shot", "landing"]);
    let links = verdict["links"].as_array().unwrap();
    assert!(links.iter().any(|l| l == "/demo"), "{verdict}");
    assert_eq!(verdict["demo"]["presence"].as_array().unwrap().len(), 1);
    // The positive control: the policy refused an inline script and a style attribute.
    let refused = verdict["refused"].to_string();
    assert!(refused.contains("script-src"), "{refused}");
    assert!(refused.contains("style-src"), "{refused}");
    assert_eq!(screenshots(&verdict).len(), 2);
}

#[test]
fn two_demo_pages_on_two_gateways_edit_together() {
    let _serial = serial();
    let redis = RedisServer::start();
    // With Redis the demo is off unless asked for.
    let node = || {
        ServiceBuilder::gateway()
            .env("REDIS_URL", redis.url())
            .env("YWS__SERVER__DEMO", "true")
            .spawn()
    };
    let (a, b) = (node(), node());
    let room = unique_room("browser-demo");
    let verdict = browser::expect_pass(
        "demo-pair",
        &[page_url(&a), page_url(&b)],
        &["--room", &room],
    );
    assert_eq!(screenshots(&verdict).len(), 2);
    let text = verdict["text"].as_str().expect("the editors' text");
    assert!(text.contains("Alice was here. Shared notes"), "{text}");
    assert!(text.contains("Bob typed this line."), "{text}");
    // What the browsers show is what the cluster stored: read it back through either node.
    let expected: String = text
        .lines()
        .map(|line| format!("<paragraph>{line}</paragraph>"))
        .collect();
    for gw in [&a, &b] {
        let r = http::get(
            gw.addr,
            &format!("/api/rooms/{room}?objects=%7B%22prosemirror%22%3A%22XmlFragment%22%7D"),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(json["data"]["prosemirror"]["content"], expected.as_str());
    }
}

/// The demo's paths answer 404, the landing page does not link it, and a room named `demo`
/// is still a room.
fn assert_demo_off(gw: &Service) {
    assert_eq!(http::get(gw.addr, "/demo").status, 404);
    assert_eq!(http::get(gw.addr, "/assets/demo.js").status, 404);
    assert_eq!(http::get(gw.addr, "/assets/landing.js").status, 200);
    let landing = http::get(gw.addr, "/");
    assert_eq!(landing.status, 200);
    assert!(!landing.text().contains("/demo"), "{}", landing.text());
    // (Each caller's gateway and Redis are fresh: the room starts empty.)
    let text = interop::write_doc(&gw.ws_url(), "demo", "still a room");
    assert_eq!(text, "still a room");
}

#[test]
fn the_demo_can_be_turned_off() {
    let _serial = serial();
    let standalone = ServiceBuilder::gateway()
        .env("YWS__SERVER__DEMO", "false")
        .spawn();
    assert_demo_off(&standalone);
    let verdict = browser::expect_pass(
        "landing",
        &[page_url(&standalone)],
        &["--expect-demo", "false", "--shot", "landing-demo-off"],
    );
    assert_eq!(screenshots(&verdict).len(), 1);

    // In cluster mode the demo is off unless `server.demo` is set.
    let redis = RedisServer::start();
    let clustered = ServiceBuilder::gateway()
        .env("REDIS_URL", redis.url())
        .spawn();
    assert_demo_off(&clustered);
}

#[test]
fn the_admin_console_shows_a_room_live_and_deletes_it() {
    let _serial = serial();
    // Without a credential the console does not exist.
    let plain = ServiceBuilder::gateway().spawn();
    for path in ["/admin", "/admin/api/cluster", "/assets/admin.js"] {
        assert_eq!(http::get(plain.addr, path).status, 404, "{path}");
    }
    assert!(!http::get(plain.addr, "/").text().contains("/admin"));

    let redis = RedisServer::start();
    let token = "browser-admin-token-0123456789";
    let node = || {
        ServiceBuilder::gateway()
            .env("REDIS_URL", redis.url())
            .env("YWS_ADMIN_TOKEN", token)
            .spawn()
    };
    let (a, b) = (node(), node());
    let refused = http::get(a.addr, "/admin/api/cluster");
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));

    // A stock y-websocket client on node B holds the room until the console deletes it.
    let room = unique_room("browser-admin");
    let text = "written by a y-websocket client on node B";
    let held = interop::spawn(
        "held",
        &[b.ws_url()],
        &[
            "--room",
            &room,
            "--text",
            text,
            "--expect-close",
            "4404",
            "--timeout-ms",
            "120000",
        ],
    );
    assert!(
        held.wait_for_stderr("held: ready", Duration::from_secs(20)),
        "the held client did not get ready"
    );
    let verdict = browser::expect_pass(
        "admin",
        &[page_url(&a)],
        &[
            "--room", &room, "--token", token, "--text", text, "--nodes", "2",
        ],
    );
    assert_eq!(screenshots(&verdict).len(), 3);
    let shown = verdict["content"]["text"]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(shown.starts_with(text), "{verdict}");
    assert!(verdict["live_tick"].as_u64().unwrap_or(0) >= 1, "{verdict}");
    let held = held.finish(Duration::from_secs(30));
    assert!(held.ok(), "{}\n{}", held.json, held.stderr);
    assert_eq!(held.json["close_code"], 4404, "{}", held.json);
    // Deleted cluster-wide: neither node has it any more.
    for gw in [&a, &b] {
        let r = http::get(gw.addr, &format!("/api/rooms/{room}"));
        assert_eq!(r.status, 404, "{}", r.text());
    }
}

#[test]
fn the_admin_console_is_on_the_metrics_port_too() {
    let _serial = serial();
    let token = "metrics-port-admin-token-0123";
    let metrics_port = yws_e2e::free_port();
    let gw = ServiceBuilder::gateway()
        .env("YWS_ADMIN_TOKEN", token)
        .env("YWS__SERVER__METRICS_PORT", metrics_port)
        .spawn();
    let metrics = std::net::SocketAddr::new(gw.addr.ip(), metrics_port);
    let page = http::get(metrics, "/admin");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("id=\"login\""));
    assert_eq!(http::get(metrics, "/assets/admin.js").status, 200);
    let bearer = format!("Bearer {token}");
    let with = |t: &str| {
        http::request(
            metrics,
            "GET",
            "/admin/api/cluster",
            &[("authorization", t)],
            b"",
        )
    };
    assert_eq!(with(&bearer).status, 200);
    assert_eq!(with("Bearer metrics-port-admin-token-0124").status, 401);
    assert_eq!(http::get(metrics, "/admin/api/cluster").status, 401);
    // Only the console, the probes and the metrics there: no demo, no rooms.
    assert_eq!(http::get(metrics, "/demo").status, 404);
    assert_eq!(http::get(metrics, "/").status, 404);
    assert_eq!(http::get(metrics, "/metrics").status, 200);
}
