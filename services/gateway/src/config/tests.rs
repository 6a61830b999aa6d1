//! Configuration from the environment names users know, and its validation.

use super::*;
use std::collections::HashMap;

fn load(env: &[(&str, &str)]) -> Result<GatewayConfig, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let c: GatewayConfig = Loader::new(ENV).with_env(env).load()?;
    c.validate()?;
    Ok(c)
}

#[test]
fn reference_defaults_and_names() {
    let c = load(&[]).unwrap();
    assert_eq!((c.server.host.as_str(), c.server.port), ("localhost", 1234));
    assert!(c.rooms.gc);
    let c = load(&[("HOST", "127.0.0.1"), ("PORT", "4321"), ("GC", "0")]).unwrap();
    assert_eq!(c.listen_addr().unwrap(), "127.0.0.1:4321".parse().unwrap());
    assert!(!c.rooms.gc);
}

#[test]
fn redis_settings_from_reference_style_names() {
    let c = load(&[
        ("REDIS_URL", "redis://:pw@127.0.0.1:6379"),
        ("REDIS_CLUSTER_NODES", "10.0.0.1:7000,10.0.0.2:7000"),
        ("YWS_REDIS_PREFIX", "team-a"),
    ])
    .unwrap();
    assert!(c.redis.enabled());
    assert_eq!(c.redis.cluster_nodes.len(), 2);
    assert_eq!(c.redis.prefix, "team-a");
    assert!(load(&[("REDIS_URL", "http://nope")]).is_err());
}

#[test]
fn auth_settings_from_their_env_names() {
    let c = load(&[("AUTH_JWT_SECRET", "s3cret"), ("AUTH_JWT_ISSUER", "me")]).unwrap();
    assert!(c.auth.jwt_enabled());
    assert!(!format!("{c:?}").contains("s3cret"), "secrets are redacted");
    // Cookie auth without an Origin allow-list is refused at startup.
    assert!(load(&[("AUTH_JWT_SECRET", "s"), ("AUTH_TOKEN_COOKIE", "t")]).is_err());
}

#[test]
fn storage_url_from_either_name_and_only_with_redis() {
    let c = load(&[("REDIS_URL", "redis://127.0.0.1:6379")]).unwrap();
    assert!(!c.storage.enabled(), "off unless its URL is set");
    for name in ["YWS_STORAGE_URL", "YWS__STORAGE__URL"] {
        let c = load(&[
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            (name, "file:///var/lib/yws"),
        ])
        .unwrap();
        assert_eq!(
            c.storage.url.as_deref(),
            Some("file:///var/lib/yws"),
            "{name}"
        );
    }
    assert!(
        load(&[("YWS_STORAGE_URL", "file:///var/lib/yws")]).is_err(),
        "storage without Redis is refused"
    );
    assert!(
        load(&[
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("YWS_STORAGE_URL", "ftp://nope/x")
        ])
        .is_err(),
        "an invalid URL is refused"
    );
}

#[test]
fn persistence_from_ypersistence() {
    let c = load(&[("YPERSISTENCE", "/tmp/yws-data")]).unwrap();
    assert!(c.persistence.enabled());
    assert!(load(&[
        ("YPERSISTENCE", "/tmp/x"),
        ("REDIS_URL", "redis://127.0.0.1:6379")
    ])
    .is_err());
}

#[test]
fn callback_settings_from_the_reference_names() {
    let c = load(&[
        ("CALLBACK_URL", "http://127.0.0.1:8080/cb"),
        ("CALLBACK_DEBOUNCE_WAIT", "100"),
        ("CALLBACK_DEBOUNCE_MAXWAIT", "500"),
        ("CALLBACK_TIMEOUT", "1000"),
        (
            "CALLBACK_OBJECTS",
            r#"{"prosemirror":"XmlFragment","meta":"Map"}"#,
        ),
    ])
    .unwrap();
    assert_eq!(c.callback.debounce_wait_ms, 100);
    assert_eq!(c.callback.timeout_ms, 1000);
    assert!(load(&[("CALLBACK_OBJECTS", "{not json")]).is_err());
}

#[test]
fn invalid_values_are_reported() {
    assert!(load(&[("YWS__SERVER__MAX_CONNECTIONS", "0")]).is_err());
    assert!(load(&[("YWS__SERVER__PATH_PREFIX", "collab/")]).is_err());
    assert!(load(&[("YWS__SERVER__NOPE", "1")]).is_err());
    assert!(load(&[("PORT", "99999")]).is_err());
}

#[test]
fn callback_validation() {
    let ok = CallbackConfig {
        url: Some("http://127.0.0.1:9/cb".into()),
        objects: r#"{"t":"Text"}"#.into(),
        ..CallbackConfig::default()
    };
    assert!(ok.validate().is_ok());
    let bad_objects = CallbackConfig {
        objects: r#"{"t":"Blob"}"#.into(),
        ..ok.clone()
    };
    assert!(bad_objects.validate().is_err());
    let https = CallbackConfig {
        url: Some("https://x/cb".into()),
        ..ok.clone()
    };
    assert!(https.validate().is_err());
    let waits = CallbackConfig {
        debounce_wait_ms: 5000,
        debounce_maxwait_ms: 100,
        ..ok
    };
    assert!(waits.validate().is_err());
}

