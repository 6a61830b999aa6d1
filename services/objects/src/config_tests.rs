use super::*;

fn with_url(url: &str) -> StorageConfig {
    StorageConfig {
        url: Some(url.into()),
        ..StorageConfig::default()
    }
}

fn env(pairs: &[(&str, &str)]) -> StorageEnv {
    StorageEnv::from_vars(pairs.iter().copied())
}

fn error(c: &StorageConfig, e: &StorageEnv) -> String {
    c.validate(e).unwrap_err().to_string()
}

#[test]
fn defaults_are_valid_and_off() {
    let c = StorageConfig::default();
    assert!(c.validate(&StorageEnv::default()).is_ok());
    assert!(!c.enabled());
    assert_eq!(c.location().unwrap(), None);
    assert_eq!(c.evict_after(), Duration::from_secs(600));
    assert_eq!(c.multipart_threshold_bytes, 8 * 1024 * 1024);
    // retry window + one backoff + one request
    assert_eq!(
        c.call_deadline(),
        Duration::from_millis(30_000 + 5_000 + 30_000)
    );
}

#[test]
fn urls_name_their_store() {
    let loc = |u: &str| with_url(u).location().unwrap().unwrap();
    assert_eq!(
        loc("s3://docs/prod/yws/"),
        StorageLocation::S3 {
            bucket: "docs".into(),
            prefix: "prod/yws".into()
        }
    );
    assert_eq!(
        loc("s3://docs"),
        StorageLocation::S3 {
            bucket: "docs".into(),
            prefix: "".into()
        }
    );
    assert_eq!(
        loc("gs://b/p"),
        StorageLocation::Gcs {
            bucket: "b".into(),
            prefix: "p".into()
        }
    );
    for az in ["az://c/p", "azure://c/p"] {
        assert_eq!(
            loc(az),
            StorageLocation::Azure {
                container: "c".into(),
                prefix: "p".into()
            }
        );
    }
    assert_eq!(
        loc("file:///var/lib/yws"),
        StorageLocation::Dir {
            path: "/var/lib/yws".into()
        }
    );
    assert_eq!(loc("s3://b/my%20docs").prefix(), "my docs");
    assert_eq!(loc("file:///var/lib/yws").prefix(), "");
    // The URL parser resolves dot segments.
    assert_eq!(
        loc("file:///a/../b"),
        StorageLocation::Dir { path: "/b".into() }
    );
}

#[test]
fn bad_urls_are_refused_with_the_key_and_the_fix() {
    let none = StorageEnv::default();
    for (url, says) in [
        ("docs", "not a URL"),
        ("http://host/bucket", "unsupported scheme \"http\""),
        ("s3:///prefix", "bucket"),
        (
            "s3://key:secret@bucket/p",
            "credentials do not belong in the URL",
        ),
        ("s3://bucket/p?region=x", "query"),
        ("file://otherhost/dir", "local directory"),
        ("s3://bucket/a//b", "empty"),
    ] {
        let message = match with_url(url).validate(&none) {
            Err(e) => e.to_string(),
            Ok(()) => panic!("{url} accepted"),
        };
        assert!(
            message.contains("storage.url (YWS_STORAGE_URL)"),
            "{url}: {message}"
        );
        assert!(message.contains(says), "{url}: {message}");
        assert!(
            !message.contains("secret@"),
            "{url}: credentials leak: {message}"
        );
    }
}

#[test]
fn plain_http_endpoints_need_allow_http() {
    let c = with_url("s3://b/p");
    let local = env(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")]);
    let message = error(&c, &local);
    assert!(message.contains("AWS_ALLOW_HTTP"), "{message}");
    assert!(c
        .validate(&env(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AWS_ALLOW_HTTP", "true")
        ]))
        .is_ok());
    assert!(c
        .validate(&env(&[("AWS_ENDPOINT_URL", "https://s3.example")]))
        .is_ok());
    assert!(error(&c, &env(&[("AWS_ENDPOINT_URL", "s3.example")])).contains("not a URL"));
    // Only S3 reads AWS_* variables.
    assert!(with_url("file:///tmp/x").validate(&local).is_ok());
}

