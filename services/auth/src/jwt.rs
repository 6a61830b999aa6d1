//! JWT verification with a configuration-fixed algorithm.
//!
//! # Why `jsonwebtoken`
//!
//! `jsonwebtoken` (Keats) is the most used and actively maintained JWT crate; 11.x lets us pick
//! the pure-Rust RustCrypto backend (`rust_crypto` feature: `hmac`, `rsa`, `p256`), which needs
//! no C toolchain, unlike `ring` or `aws-lc-rs`. It validates `exp`/`nbf` with a leeway and
//! `iss`/`aud`, and refuses a header `alg` that is not in the allowed list. We use it for
//! *verification only*: the known `rsa` crate timing issue (RUSTSEC-2023-0071, Marvin) concerns
//! private-key operations, which the server never performs.
//!
//! The algorithm is fixed by configuration (HS256 for a secret; RS256 or ES256 from the PEM
//! key type). The token header's `alg` is only compared against it, before any other work, so
//! `none`, HS256-signed-with-the-public-key and other confusions are [`WrongAlgorithm`].
//!
//! [`WrongAlgorithm`]: crate::RefusalReason::WrongAlgorithm

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::config::JwtAlgorithm;
use crate::error::AuthError;
use crate::grant::{Access, Grant, Refusal, RefusalReason};
use crate::operation::Operation;
use crate::rooms::room_allowed;
use crate::secret::Secret;

/// Tokens longer than this are refused without parsing.
const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Smallest accepted RSA modulus, in bytes (2048 bits).
const MIN_RSA_BYTES: usize = 256;
/// HS256 secrets shorter than this get a startup warning (RFC 7518 §3.2: key ≥ hash size).
const MIN_SECRET_BYTES: usize = 32;

/// The claims we read (signature and `exp`/`nbf`/`iss`/`aud` are checked by `jsonwebtoken`).
#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    exp: Option<serde_json::Number>,
    #[serde(default)]
    rooms: Option<Vec<String>>,
    #[serde(default)]
    access: Option<String>,
    /// Deployment-wide operations need exactly `true` (any other value grants nothing).
    #[serde(default)]
    admin: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct HeaderAlg {
    alg: String,
}

/// What the verifier needs from the `auth` section (checked by
/// [`AuthConfig::validate`](crate::AuthConfig::validate)).
#[derive(Debug, Clone)]
pub(crate) struct JwtSettings {
    /// The key tokens are verified with.
    pub(crate) key: JwtKey,
    /// The algorithm the configuration insists on, if any (`jwt_algorithm`).
    pub(crate) algorithm: Option<JwtAlgorithm>,
    /// Required `iss` (`jwt_issuer`).
    pub(crate) issuer: Option<String>,
    /// Required member of `aud` (`jwt_audience`).
    pub(crate) audience: Option<String>,
    /// Refuse tokens without `exp` (`jwt_require_exp`).
    pub(crate) require_exp: bool,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds (`leeway_secs`).
    pub(crate) leeway_secs: u64,
}

/// Where the verification key comes from.
#[derive(Debug, Clone)]
pub(crate) enum JwtKey {
    /// An HS256 secret (`jwt_secret`).
    Secret(Secret),
    /// A PEM public key file, RS256 or ES256 by its key type (`jwt_public_key_file`).
    PublicKeyFile(PathBuf),
}

