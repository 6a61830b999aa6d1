//! Config validation errors and the no-auth default.

use std::path::PathBuf;

use yws_auth::{AuthConfig, AuthError, Authorizer, JwtAlgorithm, Secret};

use crate::support::*;

fn invalid_key(result: Result<(), AuthError>) -> &'static str {
    match result {
        Err(AuthError::Invalid { key, .. }) => key,
        other => panic!("expected AuthError::Invalid, got {other:?}"),
    }
}

/// `validate()` and `Authorizer::new` agree on settings errors.
fn both_fail(config: &AuthConfig) -> AuthError {
    let from_new = Authorizer::new(config).expect_err("Authorizer::new must fail");
    let from_validate = config.validate().expect_err("validate must fail");
    assert_eq!(from_new.to_string(), from_validate.to_string());
    from_validate
}

#[tokio::test]
async fn default_is_no_auth() {
    let auth = Authorizer::new(&AuthConfig::default()).expect("default config is valid");
    assert!(!auth.enabled());
    let grant = expect_grant(&auth, "any room", &head("/any", &[])).await;
    assert_eq!(grant, yws_auth::Grant::anonymous());
}

#[test]
fn cookie_auth_without_allowed_origins() {
    let token_cookie = AuthConfig {
        token_cookie: Some("yws_token".to_owned()),
        ..hs_config()
    };
    assert_eq!(invalid_key(token_cookie.validate()), "allowed_origins");
    assert!(both_fail(&token_cookie)
        .to_string()
        .contains("allowed_origins"));

    let webhook_cookies = AuthConfig {
        webhook_url: Some("http://127.0.0.1:9/auth".to_owned()),
        webhook_forward_cookies: true,
        ..AuthConfig::default()
    };
    assert_eq!(invalid_key(webhook_cookies.validate()), "allowed_origins");

    let fixed = AuthConfig {
        allowed_origins: vec!["https://app.example.com".to_owned()],
        ..webhook_cookies
    };
    fixed.validate().expect("valid with an allow-list");
}

#[test]
fn both_secret_and_key_file() {
    let config = AuthConfig {
        jwt_public_key_file: Some(fixture("rsa_public.pem")),
        ..hs_config()
    };
    assert_eq!(invalid_key(config.validate()), "jwt_secret");
    both_fail(&config);
}

/// The key file is read once, by `Authorizer::new`; `validate()` checks settings only.
fn key_fails(config: &AuthConfig) -> AuthError {
    config
        .validate()
        .expect("the settings themselves are valid");
    Authorizer::new(config).expect_err("Authorizer::new must fail")
}

