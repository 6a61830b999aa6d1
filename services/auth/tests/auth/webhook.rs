//! Webhook mode against a real local hyper server: answers, denials, failures (fail closed),
//! the cache, and the JWT + webhook combination.

use serde_json::json;
use tokio::net::TcpListener;
use yws_auth::{Access, AuthConfig, RefusalReason};

use crate::support::*;

#[tokio::test]
async fn empty_2xx_grants_read_write_and_forwards_the_request() {
    let server = WebhookServer::start(Behaviour::Answer(200, "")).await;
    let config = AuthConfig {
        webhook_forward_headers: vec!["x-user".to_owned(), "authorization".to_owned()],
        webhook_forward_cookies: true,
        allowed_origins: vec!["https://app.example.com".to_owned()],
        ..server.config()
    };
    let auth = authorizer(&config);
    assert!(auth.enabled());
    let head = head(
        "/team%2Fdoc?token=opaque-token",
        &[
            ("x-user", "alice"),
            ("x-secret", "not forwarded"),
            ("cookie", "session=abc"),
            ("origin", "https://app.example.com"),
        ],
    );
    let grant = expect_grant(&auth, "team/doc", &head).await;
    assert_eq!(grant.access, Access::ReadWrite);
    assert_eq!(grant.expires_at, None);
    assert_eq!(server.hits(), 1);
    assert_eq!(
        server.last_body(),
        Some(json!({
            "operation": "room",
            "room": "team/doc",
            "headers": { "x-user": "alice" },
            "cookie": "session=abc",
            "token": "opaque-token",
        }))
    );
}

#[tokio::test]
async fn cookies_are_not_forwarded_unless_configured() {
    let server = WebhookServer::start(Behaviour::Answer(204, "")).await;
    let auth = authorizer(&server.config());
    expect_grant(&auth, "doc", &head("/doc", &[("cookie", "session=abc")])).await;
    assert_eq!(
        server.last_body(),
        Some(json!({ "operation": "room", "room": "doc", "headers": {} }))
    );
}

#[tokio::test]
async fn read_answer_with_expiry_and_subject() {
    let server = WebhookServer::start(Behaviour::Answer(
        200,
        r#"{"access":"read","expires_in_secs":600,"subject":"bob"}"#,
    ))
    .await;
    let grant = expect_grant(&authorizer(&server.config()), "doc", &head("/doc", &[])).await;
    assert_eq!(grant.access, Access::ReadOnly);
    assert!(grant.expires_at.is_some());
    assert_eq!(grant.subject.as_deref(), Some("bob"));
}