/// Every environment name the gateway reads besides `YWS__…`. Deployments and the reference
/// server's users set these: dropping or renaming one silently ignores their setting. When
/// this fails because a name was added on purpose, add it here and to the README's tables.
const GATEWAY_ENV_NAMES: &[&str] = &[
    "AUTH_ALLOWED_ORIGINS",
    "AUTH_JWT_ALGORITHM",
    "AUTH_JWT_AUDIENCE",
    "AUTH_JWT_ISSUER",
    "AUTH_JWT_LEEWAY_SECS",
    "AUTH_JWT_PUBLIC_KEY_FILE",
    "AUTH_JWT_REQUIRE_EXP",
    "AUTH_JWT_SECRET",
    "AUTH_TOKEN_COOKIE",
    "AUTH_TOKEN_QUERY_PARAM",
    "AUTH_URL",
    "AUTH_WEBHOOK_CACHE_MAX_ENTRIES",
    "AUTH_WEBHOOK_CACHE_TTL_MS",
    "AUTH_WEBHOOK_FORWARD_COOKIES",
    "AUTH_WEBHOOK_FORWARD_HEADERS",
    "AUTH_WEBHOOK_MAX_CONCURRENCY",
    "AUTH_WEBHOOK_TIMEOUT_MS",
    "CALLBACK_DEBOUNCE_MAXWAIT",
    "CALLBACK_DEBOUNCE_WAIT",
    "CALLBACK_OBJECTS",
    "CALLBACK_SECRET",
    "CALLBACK_TIMEOUT",
    "CALLBACK_URL",
    "GC",
    "HOST",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "PORT",
    "REDIS_CLUSTER_NODES",
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_SENTINEL_PASSWORD",
    "REDIS_URL",
    "YPERSISTENCE",
    "YWS_ADMIN_TOKEN",
    "YWS_REDIS_PREFIX",
    "YWS_STORAGE_URL",
];

#[test]
fn environment_names_are_pinned() {
    let mut names: Vec<&str> = ENV
        .iter()
        .flat_map(|t| t.vars.iter().map(|v| v.name))
        .collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "an environment name is listed twice");
    assert_eq!(
        names, GATEWAY_ENV_NAMES,
        "the gateway's environment names changed (see GATEWAY_ENV_NAMES)"
    );
}

#[test]
fn every_environment_name_sets_a_known_key() {
    for (name, key) in ENV.iter().flat_map(EnvTable::entries) {
        let env = HashMap::from([(name.to_string(), "1".to_string())]);
        // Type errors are fine here ("1" is no URL); an unknown key means a wrong table.
        if let Err(e) = Loader::new(ENV).with_env(env).load::<GatewayConfig>() {
            let e = e.to_string();
            assert!(!e.contains("unknown field"), "{name} → {key}: {e}");
        }
    }
}

#[test]
fn list_settings_from_the_environment() {
    let c = load(&[
        (
            "AUTH_ALLOWED_ORIGINS",
            " https://a.example, ,https://b.example",
        ),
        ("AUTH_JWT_SECRET", "s"),
        ("YWS__AUTH__WEBHOOK_FORWARD_HEADERS", "x-user"),
        ("AUTH_URL", "http://127.0.0.1:9/auth"),
        ("YWS__REDIS__CLUSTER_NODES", "10.0.0.1:7000, 10.0.0.2:7000"),
    ])
    .unwrap();
    assert_eq!(
        c.auth.allowed_origins,
        ["https://a.example", "https://b.example"]
    );
    assert_eq!(c.auth.webhook_forward_headers, ["x-user"]);
    assert_eq!(c.redis.cluster_nodes, ["10.0.0.1:7000", "10.0.0.2:7000"]);
    // An empty seed is a typo the redis section refuses, as before.
    assert!(load(&[("REDIS_CLUSTER_NODES", "10.0.0.1:7000,,10.0.0.2:7000")]).is_err());
    assert!(load(&[("REDIS_CLUSTER_NODES", "")]).is_err());
}

#[test]
fn the_admin_console_needs_a_credential() {
    assert!(!load(&[]).unwrap().admin_enabled());
    let token = "0123456789abcdef";
    let c = load(&[("YWS_ADMIN_TOKEN", token)]).unwrap();
    assert!(c.admin_enabled());
    assert_eq!(c.admin.token.as_ref().unwrap().expose(), token);
    assert!(!format!("{c:?}").contains(token), "the token is redacted");
    let e = load(&[("YWS_ADMIN_TOKEN", "short")]).unwrap_err();
    assert!(e.to_string().contains("admin.token"), "{e}");
    // A JWT key can carry the admin claim.
    assert!(load(&[("AUTH_JWT_SECRET", "s")]).unwrap().admin_enabled());
    // Where other nodes forward the console's kicks.
    assert_eq!(load(&[]).unwrap().server.advertise_address, "");
    let c = load(&[("YWS__SERVER__ADVERTISE_ADDRESS", "10.1.2.3:1234")]).unwrap();
    assert_eq!(c.server.advertise_address, "10.1.2.3:1234");
}

