//! JWT mode: token sources, every refusal path, claims.

use std::time::{Duration, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use yws_auth::{Access, AuthConfig, RefusalReason};

use crate::support::*;

#[tokio::test]
async fn query_token_grants_read_write_with_expiry_and_subject() {
    let auth = authorizer(&hs_config());
    assert!(auth.enabled());
    let mut claims = claims(&["room"]);
    claims["exp"] = json!(2_000_000_000u64);
    let grant = expect_grant(&auth, "room", &with_query_token(&hs256(&claims))).await;
    assert_eq!(grant.access, Access::ReadWrite);
    assert_eq!(grant.subject.as_deref(), Some("user-1"));
    // exp + the default 30 s leeway: when the gateway closes with 4401.
    assert_eq!(
        grant.expires_at,
        Some(UNIX_EPOCH + Duration::from_secs(2_000_000_030))
    );
}

#[tokio::test]
async fn query_token_is_percent_decoded_and_param_name_configurable() {
    let config = AuthConfig {
        token_query_param: "auth".to_owned(),
        ..hs_config()
    };
    let auth = authorizer(&config);
    let token = hs256(&claims(&["room"])).replace('.', "%2E");
    expect_grant(
        &auth,
        "room",
        &head(&format!("/room?x=1&auth={token}"), &[]),
    )
    .await;
    let refusal = expect_refusal(&auth, "room", &head(&format!("/room?token={token}"), &[])).await;
    assert_eq!(refusal.reason, RefusalReason::MissingToken);
}

#[tokio::test]
async fn bearer_header_token() {
    let auth = authorizer(&hs_config());
    let bearer = format!("Bearer {}", hs256(&claims(&["room"])));
    expect_grant(&auth, "room", &head("/room", &[("authorization", &bearer)])).await;
}

#[tokio::test]
async fn cookie_token_when_configured() {
    let config = AuthConfig {
        token_cookie: Some("yws_token".to_owned()),
        allowed_origins: vec!["https://app.example.com".to_owned()],
        ..hs_config()
    };
    let cookie = format!("theme=dark; yws_token={}", hs256(&claims(&["room"])));
    let auth = authorizer(&config);
    expect_grant(&auth, "room", &head("/room", &[("cookie", &cookie)])).await;
    // Without a configured cookie name, cookies are not a token source.
    let refusal = expect_refusal(
        &authorizer(&hs_config()),
        "room",
        &head("/room", &[("cookie", &cookie)]),
    )
    .await;
    assert_eq!(refusal.reason, RefusalReason::MissingToken);
}

#[tokio::test]
async fn missing_token_is_401() {
    let refusal = expect_refusal(&authorizer(&hs_config()), "room", &head("/room", &[])).await;
    assert_eq!(refusal.reason, RefusalReason::MissingToken);
    assert_eq!(refusal.status, 401);
    assert_eq!(refusal.reason.as_str(), "missing_token");
}

#[tokio::test]
async fn malformed_token_is_bad_token() {
    let auth = authorizer(&hs_config());
    for token in ["abc", "a.b", "a.b.c", "....."] {
        let refusal = expect_refusal(&auth, "room", &with_query_token(token)).await;
        assert_eq!(refusal.reason, RefusalReason::BadToken, "{token}");
        assert_eq!(refusal.status, 401);
    }
}

#[tokio::test]
async fn hs256_bad_signature() {
    let token = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"another-secret-another-secret-00"),
        &claims(&["room"]),
    );
    let refusal =
        expect_refusal(&authorizer(&hs_config()), "room", &with_query_token(&token)).await;
    assert_eq!(refusal.reason, RefusalReason::BadSignature);
    assert_eq!(refusal.status, 401);
}

#[tokio::test]
async fn rs256_good_and_bad_signature() {
    let auth = authorizer(&key_config("rsa_public.pem"));
    let good = rs256("rsa_private.pem", &claims(&["room"]));
    expect_grant(&auth, "room", &with_query_token(&good)).await;
    // The same key as PKCS#1 `RSA PUBLIC KEY`.
    let pkcs1 = authorizer(&key_config("rsa_public_pkcs1.pem"));
    expect_grant(&pkcs1, "room", &with_query_token(&good)).await;

    let forged = rs256("rsa_other_private.pem", &claims(&["room"]));
    let refusal = expect_refusal(&auth, "room", &with_query_token(&forged)).await;
    assert_eq!(refusal.reason, RefusalReason::BadSignature);
}

