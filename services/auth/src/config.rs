//! [`AuthConfig`]: the `auth` section of the gateway config, its defaults and its validation.
//! Its environment names (`AUTH_*`) are listed in `yws_config::env::AUTH`.

use std::path::PathBuf;

use http::Uri;

use serde::Deserialize;

use crate::error::AuthError;
use crate::origin::normalize_origin;
use crate::secret::Secret;

/// Default `leeway_secs`: clock skew tolerated on `exp` and `nbf`.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// Default `token_query_param`: what `WebsocketProvider`'s `params: { token }` sends.
pub const DEFAULT_TOKEN_QUERY_PARAM: &str = "token";
/// Default `webhook_timeout_ms`.
pub const DEFAULT_WEBHOOK_TIMEOUT_MS: u64 = 2_000;
/// Default `webhook_cache_max_entries`.
pub const DEFAULT_WEBHOOK_CACHE_MAX_ENTRIES: usize = 10_000;
/// Default `webhook_max_concurrency`.
pub const DEFAULT_WEBHOOK_MAX_CONCURRENCY: usize = 64;

const MAX_LEEWAY_SECS: u64 = 600;
const MAX_WEBHOOK_TIMEOUT_MS: u64 = 60_000;
const MAX_WEBHOOK_CACHE_TTL_MS: u64 = 600_000;
const MAX_WEBHOOK_CACHE_MAX_ENTRIES: usize = 1_000_000;
const MAX_WEBHOOK_MAX_CONCURRENCY: usize = 4_096;

/// The JWT signature algorithm. Fixed by configuration; the token's own `alg` header is only
/// compared against it, never trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with `jwt_secret`.
    #[serde(rename = "HS256", alias = "hs256")]
    Hs256,
    /// RSASSA-PKCS1-v1_5 SHA-256 with an RSA public key in `jwt_public_key_file`.
    #[serde(rename = "RS256", alias = "rs256")]
    Rs256,
    /// ECDSA P-256 SHA-256 with an EC P-256 public key in `jwt_public_key_file`.
    #[serde(rename = "ES256", alias = "es256")]
    Es256,
}

impl JwtAlgorithm {
    /// The JOSE name (`"HS256"`, `"RS256"`, `"ES256"`).
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::Hs256 => "HS256",
            JwtAlgorithm::Rs256 => "RS256",
            JwtAlgorithm::Es256 => "ES256",
        }
    }
}

