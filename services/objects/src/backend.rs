//! Builds the `object_store` client for a [`StorageLocation`]: the cloud builders fed from
//! [`StorageEnv`] (never from the process environment directly), with our timeouts and
//! retry policy applied last so they always hold.

use crate::config::{redact_url, StorageConfig, StorageEnv, StorageLocation};
use crate::error::StorageError;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};
use std::sync::Arc;
use std::time::Duration;

/// Builds the store for `config` (which must have a `url`).
pub(crate) fn build(
    config: &StorageConfig,
    env: &StorageEnv,
) -> Result<(Arc<dyn ObjectStore>, StorageLocation), StorageError> {
    let url = config.url.as_deref().unwrap_or_default();
    let open_err = |reason: String| StorageError::Open {
        url: redact_url(url),
        reason,
    };
    let location = config
        .location()
        .map_err(|e| open_err(e.to_string()))?
        .ok_or_else(|| open_err("storage.url is not set".into()))?;
    // reqwest's rustls uses the process-wide provider; ring, as for rediss:// (harmless twice).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = [
        (ClientConfigKey::Timeout, millis(config.request_timeout_ms)),
        (
            ClientConfigKey::ConnectTimeout,
            millis(config.connect_timeout_ms),
        ),
    ];
    let retry = retry_config(config);
    let store: Arc<dyn ObjectStore> = match &location {
        StorageLocation::S3 { bucket, .. } => {
            let mut b = AmazonS3Builder::new();
            for (k, v) in env.with_prefix("AWS_") {
                if let Ok(key) = k.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                    b = b.with_config(key, v);
                }
            }
            for (k, v) in &client {
                b = b.with_config(AmazonS3ConfigKey::Client(*k), v);
            }
            Arc::new(
                b.with_bucket_name(bucket)
                    .with_retry(retry)
                    .build()
                    .map_err(|e| open_err(e.to_string()))?,
            )
        }
        StorageLocation::Gcs { bucket, .. } => {
            let mut b = GoogleCloudStorageBuilder::new();
            if let Some(path) = env.get("SERVICE_ACCOUNT") {
                b = b.with_service_account_path(path);
            }
            for (k, v) in env.with_prefix("GOOGLE_") {
                if let Ok(key) = k.to_ascii_lowercase().parse::<GoogleConfigKey>() {
                    b = b.with_config(key, v);
                }
            }
            for (k, v) in &client {
                b = b.with_config(GoogleConfigKey::Client(*k), v);
            }
            Arc::new(
                b.with_bucket_name(bucket)
                    .with_retry(retry)
                    .build()
                    .map_err(|e| open_err(e.to_string()))?,
            )
        }
        StorageLocation::Azure { container, .. } => {
            let mut b = MicrosoftAzureBuilder::new();
            for (k, v) in env.with_prefix("AZURE_") {
                if let Ok(key) = k.to_ascii_lowercase().parse::<AzureConfigKey>() {
                    b = b.with_config(key, v);
                }
            }
            if let Some(endpoint) = env.get("IDENTITY_ENDPOINT") {
                b = b.with_msi_endpoint(endpoint);
            }
            for (k, v) in &client {
                b = b.with_config(AzureConfigKey::Client(*k), v);
            }
            Arc::new(
                b.with_container_name(container)
                    .with_retry(retry)
                    .build()
                    .map_err(|e| open_err(e.to_string()))?,
            )
        }
        StorageLocation::Dir { path } => {
            std::fs::create_dir_all(path)
                .map_err(|e| open_err(format!("cannot create {}: {e}", path.display())))?;
            Arc::new(
                LocalFileSystem::new_with_prefix(path)
                    .map_err(|e| open_err(e.to_string()))?
                    // Stray staging files of a killed upload are cleaned by the sweep (docs).
                    .with_automatic_cleanup(true)
                    // A written object is on disk before the caller records it anywhere.
                    .with_fsync(true),
            )
        }
    };
    Ok((store, location))
}

/// The retry policy of every request.
pub(crate) fn retry_config(config: &StorageConfig) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(config.backoff_initial_ms),
            max_backoff: Duration::from_millis(config.backoff_max_ms),
            base: 2.0,
        },
        max_retries: config.max_retries,
        retry_timeout: Duration::from_millis(config.retry_timeout_ms),
    }
}

