//! [`Authorizer`]: the one entry point the gateway calls per upgrade or API request.

use std::time::Duration;

use http::request::Parts;

use crate::config::{parse_webhook_url, AuthConfig};
use crate::credentials::TokenSources;
use crate::error::AuthError;
use crate::grant::{Grant, Refusal, RefusalReason};
use crate::jwt::{JwtKey, JwtSettings, JwtVerifier};
use crate::operation::Operation;
use crate::origin::OriginPolicy;
use crate::webhook::{Webhook, WebhookSettings};

/// Decides whether a request (a WebSocket upgrade or a document API call) may use a room.
///
/// Built once at startup from a validated [`AuthConfig`]; `Send + Sync`, share it in an `Arc`.
/// Checks run in this order, the first failure refusing the request:
///
/// 1. `Origin` against `allowed_origins`, when that list is set;
/// 2. the JWT, when configured: a token is required and must verify and cover the room;
/// 3. the webhook, when configured.
///
/// The resulting access is the most restrictive of the JWT's and the webhook's, the expiry the
/// earliest of both, the subject the JWT's `sub` (else the webhook's `subject`). With neither
/// configured, every request gets a read-write [`Grant`] without expiry.
#[derive(Debug)]
pub struct Authorizer {
    origins: Option<OriginPolicy>,
    tokens: TokenSources,
    jwt: Option<JwtVerifier>,
    webhook: Option<Webhook>,
}

impl Authorizer {
    /// Validates `config`, reads the JWT public key file once (an unreadable or unusable key,
    /// or one that does not match `jwt_algorithm`, is an error here) and builds the webhook
    /// HTTP client. No network IO happens here.
    pub fn new(config: &AuthConfig) -> Result<Self, AuthError> {
        config.validate()?;
        let jwt = jwt_settings(config)
            .map(|settings| JwtVerifier::new(&settings))
            .transpose()?;
        let origins = OriginPolicy::new(&config.allowed_origins)
            .map_err(|reason| AuthError::invalid("allowed_origins", reason))?;
        Ok(Authorizer {
            origins,
            tokens: TokenSources::new(&config.token_query_param, config.token_cookie.as_deref()),
            jwt,
            webhook: webhook_settings(config)?.map(Webhook::new),
        })
    }

    /// Whether [`Self::authorize`] can refuse anything (JWT, webhook or an origin allow-list
    /// is configured). When `false`, the gateway may skip calling it.
    pub fn enabled(&self) -> bool {
        self.jwt.is_some() || self.webhook.is_some() || self.origins.is_some()
    }

    /// Authorizes a request for `room` (the room name as given, already percent-decoded) from
    /// its head. Refusals are answered before any upgrade, with [`Refusal::status`] and
    /// [`Refusal::message`].
    pub async fn authorize(&self, room: &str, head: &Parts) -> Result<Grant, Refusal> {
        self.authorize_operation(Operation::Room(room), head).await
    }

    /// Authorizes `operation` from the request head: a room's operations as
    /// [`Self::authorize`]; a deployment-wide one ([`Operation::ListRooms`]) needs `admin: true`
    /// in the JWT (when JWT is configured) and in the webhook's answer (when a webhook is
    /// configured), which receives `"operation": "list_rooms"` and no room.
    pub async fn authorize_operation(
        &self,
        operation: Operation<'_>,
        head: &Parts,
    ) -> Result<Grant, Refusal> {
        let result = self.decide(operation, head).await;
        let room = operation.room();
        let operation = operation.as_str();
        match &result {
            Ok(grant) => tracing::debug!(
                operation,
                room,
                access = grant.access.as_str(),
                subject = grant.subject.as_deref(),
                "request authorized"
            ),
            Err(refusal) => tracing::debug!(
                operation,
                room,
                status = refusal.status.as_u16(),
                reason = refusal.reason.as_str(),
                "request refused"
            ),
        }
        result
    }

