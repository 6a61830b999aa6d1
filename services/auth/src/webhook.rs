//! The auth webhook: `POST` the room and the chosen request credentials to the app, which
//! answers with the access it grants.
//!
//! Request body (JSON): `{"operation": "room", "room": "...", "headers": {"<name>": "<value>",
//! ...}, "cookie": "<raw Cookie header>", "token": "<token>"}` — `operation` is `"room"` (a
//! join or a document API request on `room`) or `"list_rooms"` (deployment-wide: no `room`
//! field, and the answer must carry `"admin": true` to allow it); `headers` holds the configured
//! `webhook_forward_headers` that are present (lowercase names), `cookie` is sent only with
//! `webhook_forward_cookies`, `token` only when the request carries one (query, bearer or
//! cookie, as for JWT).
//!
//! Answer: 2xx with `{"access": "rw" | "read", "expires_in_secs": N, "subject": "...",
//! "admin": true}` (all optional; an empty body means `rw`, no expiry, no admin) → grant (for
//! `list_rooms` only with `"admin": true`, else 403); 401/403 → refusal with that status;
//! anything else, an unparsable 2xx body, a transport error or the timeout → 503 (fail closed)
//! and a `warn` log line. Plain `http://` only: this crate carries no TLS client.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, USER_AGENT};
use http::request::Parts;
use http::{HeaderName, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::cache::GrantCache;
use crate::credentials::raw_cookie;
use crate::grant::{Access, Grant, Refusal, RefusalReason};
use crate::operation::Operation;

/// Largest webhook answer body read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Idle keep-alive connections kept to the webhook host.
const MAX_IDLE_CONNECTIONS: usize = 16;
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Serialize)]
struct WebhookRequest<'a> {
    operation: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<&'a str>,
    headers: BTreeMap<&'a str, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cookie: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
}

#[derive(Debug, Default, Deserialize)]
struct WebhookAnswer {
    #[serde(default)]
    access: Option<String>,
    #[serde(default)]
    expires_in_secs: Option<u64>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    admin: Option<bool>,
}

/// What the webhook client needs from the `auth` section (checked by
/// [`AuthConfig::validate`](crate::AuthConfig::validate)).
#[derive(Debug, Clone)]
pub(crate) struct WebhookSettings {
    /// Where to `POST` (`webhook_url`, plain `http://`).
    pub(crate) uri: Uri,
    /// Per call, connecting included (`webhook_timeout_ms`).
    pub(crate) timeout: Duration,
    /// Request headers sent along (`webhook_forward_headers`).
    pub(crate) forward_headers: Vec<HeaderName>,
    /// Send the raw `Cookie` header (`webhook_forward_cookies`).
    pub(crate) forward_cookies: bool,
    /// How long a grant is reused; zero: no cache (`webhook_cache_ttl_ms`).
    pub(crate) cache_ttl: Duration,
    /// Bound of the grant cache (`webhook_cache_max_entries`).
    pub(crate) cache_max_entries: usize,
    /// Calls in flight at once (`webhook_max_concurrency`).
    pub(crate) max_concurrency: usize,
}

/// The webhook client with its cache and concurrency limit.
pub(crate) struct Webhook {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: Uri,
    /// `host[:port]/path`: what logs show (never the query, which may hold a key).
    log_target: String,
    timeout: Duration,
    forward_headers: Vec<HeaderName>,
    forward_cookies: bool,
    cache: Option<GrantCache>,
    permits: Semaphore,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("target", &self.log_target)
            .field("timeout", &self.timeout)
            .field("forward_headers", &self.forward_headers)
            .field("forward_cookies", &self.forward_cookies)
            .field("cache", &self.cache.is_some())
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// Builds the HTTP client (no IO yet).
    pub(crate) fn new(settings: WebhookSettings) -> Self {
        let WebhookSettings {
            uri,
            timeout,
            forward_headers,
            forward_cookies,
            cache_ttl,
            cache_max_entries,
            max_concurrency,
        } = settings;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(MAX_IDLE_CONNECTIONS)
            .build(connector);

        let log_target = format!(
            "{}{}",
            uri.authority().map(|a| a.as_str()).unwrap_or_default(),
            uri.path()
        );
        Webhook {
            client,
            uri,
            log_target,
            timeout,
            forward_headers,
            forward_cookies,
            cache: GrantCache::new(cache_ttl, cache_max_entries),
            permits: Semaphore::new(max_concurrency),
        }
    }