#[tokio::test]
async fn rw_answer() {
    let server = WebhookServer::start(Behaviour::Answer(200, r#"{"access":"rw"}"#)).await;
    let grant = expect_grant(&authorizer(&server.config()), "doc", &head("/doc", &[])).await;
    assert_eq!(grant.access, Access::ReadWrite);
}

#[tokio::test]
async fn forbidden_is_403() {
    let server = WebhookServer::start(Behaviour::Answer(403, "nope")).await;
    let refusal = expect_refusal(&authorizer(&server.config()), "doc", &head("/doc", &[])).await;
    assert_eq!(refusal.reason, RefusalReason::WebhookDenied);
    assert_eq!(refusal.status, 403);
}

#[tokio::test]
async fn unauthorized_is_401() {
    let server = WebhookServer::start(Behaviour::Answer(401, "")).await;
    let refusal = expect_refusal(&authorizer(&server.config()), "doc", &head("/doc", &[])).await;
    assert_eq!(refusal.reason, RefusalReason::WebhookDenied);
    assert_eq!(refusal.status, 401);
}

#[tokio::test]
async fn server_error_is_503() {
    let server = WebhookServer::start(Behaviour::Answer(500, "boom")).await;
    let refusal = expect_refusal(&authorizer(&server.config()), "doc", &head("/doc", &[])).await;
    assert_eq!(refusal.reason, RefusalReason::WebhookUnavailable);
    assert_eq!(refusal.status, 503);
}

#[tokio::test]
async fn redirect_and_unusable_2xx_bodies_are_503() {
    for (status, body) in [(302, ""), (200, "yes"), (200, r#"{"access":"admin"}"#)] {
        let server = WebhookServer::start(Behaviour::Answer(status, body)).await;
        let refusal =
            expect_refusal(&authorizer(&server.config()), "doc", &head("/doc", &[])).await;
        assert_eq!(
            refusal.reason,
            RefusalReason::WebhookUnavailable,
            "{status} {body}"
        );
        assert_eq!(refusal.status, 503);
    }
}

#[tokio::test]
async fn timeout_is_503() {
    let server = WebhookServer::start(Behaviour::Hang).await;
    let config = AuthConfig {
        webhook_timeout_ms: 100,
        ..server.config()
    };
    let refusal = expect_refusal(&authorizer(&config), "doc", &head("/doc", &[])).await;
    assert_eq!(refusal.reason, RefusalReason::WebhookUnavailable);
    assert_eq!(refusal.status, 503);
}

#[tokio::test]
async fn connection_refused_is_503() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/auth", listener.local_addr().expect("addr"));
    drop(listener);
    let config = AuthConfig {
        webhook_url: Some(url),
        ..AuthConfig::default()
    };
    let refusal = expect_refusal(&authorizer(&config), "doc", &head("/doc", &[])).await;
    assert_eq!(refusal.reason, RefusalReason::WebhookUnavailable);
}

#[tokio::test]
async fn grants_are_cached_per_credentials_and_room() {
    let server = WebhookServer::start(Behaviour::Answer(200, r#"{"access":"read"}"#)).await;
    let config = AuthConfig {
        webhook_cache_ttl_ms: 60_000,
        webhook_cache_max_entries: 100,
        ..server.config()
    };
    let auth = authorizer(&config);
    let alice = head("/doc?token=alice", &[]);
    let first = expect_grant(&auth, "doc", &alice).await;
    let second = expect_grant(&auth, "doc", &alice).await;
    assert_eq!(first, second);
    assert_eq!(server.hits(), 1, "second call served from the cache");

    expect_grant(&auth, "doc", &head("/doc?token=bob", &[])).await;
    assert_eq!(server.hits(), 2, "other credentials are not a cache hit");
    expect_grant(&auth, "other-doc", &alice).await;
    assert_eq!(server.hits(), 3, "other room is not a cache hit");
}

#[tokio::test]
async fn no_cache_by_default_and_denials_never_cached() {
    let ok = WebhookServer::start(Behaviour::Answer(200, "")).await;
    let auth = authorizer(&ok.config());
    expect_grant(&auth, "doc", &head("/doc", &[])).await;
    expect_grant(&auth, "doc", &head("/doc", &[])).await;
    assert_eq!(ok.hits(), 2);

    let denied = WebhookServer::start(Behaviour::Answer(403, "")).await;
    let auth = authorizer(&AuthConfig {
        webhook_cache_ttl_ms: 60_000,
        ..denied.config()
    });
    expect_refusal(&auth, "doc", &head("/doc", &[])).await;
    expect_refusal(&auth, "doc", &head("/doc", &[])).await;
    assert_eq!(denied.hits(), 2);
}

#[tokio::test]
async fn jwt_and_webhook_both_must_allow_most_restrictive_access_wins() {
    let server = WebhookServer::start(Behaviour::Answer(200, r#"{"access":"read"}"#)).await;
    let config = AuthConfig {
        webhook_url: Some(server.url.clone()),
        ..hs_config()
    };
    let auth = authorizer(&config);
    let token = hs256(&claims(&["doc"]));
    let grant = expect_grant(&auth, "doc", &with_query_token(&token)).await;
    assert_eq!(grant.access, Access::ReadOnly);
    assert_eq!(grant.subject.as_deref(), Some("user-1"));
    assert!(grant.expires_at.is_some(), "the JWT's expiry is kept");
    assert_eq!(server.last_body().expect("body")["token"], json!(token));

    // A JWT failure refuses without calling the webhook.
    let hits = server.hits();
    let refusal = expect_refusal(&auth, "other", &with_query_token(&token)).await;
    assert_eq!(refusal.reason, RefusalReason::RoomNotAllowed);
    let refusal = expect_refusal(&auth, "doc", &head("/doc", &[])).await;
    assert_eq!(refusal.reason, RefusalReason::MissingToken);
    assert_eq!(server.hits(), hits);
}

#[tokio::test]
async fn jwt_passes_but_webhook_denies() {
    let server = WebhookServer::start(Behaviour::Answer(403, "")).await;
    let auth = authorizer(&AuthConfig {
        webhook_url: Some(server.url.clone()),
        ..hs_config()
    });
    let token = hs256(&claims(&["doc"]));
    let refusal = expect_refusal(&auth, "doc", &with_query_token(&token)).await;
    assert_eq!(refusal.reason, RefusalReason::WebhookDenied);
    assert_eq!(refusal.status, 403);
}
