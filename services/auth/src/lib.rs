//! # yws-auth
//!
//! Authentication and authorization for yws, decided *before* a WebSocket upgrade (or a
//! document API request under `/api/rooms/...`): the gateway hands over the room name and the
//! request head, and gets back a [`Grant`] (access, expiry, subject) or a [`Refusal`] (HTTP
//! status, bounded reason, short client-safe message). No WebSocket, no hyper server here.
//!
//! ## Layout
//!
//! - [`config`]: [`AuthConfig`] (the `auth` section, defaults, `validate()`); its environment
//!   names are `yws_config::env::AUTH`.
//! - [`authorizer`]: [`Authorizer`], the entry point and the combination rule.
//! - `origin`: the `Origin` allow-list against cross-site WebSocket hijacking.
//! - `credentials`: finding the token (query parameter, `Authorization: Bearer`, cookie).
//! - `jwt`: verification with a configuration-fixed algorithm (HS256 / RS256 / ES256), and
//!   why we use the `jsonwebtoken` crate.
//! - [`operation`]: [`Operation`], what a request asks to do: use one room, or a
//!   deployment-wide operation (listing rooms) that needs the `admin` claim.
//! - `rooms`: the `rooms` claim and its pattern grammar (a single trailing `*` is a wildcard,
//!   `\*` a literal one).
//! - `webhook`: the auth webhook client (hyper-util legacy client, plain http), its request
//!   and answer formats; `cache`: the bounded TTL cache of its grants.
//! - [`grant`]: [`Grant`], [`Access`], [`Refusal`], [`RefusalReason`].
//! - [`secret`]: [`Secret`], a string whose `Debug` is `"<redacted>"`.
//! - `error`: [`AuthError`], the one error type (configuration problems at startup).
//!
//! Modules depend on each other one way only (`a → b`: `a` uses `b`); `jwt` and `webhook`
//! take their own settings types, built by the authorizer from the validated config:
//!
//! ```text
//! authorizer  → config, jwt, webhook, origin, credentials, operation, grant, error
//! config      → origin, secret, error        (validation; URL checks included)
//! jwt         → config (JwtAlgorithm only), rooms, operation, secret, grant, error
//! webhook     → cache, credentials, operation, grant
//! cache, origin → grant
//! credentials, rooms, operation, grant, secret, error: no module of this crate
//! ```
//!
//! ## Modes
//!
//! - **None** (default): every request gets read-write access.
//! - **JWT**: `jwt_secret` (HS256) or `jwt_public_key_file` (PEM; RS256 for RSA, ES256 for
//!   EC P-256). The token comes from the `token` query parameter (what y-websocket's
//!   `WebsocketProvider` `params` option sends), else `Authorization: Bearer`, else the
//!   `token_cookie`. Claims: `exp` (required unless `jwt_require_exp = false`) and `nbf`,
//!   with `leeway_secs` (default 30) of clock skew; `iss`/`aud` when configured; `rooms`, an
//!   array of room patterns (grammar in `rooms`: a single trailing `*` makes a prefix pattern,
//!   `["team-a/*"]`, `["*"]` for all rooms, `\*` is a literal trailing `*`; a token without
//!   `rooms` is allowed no room); `admin: true` for deployment-wide operations
//!   ([`Operation::ListRooms`]; no room pattern implies it); `access`, `"rw"` (default) or
//!   `"read"`; `sub` becomes [`Grant::subject`]. [`Grant::expires_at`] is `exp` + leeway, when
//!   the gateway closes the connection with 4401.
//! - **Webhook** (`webhook_url`): see the `webhook` module for the request and answer format.
//!   Timeouts and errors fail closed with 503 and a `warn` log line. Grants (never denials)
//!   may be cached for `webhook_cache_ttl_ms` in a bounded cache.
//!
//! ## Combination rule
//!
//! When both are configured the JWT must pass first (the webhook is not called otherwise),
//! then the webhook must allow too; it receives the token along with the room. The access is
//! the more restrictive of the two, the expiry the earlier one.
//!
//! ## Refusals
//!
//! 401: no token, bad token, bad signature, wrong algorithm, expired, not yet valid, wrong
//! issuer or audience. 403: room not allowed, bad `Origin`. The webhook's own 401/403.
//! 503: webhook unavailable. [`RefusalReason::as_str`] is a bounded metric label.
//!
//! ## Origin check
//!
//! When cookies can authenticate (`token_cookie`, or `webhook_forward_cookies`),
//! `allowed_origins` is mandatory (a config validation error otherwise). A non-empty list is
//! always enforced: a request whose `Origin` is present and not listed gets 403. Requests
//! without `Origin` (non-browser clients) pass this check.

pub mod authorizer;
pub mod config;
pub mod grant;
pub mod operation;
pub mod secret;

mod cache;
mod credentials;
mod error;
mod jwt;
mod origin;
mod rooms;
mod webhook;

pub use authorizer::Authorizer;
pub use config::{AuthConfig, JwtAlgorithm};
pub use error::AuthError;
pub use grant::{Access, Grant, Refusal, RefusalReason};
pub use operation::Operation;
pub use secret::Secret;