/// The `auth` section. Every field is optional; the default is "no auth" (local use).
///
/// Modes combine: JWT (`jwt_secret` *or* `jwt_public_key_file`) and/or a webhook
/// (`webhook_url`). See the crate docs for the combination rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// HS256 secret (`AUTH_JWT_SECRET`). Use at least 32 random bytes. Default: none.
    pub jwt_secret: Option<Secret>,
    /// PEM public key for RS256 (RSA, SPKI or PKCS#1) or ES256 (EC P-256, SPKI)
    /// (`AUTH_JWT_PUBLIC_KEY_FILE`). Read once at startup. Default: none.
    pub jwt_public_key_file: Option<PathBuf>,
    /// `HS256`, `RS256` or `ES256` (`AUTH_JWT_ALGORITHM`). Default: HS256 with a secret, else
    /// taken from the key type. When set, it must agree with the key.
    pub jwt_algorithm: Option<JwtAlgorithm>,
    /// Required `iss` (`AUTH_JWT_ISSUER`). Default: `iss` not checked.
    pub jwt_issuer: Option<String>,
    /// Required member of `aud` (`AUTH_JWT_AUDIENCE`). Default: none, and then a token that
    /// carries an `aud` is refused (RFC 7519 §4.1.3).
    pub jwt_audience: Option<String>,
    /// Refuse tokens without `exp` (`AUTH_JWT_REQUIRE_EXP`). Default: `true`.
    pub jwt_require_exp: bool,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds, at most 600 (`AUTH_JWT_LEEWAY_SECS`).
    /// Default: 30.
    pub leeway_secs: u64,
    /// Query parameter carrying the token (`AUTH_TOKEN_QUERY_PARAM`). Default: `token`.
    pub token_query_param: String,
    /// Cookie carrying the token (`AUTH_TOKEN_COOKIE`). Setting it enables cookie auth, which
    /// requires `allowed_origins`. Default: none.
    pub token_cookie: Option<String>,
    /// Auth webhook, `http://` only (`AUTH_URL`). Default: none.
    pub webhook_url: Option<String>,
    /// Webhook timeout in ms, 1..=60000 (`AUTH_WEBHOOK_TIMEOUT_MS`). Default: 2000.
    pub webhook_timeout_ms: u64,
    /// Request headers sent to the webhook, e.g. `["authorization", "x-forwarded-for"]`
    /// (`AUTH_WEBHOOK_FORWARD_HEADERS`, comma list). `cookie` is not allowed here: use
    /// `webhook_forward_cookies`. Default: none.
    #[serde(deserialize_with = "yws_config::comma_list")]
    pub webhook_forward_headers: Vec<String>,
    /// Send the raw `Cookie` header to the webhook (`AUTH_WEBHOOK_FORWARD_COOKIES`). Enables
    /// cookie auth, which requires `allowed_origins`. Default: `false`.
    pub webhook_forward_cookies: bool,
    /// How long a webhook *grant* is reused for identical credentials and room, in ms, at most
    /// 600000 (`AUTH_WEBHOOK_CACHE_TTL_MS`). Denials are never cached. Default: 0 (off).
    pub webhook_cache_ttl_ms: u64,
    /// Bound of that cache (`AUTH_WEBHOOK_CACHE_MAX_ENTRIES`); the oldest entry is evicted
    /// first. Default: 10000.
    pub webhook_cache_max_entries: usize,
    /// Webhook calls in flight at once, at most 4096 (`AUTH_WEBHOOK_MAX_CONCURRENCY`); further
    /// calls wait, within their timeout. Default: 64.
    pub webhook_max_concurrency: usize,
    /// Allowed `Origin`s, e.g. `["https://app.example.com"]` (`AUTH_ALLOWED_ORIGINS`, comma
    /// list). When non-empty, a request with another `Origin` is refused (403). Required when
    /// cookies can authenticate. Default: none (no check).
    #[serde(deserialize_with = "yws_config::comma_list")]
    pub allowed_origins: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_secret: None,
            jwt_public_key_file: None,
            jwt_algorithm: None,
            jwt_issuer: None,
            jwt_audience: None,
            jwt_require_exp: true,
            leeway_secs: DEFAULT_LEEWAY_SECS,
            token_query_param: DEFAULT_TOKEN_QUERY_PARAM.to_owned(),
            token_cookie: None,
            webhook_url: None,
            webhook_timeout_ms: DEFAULT_WEBHOOK_TIMEOUT_MS,
            webhook_forward_headers: Vec::new(),
            webhook_forward_cookies: false,
            webhook_cache_ttl_ms: 0,
            webhook_cache_max_entries: DEFAULT_WEBHOOK_CACHE_MAX_ENTRIES,
            webhook_max_concurrency: DEFAULT_WEBHOOK_MAX_CONCURRENCY,
            allowed_origins: Vec::new(),
        }
    }
}

impl AuthConfig {
    /// Whether JWT auth is configured.
    pub fn jwt_enabled(&self) -> bool {
        self.jwt_secret.is_some() || self.jwt_public_key_file.is_some()
    }

    /// Whether the webhook is configured.
    pub fn webhook_enabled(&self) -> bool {
        self.webhook_url.is_some()
    }

    /// Whether a cookie can authenticate a request (a token cookie, or cookies forwarded to
    /// the webhook). Cookie auth requires `allowed_origins`.
    pub fn cookie_auth(&self) -> bool {
        self.token_cookie.is_some() || (self.webhook_enabled() && self.webhook_forward_cookies)
    }

    /// Checks every setting and their combinations. Errors name the offending key. The JWT
    /// public key file is read (and its key checked against `jwt_algorithm`) by
    /// [`Authorizer::new`](crate::Authorizer::new), once, not here.
    pub fn validate(&self) -> Result<(), AuthError> {
        self.validate_jwt()?;
        self.validate_token_sources()?;
        self.validate_webhook()?;
        self.validate_origins()
    }