#[test]
fn unreadable_key_file() {
    let config = AuthConfig {
        jwt_public_key_file: Some(PathBuf::from("/nonexistent/yws/key.pem")),
        ..AuthConfig::default()
    };
    let err = key_fails(&config);
    assert!(matches!(err, AuthError::KeyFile { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/yws/key.pem"));
}

#[test]
fn unusable_key_files() {
    for (fixture_name, hint) in [
        ("rsa_private.pem", "public key"),
        ("ec_private.pem", "public key"),
        ("ec_p384_public.pem", "P-256"),
        ("README.md", "PEM"),
    ] {
        let err = key_fails(&key_config(fixture_name));
        assert!(
            matches!(err, AuthError::Key { .. }),
            "{fixture_name}: {err:?}"
        );
        assert!(err.to_string().contains(hint), "{fixture_name}: {err}");
    }
}

#[test]
fn algorithm_must_match_the_key() {
    let es_with_rsa = AuthConfig {
        jwt_algorithm: Some(JwtAlgorithm::Es256),
        ..key_config("rsa_public.pem")
    };
    assert_eq!(
        invalid_key(Authorizer::new(&es_with_rsa).map(drop)),
        "jwt_algorithm"
    );
    es_with_rsa
        .validate()
        .expect("only the key file tells its algorithm");
    let rs_with_secret = AuthConfig {
        jwt_algorithm: Some(JwtAlgorithm::Rs256),
        ..hs_config()
    };
    assert_eq!(invalid_key(rs_with_secret.validate()), "jwt_algorithm");
    let matching = AuthConfig {
        jwt_algorithm: Some(JwtAlgorithm::Es256),
        ..key_config("ec_public.pem")
    };
    Authorizer::new(&matching).expect("matching algorithm");
}

#[test]
fn other_invalid_settings() {
    let cases: Vec<(&str, AuthConfig)> = vec![
        (
            "jwt_secret",
            AuthConfig {
                jwt_secret: Some(Secret::new("")),
                ..AuthConfig::default()
            },
        ),
        (
            "jwt_issuer",
            AuthConfig {
                jwt_issuer: Some("iss".to_owned()),
                ..AuthConfig::default()
            },
        ),
        (
            "leeway_secs",
            AuthConfig {
                leeway_secs: 100_000,
                ..hs_config()
            },
        ),
        (
            "token_query_param",
            AuthConfig {
                token_query_param: String::new(),
                ..hs_config()
            },
        ),
        (
            "token_cookie",
            AuthConfig {
                token_cookie: Some("bad name".to_owned()),
                allowed_origins: vec!["https://a.example".to_owned()],
                ..hs_config()
            },
        ),
        (
            "webhook_url",
            AuthConfig {
                webhook_url: Some("https://auth.example.com/check".to_owned()),
                ..AuthConfig::default()
            },
        ),
        (
            "webhook_url",
            AuthConfig {
                webhook_forward_cookies: true,
                allowed_origins: vec!["https://a.example".to_owned()],
                ..AuthConfig::default()
            },
        ),
        (
            "webhook_timeout_ms",
            AuthConfig {
                webhook_url: Some("http://127.0.0.1:9/".to_owned()),
                webhook_timeout_ms: 0,
                ..AuthConfig::default()
            },
        ),
        (
            "webhook_forward_headers",
            AuthConfig {
                webhook_url: Some("http://127.0.0.1:9/".to_owned()),
                webhook_forward_headers: vec!["cookie".to_owned()],
                ..AuthConfig::default()
            },
        ),
        (
            "webhook_cache_max_entries",
            AuthConfig {
                webhook_url: Some("http://127.0.0.1:9/".to_owned()),
                webhook_cache_max_entries: 0,
                ..AuthConfig::default()
            },
        ),
        (
            "allowed_origins",
            AuthConfig {
                allowed_origins: vec!["*".to_owned()],
                ..AuthConfig::default()
            },
        ),
    ];
    for (expected, config) in cases {
        assert_eq!(invalid_key(config.validate()), expected, "{config:?}");
        assert!(Authorizer::new(&config).is_err(), "{expected}");
    }
}

#[test]
fn https_webhook_is_rejected_with_a_clear_message() {
    let config = AuthConfig {
        webhook_url: Some("https://auth.example.com/check".to_owned()),
        ..AuthConfig::default()
    };
    let message = both_fail(&config).to_string();
    assert!(
        message.contains("https webhook URLs are not supported"),
        "{message}"
    );
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let config = hs_config();
    let debug = format!("{config:?}");
    assert!(!debug.contains(SECRET));
    assert!(debug.contains("<redacted>"));
    let auth = authorizer(&config);
    assert!(!format!("{auth:?}").contains(SECRET));
}

#[test]
fn deserializes_from_a_config_section() {
    let config: AuthConfig = serde_json::from_value(serde_json::json!({
        "jwt_secret": SECRET,
        "jwt_issuer": "https://issuer.example",
        "token_cookie": "yws_token",
        "allowed_origins": "https://app.example.com, http://localhost:3000",
    }))
    .expect("deserialize");
    assert_eq!(config.jwt_secret.as_ref().map(Secret::expose), Some(SECRET));
    assert_eq!(config.allowed_origins.len(), 2);
    config.validate().expect("valid");
    let env: Vec<(&str, &str)> = yws_config::env::AUTH
        .vars
        .iter()
        .map(|v| (v.name, v.key))
        .collect();
    assert!(env.contains(&("AUTH_URL", "webhook_url")));
    assert!(env.contains(&("AUTH_JWT_SECRET", "jwt_secret")));
}