    /// Asks the webhook (or the cache) whether the request may do `operation`.
    pub(crate) async fn authorize(
        &self,
        operation: Operation<'_>,
        head: &Parts,
        token: Option<&str>,
    ) -> Result<Grant, Refusal> {
        let room = operation.room().unwrap_or("");
        let body = self.request_body(operation, head, token)?;
        let key: [u8; 32] = Sha256::digest(&body).into();
        if let Some(grant) = self.cache.as_ref().and_then(|c| c.get(&key)) {
            return Ok(grant);
        }
        let call = self.call(body, operation.is_deployment_wide());
        let grant = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(grant)) => grant,
            Ok(Err(Failure::Denied(status))) => {
                let message = if status == StatusCode::UNAUTHORIZED {
                    "not authenticated"
                } else {
                    "access denied"
                };
                return Err(Refusal {
                    status,
                    reason: RefusalReason::WebhookDenied,
                    message: message.to_owned(),
                });
            }
            Ok(Err(Failure::NotAdmin)) => {
                return Err(Refusal::new(
                    RefusalReason::NotAdmin,
                    "listing rooms needs admin: true from the authorization service",
                ))
            }
            Ok(Err(Failure::Unavailable(cause))) => return Err(self.unavailable(room, &cause)),
            Err(_elapsed) => {
                let cause = format!("no answer within {} ms", self.timeout.as_millis());
                return Err(self.unavailable(room, &cause));
            }
        };
        if let Some(cache) = &self.cache {
            cache.insert(key, grant.clone());
        }
        Ok(grant)
    }

    fn request_body(
        &self,
        operation: Operation<'_>,
        head: &Parts,
        token: Option<&str>,
    ) -> Result<Vec<u8>, Refusal> {
        let mut headers = BTreeMap::new();
        for name in &self.forward_headers {
            let values: Vec<&str> = head
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            if !values.is_empty() {
                headers.insert(name.as_str(), values.join(", "));
            }
        }
        let request = WebhookRequest {
            operation: operation.as_str(),
            room: operation.room(),
            headers,
            cookie: self
                .forward_cookies
                .then(|| raw_cookie(&head.headers))
                .flatten(),
            token,
        };
        serde_json::to_vec(&request)
            .map_err(|e| self.unavailable(operation.room().unwrap_or(""), &e.to_string()))
    }

    /// One call; `needs_admin`: only an answer with `"admin": true` grants.
    async fn call(&self, body: Vec<u8>, needs_admin: bool) -> Result<Grant, Failure> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Failure::Unavailable("webhook client closed".to_owned()))?;
        let request = Request::post(self.uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("yws-auth/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Failure::Unavailable(format!("cannot build request: {e}")))?;
        let response =
            self.client.request(request).await.map_err(|e| {
                Failure::Unavailable(format!("request failed: {}", error_chain(&e)))
            })?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Failure::Denied(status));
        }
        if !status.is_success() {
            return Err(Failure::Unavailable(format!("answered {status}")));
        }
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| Failure::Unavailable(format!("cannot read answer: {e}")))?
            .to_bytes();
        let (grant, admin) = parse_answer(&body).map_err(Failure::Unavailable)?;
        if needs_admin && !admin {
            return Err(Failure::NotAdmin);
        }
        Ok(grant)
    }

    fn unavailable(&self, room: &str, cause: &str) -> Refusal {
        tracing::warn!(
            webhook = %self.log_target,
            room,
            cause,
            "auth webhook unavailable; refusing the request with 503 (fail closed)"
        );
        Refusal::new(
            RefusalReason::WebhookUnavailable,
            "authorization service unavailable",
        )
    }
}

enum Failure {
    Denied(StatusCode),
    /// A 2xx answer without `"admin": true` for a deployment-wide operation.
    NotAdmin,
    Unavailable(String),
}

/// A 2xx answer body → grant, and whether it says `"admin": true`. Empty (or whitespace)
/// means read-write without expiry, not admin.
fn parse_answer(body: &[u8]) -> Result<(Grant, bool), String> {
    let answer = if body.iter().all(u8::is_ascii_whitespace) {
        WebhookAnswer::default()
    } else {
        serde_json::from_slice::<WebhookAnswer>(body)
            .map_err(|e| format!("unparsable answer: {e}"))?
    };
    let access = match answer.access.as_deref() {
        None => Access::ReadWrite,
        Some(value) => {
            Access::parse(value).ok_or_else(|| format!("unknown access `{value}` in answer"))?
        }
    };
    let grant = Grant {
        access,
        expires_at: answer
            .expires_in_secs
            .and_then(|secs| SystemTime::now().checked_add(Duration::from_secs(secs))),
        subject: answer.subject,
    };
    Ok((grant, answer.admin == Some(true)))
}

/// `err: source: source...` (hyper-util's client error hides the cause in its sources).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let (rw, admin) = parse_answer(b"").unwrap();
        assert_eq!(
            (rw.access, rw.expires_at, rw.subject, admin),
            (Access::ReadWrite, None, None, false)
        );
        let (read, _) = parse_answer(br#"{"access":"read","subject":"u1","extra":1}"#).unwrap();
        assert_eq!(read.access, Access::ReadOnly);
        assert_eq!(read.subject.as_deref(), Some("u1"));
        assert!(parse_answer(br#"{"admin":true}"#).unwrap().1);
        assert!(!parse_answer(br#"{"admin":false}"#).unwrap().1);
        assert!(parse_answer(br#"{"admin":"yes"}"#).is_err());
        let (expiring, _) = parse_answer(br#"{"expires_in_secs": 60}"#).unwrap();
        assert!(expiring.expires_at.is_some_and(|at| at > SystemTime::now()));
        assert!(parse_answer(br#"{"access":"admin"}"#).is_err());
        assert!(parse_answer(b"ok").is_err());
    }
}