#[tokio::test]
async fn es256_key() {
    let auth = authorizer(&key_config("ec_public.pem"));
    expect_grant(&auth, "room", &with_query_token(&es256(&claims(&["room"])))).await;
    let rs = rs256("rsa_private.pem", &claims(&["room"]));
    let refusal = expect_refusal(&auth, "room", &with_query_token(&rs)).await;
    assert_eq!(refusal.reason, RefusalReason::WrongAlgorithm);
}

#[tokio::test]
async fn hs256_token_against_rs256_config_is_wrong_algorithm() {
    // The classic key-confusion attack: HMAC-sign with the (public) RSA key as the secret.
    let public_pem = std::fs::read(fixture("rsa_public.pem")).expect("fixture");
    let token = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(&public_pem),
        &claims(&["room"]),
    );
    let auth = authorizer(&key_config("rsa_public.pem"));
    let refusal = expect_refusal(&auth, "room", &with_query_token(&token)).await;
    assert_eq!(refusal.reason, RefusalReason::WrongAlgorithm);
    assert_eq!(refusal.status, 401);
}

#[tokio::test]
async fn rs256_token_against_hs256_config_is_wrong_algorithm() {
    let token = rs256("rsa_private.pem", &claims(&["room"]));
    let refusal =
        expect_refusal(&authorizer(&hs_config()), "room", &with_query_token(&token)).await;
    assert_eq!(refusal.reason, RefusalReason::WrongAlgorithm);
}

#[tokio::test]
async fn alg_none_is_wrong_algorithm() {
    let auth = authorizer(&hs_config());
    for alg in ["none", "None", "NONE"] {
        let token = raw_token(&json!({ "alg": alg, "typ": "JWT" }), &claims(&["room"]), "");
        let refusal = expect_refusal(&auth, "room", &with_query_token(&token)).await;
        assert_eq!(refusal.reason, RefusalReason::WrongAlgorithm, "{alg}");
    }
}

#[tokio::test]
async fn expired_beyond_leeway_is_refused_within_leeway_accepted() {
    let auth = authorizer(&hs_config());
    let mut old = claims(&["room"]);
    old["exp"] = json!(now() - 3600);
    let refusal = expect_refusal(&auth, "room", &with_query_token(&hs256(&old))).await;
    assert_eq!(refusal.reason, RefusalReason::Expired);
    assert_eq!(refusal.status, 401);

    let mut just_expired = claims(&["room"]);
    just_expired["exp"] = json!(now() - 5);
    expect_grant(&auth, "room", &with_query_token(&hs256(&just_expired))).await;

    let strict = authorizer(&AuthConfig {
        leeway_secs: 0,
        ..hs_config()
    });
    let mut expired = claims(&["room"]);
    expired["exp"] = json!(now() - 120);
    let refusal = expect_refusal(&strict, "room", &with_query_token(&hs256(&expired))).await;
    assert_eq!(refusal.reason, RefusalReason::Expired);
}

#[tokio::test]
async fn not_yet_valid() {
    let auth = authorizer(&hs_config());
    let mut future = claims(&["room"]);
    future["nbf"] = json!(now() + 3600);
    let refusal = expect_refusal(&auth, "room", &with_query_token(&hs256(&future))).await;
    assert_eq!(refusal.reason, RefusalReason::NotYetValid);
    assert_eq!(refusal.status, 401);

    let mut started = claims(&["room"]);
    started["nbf"] = json!(now() - 10);
    expect_grant(&auth, "room", &with_query_token(&hs256(&started))).await;
}

#[tokio::test]
async fn exp_required_unless_disabled() {
    let no_exp = json!({ "rooms": ["room"] });
    let refusal = expect_refusal(
        &authorizer(&hs_config()),
        "room",
        &with_query_token(&hs256(&no_exp)),
    )
    .await;
    assert_eq!(refusal.reason, RefusalReason::BadToken);

    let lenient = authorizer(&AuthConfig {
        jwt_require_exp: false,
        ..hs_config()
    });
    let grant = expect_grant(&lenient, "room", &with_query_token(&hs256(&no_exp))).await;
    assert_eq!(grant.expires_at, None);
    assert_eq!(grant.subject, None);
}