/// Verifies tokens against one key and one algorithm.
pub(crate) struct JwtVerifier {
    algorithm: JwtAlgorithm,
    key: DecodingKey,
    validation: Validation,
    leeway: Duration,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithm", &self.algorithm)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// Builds the verifier; reads and checks the public key file, if that is the key.
    pub(crate) fn new(settings: &JwtSettings) -> Result<Self, AuthError> {
        let (algorithm, key) = match &settings.key {
            JwtKey::Secret(secret) => {
                if secret.expose().len() < MIN_SECRET_BYTES {
                    tracing::warn!(
                        min_bytes = MIN_SECRET_BYTES,
                        "auth.jwt_secret is short; use at least 32 random bytes"
                    );
                }
                (
                    JwtAlgorithm::Hs256,
                    DecodingKey::from_secret(secret.expose().as_bytes()),
                )
            }
            JwtKey::PublicKeyFile(path) => load_public_key(path)?,
        };
        if let Some(configured) = settings.algorithm {
            if configured != algorithm {
                return Err(AuthError::invalid(
                    "jwt_algorithm",
                    format!(
                        "is {} but the configured key is for {}",
                        configured.as_str(),
                        algorithm.as_str()
                    ),
                ));
            }
        }

        let mut validation = Validation::new(match algorithm {
            JwtAlgorithm::Hs256 => Algorithm::HS256,
            JwtAlgorithm::Rs256 => Algorithm::RS256,
            JwtAlgorithm::Es256 => Algorithm::ES256,
        });
        validation.leeway = settings.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        let mut required = HashSet::new();
        if settings.require_exp {
            required.insert("exp".to_owned());
        }
        if let Some(issuer) = &settings.issuer {
            validation.set_issuer(&[issuer]);
            required.insert("iss".to_owned());
        }
        if let Some(audience) = &settings.audience {
            validation.set_audience(&[audience]);
            required.insert("aud".to_owned());
        }
        validation.required_spec_claims = required;

        Ok(JwtVerifier {
            algorithm,
            key,
            validation,
            leeway: Duration::from_secs(settings.leeway_secs),
        })
    }

    /// Verifies `token` and checks that it covers `operation`: its `rooms` claim covers the
    /// room, or, for a deployment-wide operation, it carries `admin: true`.
    pub(crate) fn verify(&self, token: &str, operation: Operation<'_>) -> Result<Grant, Refusal> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Refusal::new(RefusalReason::BadToken, "token too long"));
        }
        let alg = header_alg(token)
            .ok_or_else(|| Refusal::new(RefusalReason::BadToken, "malformed token"))?;
        if alg != self.algorithm.as_str() {
            return Err(Refusal::new(
                RefusalReason::WrongAlgorithm,
                "token algorithm not accepted",
            ));
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|err| refusal_for(err.kind()))?
            .claims;

        let access = match claims.access.as_deref() {
            None => Access::ReadWrite,
            Some(value) => Access::parse(value)
                .ok_or_else(|| Refusal::new(RefusalReason::BadToken, "unknown access claim"))?,
        };
        match operation {
            Operation::Room(room) => {
                let Some(rooms) = claims.rooms else {
                    return Err(Refusal::new(
                        RefusalReason::RoomNotAllowed,
                        "token has no rooms claim",
                    ));
                };
                if !room_allowed(&rooms, room) {
                    return Err(Refusal::new(
                        RefusalReason::RoomNotAllowed,
                        "room not allowed by token",
                    ));
                }
            }
            Operation::ListRooms => {
                if claims.admin != Some(serde_json::Value::Bool(true)) {
                    return Err(Refusal::new(
                        RefusalReason::NotAdmin,
                        "listing rooms needs a token with admin: true",
                    ));
                }
            }
        }
        Ok(Grant {
            access,
            expires_at: claims.exp.as_ref().and_then(|exp| self.expiry(exp)),
            subject: claims.sub,
        })
    }

    /// `exp` + leeway: the moment this verifier starts refusing the token. `None` when it is
    /// beyond what `SystemTime` can represent (never, in practice).
    fn expiry(&self, exp: &serde_json::Number) -> Option<SystemTime> {
        let secs = exp.as_u64().or_else(|| {
            exp.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f < u64::MAX as f64)
                .map(|f| f.round() as u64)
        })?;
        UNIX_EPOCH.checked_add(Duration::from_secs(secs).checked_add(self.leeway)?)
    }
}