fn millis(ms: u64) -> String {
    format!("{ms}ms")
}

/// Environment variables of a cloud store that its builder does not understand (so they
/// have no effect — e.g. `AWS_PROFILE`: profiles are not read), for a warning at startup.
pub(crate) fn ignored_env(location: &StorageLocation, env: &StorageEnv) -> Vec<String> {
    let known = |k: &str| -> bool {
        let key = k.to_ascii_lowercase();
        match location {
            StorageLocation::S3 { .. } => {
                k.starts_with("AWS_") && key.parse::<AmazonS3ConfigKey>().is_ok()
            }
            StorageLocation::Gcs { .. } => {
                k.starts_with("GOOGLE_") && key.parse::<GoogleConfigKey>().is_ok()
            }
            StorageLocation::Azure { .. } => {
                k.starts_with("AZURE_") && key.parse::<AzureConfigKey>().is_ok()
            }
            StorageLocation::Dir { .. } => true,
        }
    };
    let prefix = match location {
        StorageLocation::S3 { .. } => "AWS_",
        StorageLocation::Gcs { .. } => "GOOGLE_",
        StorageLocation::Azure { .. } => "AZURE_",
        StorageLocation::Dir { .. } => return Vec::new(),
    };
    env.with_prefix(prefix)
        .filter(|(k, _)| !known(k))
        .map(|(k, _)| k.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> StorageConfig {
        StorageConfig {
            url: Some(url.into()),
            ..StorageConfig::default()
        }
    }

    #[test]
    fn every_scheme_builds_without_network() {
        let env = StorageEnv::from_vars([
            ("AWS_REGION", "eu-west-1"),
            ("AZURE_STORAGE_ACCOUNT_NAME", "devaccount"),
            ("AZURE_STORAGE_ACCOUNT_KEY", "a2V5"),
        ]);
        for url in ["s3://b/p", "gs://b/p", "az://c/p", "azure://c"] {
            let (store, location) = build(&config(url), &env).unwrap();
            assert_ne!(location, StorageLocation::Dir { path: "/".into() });
            assert!(!store.to_string().is_empty(), "{url}");
        }
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        let (_, location) = build(&config(&format!("file://{}", nested.display())), &env).unwrap();
        assert_eq!(
            location,
            StorageLocation::Dir {
                path: nested.clone()
            }
        );
        assert!(nested.is_dir(), "the directory is created");
    }

    #[test]
    fn failures_to_open_name_the_url_without_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        let url = format!("file://{}/sub", file.display());
        let err = build(&config(&url), &StorageEnv::default()).unwrap_err();
        assert!(matches!(err, StorageError::Open { .. }), "{err}");
        assert!(err.to_string().contains("cannot create"), "{err}");
        let err = build(&config("s3://k:secret@b/p"), &StorageEnv::default()).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        // Azure needs an account.
        assert!(build(&config("az://c/p"), &StorageEnv::default()).is_err());
    }

    #[test]
    fn variables_without_effect_are_named() {
        let env = StorageEnv::from_vars([
            ("AWS_PROFILE", "dev"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AWS_ALLOW_HTTP", "true"),
            ("GOOGLE_CLOUD_PROJECT", "p"),
        ]);
        let s3 = StorageLocation::S3 {
            bucket: "b".into(),
            prefix: String::new(),
        };
        assert_eq!(ignored_env(&s3, &env), ["AWS_PROFILE"]);
        let gcs = StorageLocation::Gcs {
            bucket: "b".into(),
            prefix: String::new(),
        };
        assert_eq!(ignored_env(&gcs, &env), ["GOOGLE_CLOUD_PROJECT"]);
        let dir = StorageLocation::Dir { path: "/x".into() };
        assert!(ignored_env(&dir, &env).is_empty());
    }

    #[test]
    fn the_retry_policy_follows_the_config() {
        let c = StorageConfig {
            max_retries: 7,
            retry_timeout_ms: 1234,
            backoff_initial_ms: 5,
            backoff_max_ms: 50,
            ..StorageConfig::default()
        };
        let r = retry_config(&c);
        assert_eq!(r.max_retries, 7);
        assert_eq!(r.retry_timeout, Duration::from_millis(1234));
        assert_eq!(r.backoff.init_backoff, Duration::from_millis(5));
        assert_eq!(r.backoff.max_backoff, Duration::from_millis(50));
    }
}