    fn validate_jwt(&self) -> Result<(), AuthError> {
        if self.jwt_secret.is_some() && self.jwt_public_key_file.is_some() {
            return Err(AuthError::invalid(
                "jwt_secret",
                "set either `jwt_secret` (HS256) or `jwt_public_key_file` (RS256/ES256), not both",
            ));
        }
        if self
            .jwt_secret
            .as_ref()
            .is_some_and(|s| s.expose().is_empty())
        {
            return Err(AuthError::invalid(
                "jwt_secret",
                "is empty; remove the setting to disable JWT auth",
            ));
        }
        if self
            .jwt_public_key_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(AuthError::invalid("jwt_public_key_file", "is empty"));
        }
        match (self.jwt_algorithm, self.jwt_secret.is_some()) {
            (Some(JwtAlgorithm::Hs256), false) if self.jwt_public_key_file.is_some() => {
                return Err(AuthError::invalid(
                    "jwt_algorithm",
                    "HS256 needs `jwt_secret`, not a public key file",
                ));
            }
            (Some(alg @ (JwtAlgorithm::Rs256 | JwtAlgorithm::Es256)), true) => {
                return Err(AuthError::invalid(
                    "jwt_algorithm",
                    format!("{} needs `jwt_public_key_file`, not a secret", alg.as_str()),
                ));
            }
            _ => {}
        }
        if !self.jwt_enabled() {
            for (key, set) in [
                ("jwt_algorithm", self.jwt_algorithm.is_some()),
                ("jwt_issuer", self.jwt_issuer.is_some()),
                ("jwt_audience", self.jwt_audience.is_some()),
            ] {
                if set {
                    return Err(AuthError::invalid(
                        key,
                        "has no effect without `jwt_secret` or `jwt_public_key_file`",
                    ));
                }
            }
        }
        for (key, value) in [
            ("jwt_issuer", &self.jwt_issuer),
            ("jwt_audience", &self.jwt_audience),
        ] {
            if value.as_ref().is_some_and(|v| v.is_empty()) {
                return Err(AuthError::invalid(key, "is empty"));
            }
        }
        if self.leeway_secs > MAX_LEEWAY_SECS {
            return Err(AuthError::invalid(
                "leeway_secs",
                format!("must be at most {MAX_LEEWAY_SECS}"),
            ));
        }
        Ok(())
    }

    fn validate_token_sources(&self) -> Result<(), AuthError> {
        if self.token_query_param.is_empty() {
            return Err(AuthError::invalid("token_query_param", "is empty"));
        }
        if let Some(cookie) = &self.token_cookie {
            if !is_cookie_name(cookie) {
                return Err(AuthError::invalid(
                    "token_cookie",
                    format!("`{cookie}` is not a valid cookie name"),
                ));
            }
            if !self.jwt_enabled() {
                return Err(AuthError::invalid(
                    "token_cookie",
                    "the token cookie carries a JWT; configure `jwt_secret` or `jwt_public_key_file`",
                ));
            }
        }
        Ok(())
    }

    fn validate_webhook(&self) -> Result<(), AuthError> {
        let Some(url) = &self.webhook_url else {
            if self.webhook_forward_cookies || !self.webhook_forward_headers.is_empty() {
                return Err(AuthError::invalid(
                    "webhook_url",
                    "webhook forwarding is configured but `webhook_url` is not set",
                ));
            }
            return Ok(());
        };
        parse_webhook_url(url).map_err(|reason| AuthError::invalid("webhook_url", reason))?;
        if !(1..=MAX_WEBHOOK_TIMEOUT_MS).contains(&self.webhook_timeout_ms) {
            return Err(AuthError::invalid(
                "webhook_timeout_ms",
                format!("must be between 1 and {MAX_WEBHOOK_TIMEOUT_MS}"),
            ));
        }
        for name in &self.webhook_forward_headers {
            let Ok(header) = http::HeaderName::from_bytes(name.as_bytes()) else {
                return Err(AuthError::invalid(
                    "webhook_forward_headers",
                    format!("`{name}` is not a valid header name"),
                ));
            };
            if header == http::header::COOKIE {
                return Err(AuthError::invalid(
                    "webhook_forward_headers",
                    "use `webhook_forward_cookies = true` to forward cookies",
                ));
            }
        }
        if self.webhook_cache_ttl_ms > MAX_WEBHOOK_CACHE_TTL_MS {
            return Err(AuthError::invalid(
                "webhook_cache_ttl_ms",
                format!("must be at most {MAX_WEBHOOK_CACHE_TTL_MS}"),
            ));
        }
        if !(1..=MAX_WEBHOOK_CACHE_MAX_ENTRIES).contains(&self.webhook_cache_max_entries) {
            return Err(AuthError::invalid(
                "webhook_cache_max_entries",
                format!("must be between 1 and {MAX_WEBHOOK_CACHE_MAX_ENTRIES}"),
            ));
        }
        if !(1..=MAX_WEBHOOK_MAX_CONCURRENCY).contains(&self.webhook_max_concurrency) {
            return Err(AuthError::invalid(
                "webhook_max_concurrency",
                format!("must be between 1 and {MAX_WEBHOOK_MAX_CONCURRENCY}"),
            ));
        }
        Ok(())
    }

    fn validate_origins(&self) -> Result<(), AuthError> {
        for origin in &self.allowed_origins {
            normalize_origin(origin)
                .map_err(|reason| AuthError::invalid("allowed_origins", reason))?;
        }
        if self.cookie_auth() && self.allowed_origins.is_empty() {
            return Err(AuthError::invalid(
                "allowed_origins",
                "cookies can authenticate (`token_cookie` or `webhook_forward_cookies`), so the \
                 allowed page origins must be listed (e.g. `https://app.example.com`) to block \
                 cross-site WebSocket hijacking",
            ));
        }
        Ok(())
    }
}