/// The `alg` of a compact JWS header, without verifying anything.
fn header_alg(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (header, _payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let json = URL_SAFE_NO_PAD.decode(header).ok()?;
    serde_json::from_slice::<HeaderAlg>(&json)
        .ok()
        .map(|h| h.alg)
}

fn refusal_for(kind: &ErrorKind) -> Refusal {
    let (reason, message) = match kind {
        ErrorKind::InvalidSignature => (RefusalReason::BadSignature, "bad token signature"),
        ErrorKind::InvalidAlgorithm => (
            RefusalReason::WrongAlgorithm,
            "token algorithm not accepted",
        ),
        ErrorKind::ExpiredSignature => (RefusalReason::Expired, "token expired"),
        ErrorKind::ImmatureSignature => (RefusalReason::NotYetValid, "token not yet valid"),
        ErrorKind::InvalidIssuer => (RefusalReason::WrongIssuer, "wrong token issuer"),
        ErrorKind::InvalidAudience => (RefusalReason::WrongAudience, "wrong token audience"),
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "iss" => (RefusalReason::WrongIssuer, "token has no iss claim"),
            "aud" => (RefusalReason::WrongAudience, "token has no aud claim"),
            "exp" => (RefusalReason::BadToken, "token has no exp claim"),
            _ => (RefusalReason::BadToken, "token misses a required claim"),
        },
        ErrorKind::InvalidClaimFormat(_) => (RefusalReason::BadToken, "malformed token claims"),
        _ => (RefusalReason::BadToken, "malformed token"),
    };
    Refusal::new(reason, message)
}

/// Reads a PEM public key: RSA (SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`, ≥ 2048 bits) →
/// RS256, EC P-256 (SPKI) → ES256. Private keys and other types are refused with a hint.
fn load_public_key(path: &Path) -> Result<(JwtAlgorithm, DecodingKey), AuthError> {
    let pem = std::fs::read(path).map_err(|source| AuthError::KeyFile {
        path: path.to_owned(),
        source,
    })?;
    let bad = |reason: String| AuthError::Key {
        path: path.to_owned(),
        reason,
    };
    match pem_label(&pem) {
        Some("PUBLIC KEY" | "RSA PUBLIC KEY") => {}
        Some(label) if label.contains("PRIVATE") => {
            return Err(bad(format!(
                "found a `{label}`; give the public key instead \
                 (`openssl pkey -in private.pem -pubout -out public.pem`)"
            )))
        }
        Some(label) => return Err(bad(format!("found a `{label}`, expected a `PUBLIC KEY`"))),
        None => return Err(bad("not a PEM file".to_owned())),
    }
    if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        use rsa::pkcs1::DecodeRsaPublicKey;
        use rsa::traits::PublicKeyParts;
        let der = key
            .try_get_as_bytes()
            .map_err(|e| bad(format!("unreadable RSA key: {e}")))?;
        let parsed = rsa::RsaPublicKey::from_pkcs1_der(der)
            .map_err(|e| bad(format!("unreadable RSA key: {e}")))?;
        if parsed.size() < MIN_RSA_BYTES {
            return Err(bad(format!(
                "RSA key has {} bits; at least 2048 are required",
                parsed.size() * 8
            )));
        }
        return Ok((JwtAlgorithm::Rs256, key));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
        let sec1 = key
            .try_get_as_bytes()
            .map_err(|e| bad(format!("unreadable EC key: {e}")))?;
        p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1)
            .map_err(|_| bad("only EC keys on curve P-256 are supported (ES256)".to_owned()))?;
        return Ok((JwtAlgorithm::Es256, key));
    }
    Err(bad(
        "unsupported key type; expected an RSA (RS256) or EC P-256 (ES256) public key".to_owned(),
    ))
}

/// The label of the first `-----BEGIN <label>-----` line.
fn pem_label(pem: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(pem).ok()?;
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let rest = &text[start..];
    rest.find("-----").map(|end| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_alg_needs_three_parts_and_json() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert_eq!(
            header_alg(&format!("{header}.e30.")).as_deref(),
            Some("none")
        );
        assert_eq!(header_alg(&format!("{header}.e30")), None);
        assert_eq!(header_alg(&format!("{header}.e30.x.y")), None);
        assert_eq!(header_alg("bm90IGpzb24.e30.x"), None);
        assert_eq!(header_alg("!!.e30.x"), None);
    }

    #[test]
    fn pem_labels() {
        assert_eq!(
            pem_label(b"junk\n-----BEGIN PUBLIC KEY-----\nAA==\n"),
            Some("PUBLIC KEY")
        );
        assert_eq!(pem_label(b"no pem here"), None);
    }
}
