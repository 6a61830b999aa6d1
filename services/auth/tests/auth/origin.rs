//! The `Origin` allow-list (cross-site WebSocket hijacking).

use yws_auth::{AuthConfig, RefusalReason};

use crate::support::*;

fn cookie_config() -> AuthConfig {
    AuthConfig {
        token_cookie: Some("yws_token".to_owned()),
        allowed_origins: vec![
            "https://app.example.com".to_owned(),
            "http://localhost:3000".to_owned(),
        ],
        ..hs_config()
    }
}

fn cookie_head(origin: Option<&str>) -> http::request::Parts {
    let cookie = format!("yws_token={}", hs256(&claims(&["room"])));
    let mut headers = vec![("cookie", cookie.as_str())];
    if let Some(origin) = origin {
        headers.push(("origin", origin));
    }
    head("/room", &headers)
}

#[tokio::test]
async fn allowed_origin_passes() {
    let auth = authorizer(&cookie_config());
    expect_grant(&auth, "room", &cookie_head(Some("https://app.example.com"))).await;
    expect_grant(&auth, "room", &cookie_head(Some("http://localhost:3000"))).await;
    expect_grant(
        &auth,
        "room",
        &cookie_head(Some("HTTPS://APP.EXAMPLE.COM:443")),
    )
    .await;
}

#[tokio::test]
async fn bad_origin_is_403_even_with_a_valid_token() {
    let auth = authorizer(&cookie_config());
    for origin in [
        "https://evil.example.com",
        "http://app.example.com",
        "https://app.example.com.evil.com",
        "null",
    ] {
        let refusal = expect_refusal(&auth, "room", &cookie_head(Some(origin))).await;
        assert_eq!(refusal.reason, RefusalReason::BadOrigin, "{origin}");
        assert_eq!(refusal.status, 403);
    }
}

#[tokio::test]
async fn missing_origin_is_not_a_browser_and_passes() {
    let auth = authorizer(&cookie_config());
    expect_grant(&auth, "room", &cookie_head(None)).await;
}

#[tokio::test]
async fn origin_checked_before_calling_the_webhook() {
    let server = WebhookServer::start(Behaviour::Answer(200, "")).await;
    let auth = authorizer(&AuthConfig {
        webhook_forward_cookies: true,
        allowed_origins: vec!["https://app.example.com".to_owned()],
        ..server.config()
    });
    let evil = head(
        "/room",
        &[("cookie", "session=1"), ("origin", "https://evil.example")],
    );
    let refusal = expect_refusal(&auth, "room", &evil).await;
    assert_eq!(refusal.reason, RefusalReason::BadOrigin);
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn origin_list_alone_enables_the_check() {
    let auth = authorizer(&AuthConfig {
        allowed_origins: vec!["https://app.example.com".to_owned()],
        ..AuthConfig::default()
    });
    assert!(auth.enabled());
    expect_grant(&auth, "room", &head("/room", &[])).await;
    let refusal = expect_refusal(
        &auth,
        "room",
        &head("/room", &[("origin", "https://x.example")]),
    )
    .await;
    assert_eq!(refusal.reason, RefusalReason::BadOrigin);
}
