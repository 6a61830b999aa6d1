//! The `[storage]` config section ([`StorageConfig`]), where its URL points
//! ([`StorageLocation`]), and the cloud environment variables it reads ([`StorageEnv`]).
//!
//! Credentials never go in the section: S3 reads the standard `AWS_*` variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, web identity and container credentials), Google Cloud
//! Storage the `GOOGLE_*` ones (`GOOGLE_APPLICATION_CREDENTIALS`, `GOOGLE_SERVICE_ACCOUNT`),
//! Azure the `AZURE_*` ones (`AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`, …);
//! without keys each falls back to the platform's instance or workload identity.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;
use yws_config::ConfigError;

/// The section's environment names (`YWS_STORAGE_URL`; `YWS__STORAGE__…` work as usual).
pub use yws_config::env::STORAGE as ENV;

/// S3 refuses multipart parts smaller than this (except the last).
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;
/// S3 refuses parts larger than this.
pub const MAX_PART_BYTES: usize = 5 * 1024 * 1024 * 1024;

/// Object storage settings. Storage is on when `url` is set.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Where documents are stored (`YWS_STORAGE_URL`): `s3://bucket/prefix`,
    /// `gs://bucket/prefix`, `az://container/prefix` (or `azure://`), `file:///dir`.
    pub url: Option<String>,
    /// A room with no clients anywhere and no new entries for this long leaves Redis once its
    /// snapshot is in storage.
    pub evict_after_ms: u64,
    /// Timeout of one HTTP request (connecting, sending, receiving the whole body).
    pub request_timeout_ms: u64,
    /// Timeout to establish a connection.
    pub connect_timeout_ms: u64,
    /// Retries of a failed request (server errors, throttling, connection failures).
    pub max_retries: usize,
    /// No retry starts later than this after the first attempt.
    pub retry_timeout_ms: u64,
    /// First backoff between retries (doubling, with jitter) …
    pub backoff_initial_ms: u64,
    /// … up to this.
    pub backoff_max_ms: u64,
    /// Objects of at least this many bytes are written by multipart upload.
    pub multipart_threshold_bytes: usize,
    /// Size of one multipart part (S3: at least 5 MiB).
    pub multipart_part_bytes: usize,
    /// Parts of one upload in flight at once (memory: this many parts per upload).
    pub multipart_concurrency: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            url: None,
            evict_after_ms: 600_000,
            request_timeout_ms: 30_000,
            connect_timeout_ms: 5_000,
            max_retries: 5,
            retry_timeout_ms: 30_000,
            backoff_initial_ms: 100,
            backoff_max_ms: 5_000,
            multipart_threshold_bytes: 8 * 1024 * 1024,
            multipart_part_bytes: 8 * 1024 * 1024,
            multipart_concurrency: 4,
        }
    }
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("evict_after_ms", &self.evict_after_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("max_retries", &self.max_retries)
            .field("retry_timeout_ms", &self.retry_timeout_ms)
            .field("backoff_initial_ms", &self.backoff_initial_ms)
            .field("backoff_max_ms", &self.backoff_max_ms)
            .field("multipart_threshold_bytes", &self.multipart_threshold_bytes)
            .field("multipart_part_bytes", &self.multipart_part_bytes)
            .field("multipart_concurrency", &self.multipart_concurrency)
            .finish()
    }
}

/// Where the storage URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
    /// Amazon S3 or an S3-compatible server (`AWS_ENDPOINT_URL`).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix (may be empty).
        prefix: String,
    },
    /// Google Cloud Storage.
    Gcs {
        /// The bucket.
        bucket: String,
        /// The key prefix (may be empty).
        prefix: String,
    },
    /// Azure Blob Storage (account from `AZURE_STORAGE_ACCOUNT_NAME`).
    Azure {
        /// The container.
        container: String,
        /// The key prefix (may be empty).
        prefix: String,
    },
    /// A local (or mounted) directory.
    Dir {
        /// The absolute directory.
        path: PathBuf,
    },
}

impl StorageLocation {
    /// The key prefix inside the bucket (empty for a directory: the directory is the root).
    pub fn prefix(&self) -> &str {
        match self {
            StorageLocation::S3 { prefix, .. }
            | StorageLocation::Gcs { prefix, .. }
            | StorageLocation::Azure { prefix, .. } => prefix,
            StorageLocation::Dir { .. } => "",
        }
    }
}

impl StorageConfig {
    /// Whether object storage is configured.
    pub fn enabled(&self) -> bool {
        self.url.is_some()
    }

    /// How long an idle room stays in Redis.
    pub fn evict_after(&self) -> Duration {
        Duration::from_millis(self.evict_after_ms)
    }

    /// The longest one storage call may take, retries included: the last retry starts before
    /// `retry_timeout` (plus one backoff) and takes at most `request_timeout`.
    pub fn call_deadline(&self) -> Duration {
        Duration::from_millis(
            self.retry_timeout_ms
                .saturating_add(self.backoff_max_ms)
                .saturating_add(self.request_timeout_ms),
        )
    }