#[tokio::test]
async fn issuer_is_checked_when_configured() {
    let auth = authorizer(&AuthConfig {
        jwt_issuer: Some("https://issuer.example".to_owned()),
        ..hs_config()
    });
    let mut claims = claims(&["room"]);
    let refusal_missing = expect_refusal(&auth, "room", &with_query_token(&hs256(&claims))).await;
    assert_eq!(refusal_missing.reason, RefusalReason::WrongIssuer);

    claims["iss"] = json!("https://evil.example");
    let refusal_wrong = expect_refusal(&auth, "room", &with_query_token(&hs256(&claims))).await;
    assert_eq!(refusal_wrong.reason, RefusalReason::WrongIssuer);
    assert_eq!(refusal_wrong.status, 401);

    claims["iss"] = json!("https://issuer.example");
    expect_grant(&auth, "room", &with_query_token(&hs256(&claims))).await;
}

#[tokio::test]
async fn audience_is_checked() {
    let auth = authorizer(&AuthConfig {
        jwt_audience: Some("yws".to_owned()),
        ..hs_config()
    });
    let mut claims = claims(&["room"]);
    let refusal_missing = expect_refusal(&auth, "room", &with_query_token(&hs256(&claims))).await;
    assert_eq!(refusal_missing.reason, RefusalReason::WrongAudience);

    claims["aud"] = json!(["other-service"]);
    let refusal_wrong = expect_refusal(&auth, "room", &with_query_token(&hs256(&claims))).await;
    assert_eq!(refusal_wrong.reason, RefusalReason::WrongAudience);
    assert_eq!(refusal_wrong.status, 401);

    claims["aud"] = json!(["other-service", "yws"]);
    expect_grant(&auth, "room", &with_query_token(&hs256(&claims))).await;
    claims["aud"] = json!("yws");
    expect_grant(&auth, "room", &with_query_token(&hs256(&claims))).await;

    // A token meant for some audience is refused when none is configured (RFC 7519 §4.1.3).
    let refusal_unconfigured = expect_refusal(
        &authorizer(&hs_config()),
        "room",
        &with_query_token(&hs256(&claims)),
    )
    .await;
    assert_eq!(refusal_unconfigured.reason, RefusalReason::WrongAudience);
}

#[tokio::test]
async fn rooms_exact_names() {
    let auth = authorizer(&hs_config());
    let token = hs256(&claims(&["doc-1", "doc-2"]));
    expect_grant(&auth, "doc-2", &with_query_token(&token)).await;
    let refusal = expect_refusal(&auth, "doc-10", &with_query_token(&token)).await;
    assert_eq!(refusal.reason, RefusalReason::RoomNotAllowed);
    assert_eq!(refusal.status, 403);
}

#[tokio::test]
async fn rooms_prefix_patterns() {
    let auth = authorizer(&hs_config());
    let token = hs256(&claims(&["team-a/*"]));
    expect_grant(&auth, "team-a/notes", &with_query_token(&token)).await;
    expect_grant(&auth, "team-a/deep/doc", &with_query_token(&token)).await;
    for room in ["team-b/notes", "team-a", "team-ab/x"] {
        let refusal = expect_refusal(&auth, room, &with_query_token(&token)).await;
        assert_eq!(refusal.reason, RefusalReason::RoomNotAllowed, "{room}");
    }
    let all = hs256(&claims(&["*"]));
    expect_grant(&auth, "anything/at all", &with_query_token(&all)).await;
}

#[tokio::test]
async fn token_without_rooms_claim_is_allowed_no_room() {
    let auth = authorizer(&hs_config());
    let token = hs256(&json!({ "exp": now() + 60 }));
    let refusal = expect_refusal(&auth, "room", &with_query_token(&token)).await;
    assert_eq!(refusal.reason, RefusalReason::RoomNotAllowed);
}

#[tokio::test]
async fn access_claim() {
    let auth = authorizer(&hs_config());
    let mut claims = claims(&["room"]);
    claims["access"] = json!("read");
    let read = expect_grant(&auth, "room", &with_query_token(&hs256(&claims))).await;
    assert_eq!(read.access, Access::ReadOnly);

    claims["access"] = json!("rw");
    let rw = expect_grant(&auth, "room", &with_query_token(&hs256(&claims))).await;
    assert_eq!(rw.access, Access::ReadWrite);

    claims["access"] = json!("admin");
    let refusal = expect_refusal(&auth, "room", &with_query_token(&hs256(&claims))).await;
    assert_eq!(refusal.reason, RefusalReason::BadToken);
}

#[tokio::test]
async fn refusal_messages_are_short_and_do_not_echo_the_token() {
    let auth = authorizer(&hs_config());
    let token = hs256(&claims(&["other"]));
    let refusal = expect_refusal(&auth, "room", &with_query_token(&token)).await;
    assert!(refusal.message.len() < 64);
    assert!(!refusal.message.contains(&token));
    assert!(!refusal.to_string().contains(SECRET));
}