#[test]
fn numbers_are_checked() {
    let none = StorageEnv::default();
    let bad = |c: StorageConfig| c.validate(&none).is_err();
    assert!(bad(StorageConfig {
        evict_after_ms: 10,
        ..StorageConfig::default()
    }));
    assert!(bad(StorageConfig {
        request_timeout_ms: 0,
        ..StorageConfig::default()
    }));
    assert!(bad(StorageConfig {
        backoff_initial_ms: 10_000,
        ..StorageConfig::default()
    }));
    assert!(bad(StorageConfig {
        multipart_part_bytes: 1024,
        ..StorageConfig::default()
    }));
    assert!(bad(StorageConfig {
        multipart_threshold_bytes: 1024,
        ..StorageConfig::default()
    }));
    assert!(bad(StorageConfig {
        multipart_concurrency: 0,
        ..StorageConfig::default()
    }));
    assert!(StorageConfig {
        max_retries: 0,
        ..StorageConfig::default()
    }
    .validate(&none)
    .is_ok());
}

#[test]
fn the_section_deserializes_and_rejects_unknown_keys() {
    let c: StorageConfig = serde_json::from_value(serde_json::json!({
        "url": "s3://b/p", "evict_after_ms": 5000, "max_retries": 2
    }))
    .unwrap();
    assert_eq!(c.url.as_deref(), Some("s3://b/p"));
    assert_eq!((c.evict_after_ms, c.max_retries), (5000, 2));
    assert!(serde_json::from_value::<StorageConfig>(serde_json::json!({"ur": "x"})).is_err());
    for var in ENV.vars {
        let value = serde_json::json!({ var.key: "s3://b" });
        assert!(
            serde_json::from_value::<StorageConfig>(value).is_ok(),
            "{} -> {}",
            var.name,
            var.key
        );
    }
    assert_eq!(ENV.section, "storage");
}

#[test]
fn the_section_loads_from_env_names_through_yws_config() {
    use yws_config::Loader;
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Top {
        storage: StorageConfig,
    }
    let tables = [ENV];
    let load = |pairs: &[(&str, &str)]| -> Top {
        Loader::new(&tables)
            .with_env(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
            .load()
            .unwrap()
    };
    let top = load(&[("YWS_STORAGE_URL", "s3://a/p")]);
    assert_eq!(top.storage.url.as_deref(), Some("s3://a/p"));
    let top = load(&[
        ("YWS_STORAGE_URL", "s3://a/p"),
        ("YWS__STORAGE__URL", "gs://b/q"),
        ("YWS__STORAGE__EVICT_AFTER_MS", "2000"),
    ]);
    assert_eq!(top.storage.url.as_deref(), Some("gs://b/q"), "YWS__ wins");
    assert_eq!(top.storage.evict_after_ms, 2000);
}

#[test]
fn secrets_never_print() {
    let e = env(&[
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "hunter2"),
        ("AWS_SESSION_TOKEN", "tok3n"),
        ("AZURE_STORAGE_ACCOUNT_KEY", "azkey"),
        ("GOOGLE_SERVICE_ACCOUNT_KEY", "{json}"),
        ("AWS_REGION", "eu-west-1"),
        ("PATH", "/usr/bin"),
    ]);
    let printed = format!("{e:?}");
    for secret in ["AKIAEXAMPLE", "hunter2", "tok3n", "azkey", "{json}"] {
        assert!(!printed.contains(secret), "{printed}");
    }
    assert!(printed.contains("eu-west-1"), "{printed}");
    assert!(
        !printed.contains("PATH"),
        "only storage variables are kept: {printed}"
    );
    let c = with_url("s3://user:pw@bucket/p");
    assert!(!format!("{c:?}").contains("pw"), "{c:?}");
    assert_eq!(redact_url("s3://k:s@b/p?sig=1"), "s3://***@b/p");
}