    async fn decide(&self, operation: Operation<'_>, head: &Parts) -> Result<Grant, Refusal> {
        if let Some(origins) = &self.origins {
            origins.check(&head.headers)?;
        }
        let token = self.tokens.find(head);
        let mut grant = Grant::anonymous();
        if let Some(jwt) = &self.jwt {
            let token = token
                .as_deref()
                .ok_or_else(|| Refusal::new(RefusalReason::MissingToken, "missing token"))?;
            grant = jwt.verify(token, operation)?;
        }
        if let Some(webhook) = &self.webhook {
            let answer = webhook.authorize(operation, head, token.as_deref()).await?;
            grant = combine(grant, answer);
        }
        Ok(grant)
    }
}

/// The JWT verifier's settings; `None` when JWT auth is off. (A secret *and* a key file are
/// refused by `validate`.)
fn jwt_settings(config: &AuthConfig) -> Option<JwtSettings> {
    let key = match (&config.jwt_secret, &config.jwt_public_key_file) {
        (Some(secret), None) => JwtKey::Secret(secret.clone()),
        (None, Some(path)) => JwtKey::PublicKeyFile(path.clone()),
        _ => return None,
    };
    Some(JwtSettings {
        key,
        algorithm: config.jwt_algorithm,
        issuer: config.jwt_issuer.clone(),
        audience: config.jwt_audience.clone(),
        require_exp: config.jwt_require_exp,
        leeway_secs: config.leeway_secs,
    })
}

/// The webhook client's settings; `None` when no webhook is configured.
fn webhook_settings(config: &AuthConfig) -> Result<Option<WebhookSettings>, AuthError> {
    let Some(url) = &config.webhook_url else {
        return Ok(None);
    };
    let uri = parse_webhook_url(url).map_err(|reason| AuthError::invalid("webhook_url", reason))?;
    let forward_headers = config
        .webhook_forward_headers
        .iter()
        .map(|name| {
            http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                AuthError::invalid(
                    "webhook_forward_headers",
                    format!("`{name}` is not a valid header name"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(WebhookSettings {
        uri,
        timeout: Duration::from_millis(config.webhook_timeout_ms),
        forward_headers,
        forward_cookies: config.webhook_forward_cookies,
        cache_ttl: Duration::from_millis(config.webhook_cache_ttl_ms),
        cache_max_entries: config.webhook_cache_max_entries,
        max_concurrency: config.webhook_max_concurrency,
    }))
}

/// JWT grant (or the anonymous one) + webhook grant → the more restrictive of both.
fn combine(first: Grant, second: Grant) -> Grant {
    Grant {
        access: first.access.most_restrictive(second.access),
        expires_at: match (first.expires_at, second.expires_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        },
        subject: first.subject.or(second.subject),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::grant::Access;

    fn assert_send_sync<T: Send + Sync>() {}

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn authorizer_is_send_and_sync_and_its_future_is_send() {
        assert_send_sync::<Authorizer>();
        let config = AuthConfig {
            jwt_secret: Some("0123456789abcdef0123456789abcdef".into()),
            webhook_url: Some("http://127.0.0.1:9/auth".to_owned()),
            ..AuthConfig::default()
        };
        // Built outside any tokio runtime: no IO, no spawning at construction.
        let auth = Authorizer::new(&config).unwrap();
        assert!(auth.enabled());
        let head = http::Request::new(()).into_parts().0;
        let future = auth.authorize("room", &head);
        assert_send(&future);
    }

    #[test]
    fn combine_takes_the_most_restrictive() {
        let soon = SystemTime::now() + Duration::from_secs(10);
        let later = soon + Duration::from_secs(10);
        let jwt = Grant {
            access: Access::ReadWrite,
            expires_at: Some(later),
            subject: Some("jwt".to_owned()),
        };
        let hook = Grant {
            access: Access::ReadOnly,
            expires_at: Some(soon),
            subject: Some("hook".to_owned()),
        };
        let both = combine(jwt.clone(), hook.clone());
        assert_eq!(both.access, Access::ReadOnly);
        assert_eq!(both.expires_at, Some(soon));
        assert_eq!(both.subject.as_deref(), Some("jwt"));
        assert_eq!(combine(Grant::anonymous(), hook.clone()), hook);
        assert_eq!(combine(jwt.clone(), Grant::anonymous()), jwt);
    }
}