/// Checks a webhook URL: absolute `http://` with a host, no user info.
pub(crate) fn parse_webhook_url(url: &str) -> Result<Uri, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("`{url}` is not a valid URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(
                "https webhook URLs are not supported: yws-auth has no TLS client (it \
                        would need a C toolchain). Reach the webhook over plain http inside your \
                        network, or through a local TLS-originating proxy"
                    .to_owned(),
            )
        }
        _ => return Err(format!("`{url}` must be an absolute http:// URL")),
    }
    match uri.authority() {
        Some(authority) if authority.as_str().contains('@') => {
            Err("credentials in the webhook URL are not supported".to_owned())
        }
        Some(authority) if !authority.host().is_empty() => Ok(uri),
        _ => Err(format!("`{url}` has no host")),
    }
}

/// RFC 6265 `cookie-name`: an RFC 7230 token.
fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let config: AuthConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config.leeway_secs, DEFAULT_LEEWAY_SECS);
        assert_eq!(config.token_query_param, "token");
        assert!(config.jwt_require_exp);
        assert!(!config.jwt_enabled() && !config.webhook_enabled() && !config.cookie_auth());
        config.validate().unwrap();
        AuthConfig::default().validate().unwrap();
    }

    #[test]
    fn lists_accept_comma_strings_and_sequences() {
        let config: AuthConfig = serde_json::from_str(
            r#"{"allowed_origins": " https://a.example, ,https://b.example ",
                "webhook_forward_headers": ["authorization", " x-user "]}"#,
        )
        .unwrap();
        assert_eq!(
            config.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(config.webhook_forward_headers, ["authorization", "x-user"]);
    }

    #[test]
    fn unknown_fields_and_bad_algorithms_are_rejected() {
        assert!(serde_json::from_str::<AuthConfig>(r#"{"jwt_secrt": "x"}"#).is_err());
        assert!(serde_json::from_str::<AuthConfig>(r#"{"jwt_algorithm": "none"}"#).is_err());
        let config: AuthConfig = serde_json::from_str(r#"{"jwt_algorithm": "es256"}"#).unwrap();
        assert_eq!(config.jwt_algorithm, Some(JwtAlgorithm::Es256));
    }

    #[test]
    fn env_vars_name_real_keys() {
        let table = yws_config::env::AUTH;
        assert_eq!(table.section, "auth");
        for var in table.vars {
            assert!(var.name.starts_with("AUTH_"), "{}", var.name);
            let key = var.key;
            // Every key must deserialize on its own (a typo would hit deny_unknown_fields).
            let value = match key {
                "jwt_require_exp" | "webhook_forward_cookies" => serde_json::json!(true),
                "leeway_secs"
                | "webhook_timeout_ms"
                | "webhook_cache_ttl_ms"
                | "webhook_cache_max_entries"
                | "webhook_max_concurrency" => serde_json::json!(1),
                "jwt_algorithm" => serde_json::json!("HS256"),
                _ => serde_json::json!("x"),
            };
            let doc = serde_json::json!({ key: value });
            serde_json::from_value::<AuthConfig>(doc).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
    }

    #[test]
    fn webhook_urls() {
        assert!(parse_webhook_url("http://127.0.0.1:8080/auth?key=1").is_ok());
        assert!(parse_webhook_url("https://auth.example.com/")
            .unwrap_err()
            .contains("https"));
        assert!(parse_webhook_url("/auth").is_err());
        assert!(parse_webhook_url("ftp://host/").is_err());
        assert!(parse_webhook_url("http://user:pw@host/").is_err());
        assert!(parse_webhook_url("not a url").is_err());
    }

    #[test]
    fn cookie_names() {
        assert!(is_cookie_name("yws_token"));
        assert!(!is_cookie_name(""));
        assert!(!is_cookie_name("a b"));
        assert!(!is_cookie_name("a=b"));
        assert!(!is_cookie_name("a;b"));
    }
}