#[test]
fn awareness_coalescing_settings_from_the_environment() {
    let c = load(&[]).unwrap();
    assert_eq!(
        (
            c.redis.awareness_window_ms,
            c.redis.awareness_store_interval_ms
        ),
        (0, 5000)
    );
    let c = load(&[
        ("YWS__REDIS__AWARENESS_WINDOW_MS", "50"),
        ("YWS__REDIS__AWARENESS_STORE_INTERVAL_MS", "2000"),
    ])
    .unwrap();
    assert_eq!(
        (
            c.redis.awareness_window_ms,
            c.redis.awareness_store_interval_ms
        ),
        (50, 2000)
    );
    assert!(load(&[("YWS__REDIS__AWARENESS_WINDOW_MS", "1001")]).is_err());
}

#[test]
fn the_demo_is_on_by_default_only_when_standalone() {
    assert!(load(&[]).unwrap().demo_enabled());
    assert!(!load(&[("YWS__SERVER__DEMO", "false")])
        .unwrap()
        .demo_enabled());
    let redis = ("REDIS_URL", "redis://127.0.0.1:6379");
    assert!(!load(&[redis]).unwrap().demo_enabled());
    assert!(load(&[redis, ("YWS__SERVER__DEMO", "true")])
        .unwrap()
        .demo_enabled());
    assert!(load(&[("YWS__SERVER__DEMO", "maybe")]).is_err());
}

#[test]
fn slow_http_deadlines_and_limits() {
    let c = load(&[]).unwrap();
    let s = &c.server;
    assert_eq!(
        (
            s.header_timeout_ms,
            s.handshake_timeout_ms,
            s.body_timeout_ms,
            s.max_connections_per_ip
        ),
        (10_000, 10_000, 60_000, 0),
        "deadlines on, the per-IP limit off by default"
    );
    let c = load(&[
        ("YWS__SERVER__HEADER_TIMEOUT_MS", "500"),
        ("YWS__SERVER__HANDSHAKE_TIMEOUT_MS", "600"),
        ("YWS__SERVER__BODY_TIMEOUT_MS", "700"),
        ("YWS__SERVER__MAX_CONNECTIONS_PER_IP", "8"),
    ])
    .unwrap();
    let s = &c.server;
    assert_eq!(
        (
            s.header_timeout_ms,
            s.handshake_timeout_ms,
            s.body_timeout_ms,
            s.max_connections_per_ip
        ),
        (500, 600, 700, 8)
    );
    for key in [
        "YWS__SERVER__HEADER_TIMEOUT_MS",
        "YWS__SERVER__HANDSHAKE_TIMEOUT_MS",
        "YWS__SERVER__BODY_TIMEOUT_MS",
    ] {
        assert!(load(&[(key, "0")]).is_err(), "{key}=0 is refused");
    }
}

#[test]
fn max_rooms() {
    let c = load(&[]).unwrap();
    assert_eq!(c.rooms.max_rooms, 100_000);
    assert_eq!(c.rooms_settings().max_rooms, Some(100_000));
    let c = load(&[("YWS__ROOMS__MAX_ROOMS", "0")]).unwrap();
    assert_eq!(c.rooms_settings().max_rooms, None, "0: no limit");
    let c = load(&[("YWS__ROOMS__MAX_ROOMS", "3")]).unwrap();
    assert_eq!(c.rooms_settings().max_rooms, Some(3));
}

#[test]
fn awareness_and_outbox_bounds() {
    let c = load(&[]).unwrap();
    assert_eq!(c.server.outbox_bytes, 16 * 1024 * 1024);
    let limits = c.rooms_settings().room.awareness;
    assert_eq!(limits.max_clients_per_conn, 32);
    assert_eq!(limits.max_state_bytes, 64 * 1024);
    assert_eq!(limits.max_message_bytes, 4 * 1024 * 1024);
    let c = load(&[
        ("YWS__SERVER__OUTBOX_BYTES", "65536"),
        ("YWS__ROOMS__MAX_AWARENESS_STATE_BYTES", "1024"),
        ("YWS__ROOMS__MAX_AWARENESS_MESSAGE_BYTES", "8192"),
    ])
    .unwrap();
    assert_eq!(c.server.outbox_bytes, 65536);
    assert_eq!(c.rooms_settings().room.awareness.max_state_bytes, 1024);
    assert_eq!(c.rooms_settings().room.awareness.max_message_bytes, 8192);
    assert!(load(&[("YWS__SERVER__OUTBOX_BYTES", "10")]).is_err());
    assert!(load(&[("YWS__ROOMS__MAX_AWARENESS_CLIENTS_PER_CONN", "0")]).is_err());
    assert!(load(&[("YWS__ROOMS__MAX_AWARENESS_STATE_BYTES", "8")]).is_err());
    assert!(load(&[
        ("YWS__ROOMS__MAX_AWARENESS_STATE_BYTES", "4096"),
        ("YWS__ROOMS__MAX_AWARENESS_MESSAGE_BYTES", "1024"),
    ])
    .is_err());
}