    /// Checks values and the URL; `env` is checked for settings the URL's store needs
    /// (an `http://` endpoint needs `AWS_ALLOW_HTTP=true`). Errors name the key.
    pub fn validate(&self, env: &StorageEnv) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.evict_after_ms < 1000 {
            return invalid("storage.evict_after_ms must be at least 1000".into());
        }
        if self.request_timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return invalid(
                "storage.request_timeout_ms and connect_timeout_ms must be at least 1".into(),
            );
        }
        if self.backoff_initial_ms == 0 || self.backoff_max_ms < self.backoff_initial_ms {
            return invalid(
                "storage.backoff_initial_ms must be at least 1 and at most backoff_max_ms".into(),
            );
        }
        if !(MIN_PART_BYTES..=MAX_PART_BYTES).contains(&self.multipart_part_bytes) {
            return invalid(format!(
                "storage.multipart_part_bytes must be between {MIN_PART_BYTES} (5 MiB) and {MAX_PART_BYTES} (5 GiB)"
            ));
        }
        if self.multipart_threshold_bytes < MIN_PART_BYTES {
            return invalid(format!(
                "storage.multipart_threshold_bytes must be at least {MIN_PART_BYTES} (5 MiB)"
            ));
        }
        if self.multipart_concurrency == 0 || self.multipart_concurrency > 64 {
            return invalid("storage.multipart_concurrency must be between 1 and 64".into());
        }
        if let Some(location) = self.location()? {
            if matches!(location, StorageLocation::S3 { .. }) {
                check_s3_env(env)?;
            }
        }
        Ok(())
    }

    /// Where `url` points; `None` when storage is off.
    pub fn location(&self) -> Result<Option<StorageLocation>, ConfigError> {
        match &self.url {
            None => Ok(None),
            Some(url) => parse_location(url).map(Some).map_err(|reason| {
                ConfigError::Invalid(format!(
                    "storage.url (YWS_STORAGE_URL) {:?}: {reason}",
                    redact_url(url)
                ))
            }),
        }
    }
}

fn parse_location(raw: &str) -> Result<StorageLocation, String> {
    const EXPECTED: &str =
        "expected s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, az://CONTAINER/PREFIX or file:///DIR";
    let url = Url::parse(raw.trim()).map_err(|e| format!("not a URL ({e}); {EXPECTED}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials do not belong in the URL: use the AWS_*, GOOGLE_* or AZURE_* environment variables".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a query or fragment is not allowed".into());
    }
    if url.scheme() == "file" {
        if url
            .host_str()
            .is_some_and(|h| !h.is_empty() && h != "localhost")
        {
            return Err("a file URL must name a local directory: file:///DIR".into());
        }
        let path = url
            .to_file_path()
            .map_err(|_| "not an absolute directory; use file:///DIR".to_string())?;
        return Ok(StorageLocation::Dir { path });
    }
    let bucket = url.host_str().unwrap_or_default().to_string();
    if bucket.is_empty() {
        return Err(format!("the bucket (or container) is missing; {EXPECTED}"));
    }
    let prefix = percent_encoding::percent_decode_str(url.path())
        .decode_utf8()
        .map_err(|_| "the prefix is not UTF-8".to_string())?
        .trim_matches('/')
        .to_string();
    crate::layout::Layout::new(&prefix).map_err(|e| e.to_string())?;
    match url.scheme() {
        "s3" => Ok(StorageLocation::S3 { bucket, prefix }),
        "gs" => Ok(StorageLocation::Gcs { bucket, prefix }),
        "az" | "azure" => Ok(StorageLocation::Azure {
            container: bucket,
            prefix,
        }),
        other => Err(format!("unsupported scheme {other:?}; {EXPECTED}")),
    }
}

fn check_s3_env(env: &StorageEnv) -> Result<(), ConfigError> {
    let invalid = |m: String| Err(ConfigError::Invalid(m));
    for var in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT", "AWS_ENDPOINT_URL_S3"] {
        let Some(endpoint) = env.get(var) else {
            continue;
        };
        let Ok(url) = Url::parse(endpoint) else {
            return invalid(format!(
                "environment variable {var}: {endpoint:?} is not a URL (http(s)://host:port)"
            ));
        };
        match url.scheme() {
            "https" => {}
            "http" if env.flag("AWS_ALLOW_HTTP") => {}
            "http" => {
                return invalid(format!(
                    "environment variable {var} is http:// but AWS_ALLOW_HTTP is not true; set AWS_ALLOW_HTTP=true for a plain-HTTP S3 server"
                ))
            }
            other => {
                return invalid(format!(
                    "environment variable {var}: scheme {other:?}, expected http or https"
                ))
            }
        }
    }
    Ok(())
}

/// A URL for logs: user info replaced, query dropped.
pub fn redact_url(url: &str) -> String {
    let (url, _) = url.split_once('?').unwrap_or((url, ""));
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// The environment variables object storage reads: every `AWS_*`, `GOOGLE_*` and `AZURE_*`
/// variable, plus `SERVICE_ACCOUNT` (GCS key file) and `IDENTITY_ENDPOINT` (Azure managed
/// identity). Captured once at startup; secrets never print.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StorageEnv {
    vars: BTreeMap<String, String>,
}

impl StorageEnv {
    /// The relevant variables of this process.
    pub fn from_process() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// The relevant variables among `vars` (tests; other sources).
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let vars = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(k, _)| relevant(k))
            .collect();
        StorageEnv { vars }
    }

    /// One variable's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Whether a variable is set to `true` (or `1`, `yes`, `on`; any case).
    pub fn flag(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "true" | "1" | "yes" | "on"
            )
        })
    }

    /// The variables whose names start with `prefix`.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.vars
            .iter()
            .filter(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn relevant(name: &str) -> bool {
    ["AWS_", "GOOGLE_", "AZURE_"]
        .iter()
        .any(|p| name.starts_with(p))
        || matches!(name, "SERVICE_ACCOUNT" | "IDENTITY_ENDPOINT")
}

/// Whether a variable's value must not be printed.
fn secret(name: &str) -> bool {
    ["SECRET", "KEY", "TOKEN", "PASSWORD", "CREDENTIAL", "SAS"]
        .iter()
        .any(|w| name.contains(w))
}

impl fmt::Debug for StorageEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (k, v) in &self.vars {
            if secret(k) {
                map.entry(k, &"<redacted>");
            } else {
                map.entry(k, v);
            }
        }
        map.finish()
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
