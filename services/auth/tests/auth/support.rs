//! Helpers: fixtures, token minting, request heads, and a local webhook server.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use yws_auth::{AuthConfig, Authorizer, Grant, Refusal};

pub(crate) const SECRET: &str = "test-only-secret-0123456789abcdef0123456789";

pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("fixture exists")
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// `{"sub": "user-1", "exp": now + 1h, "rooms": rooms}`.
pub(crate) fn claims(rooms: &[&str]) -> Value {
    json!({ "sub": "user-1", "exp": now() + 3600, "rooms": rooms })
}

pub(crate) fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).expect("encode test token")
}

pub(crate) fn hs256(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        claims,
    )
}

pub(crate) fn rs256(private_key_fixture: &str, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(&read_fixture(private_key_fixture)).expect("RSA key");
    sign(Algorithm::RS256, &key, claims)
}

pub(crate) fn es256(claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(&read_fixture("ec_private.pem")).expect("EC key");
    sign(Algorithm::ES256, &key, claims)
}

/// A token with an arbitrary (unsigned) header: `base64url(header).base64url(claims).sig`.
pub(crate) fn raw_token(header: &Value, claims: &Value, signature: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

pub(crate) fn head(uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut builder = Request::builder().uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).expect("valid test request").into_parts().0
}

/// `/room?token=<token>`.
pub(crate) fn with_query_token(token: &str) -> Parts {
    head(&format!("/room?token={token}"), &[])
}

pub(crate) fn hs_config() -> AuthConfig {
    AuthConfig {
        jwt_secret: Some(SECRET.into()),
        ..AuthConfig::default()
    }
}

pub(crate) fn key_config(public_key_fixture: &str) -> AuthConfig {
    AuthConfig {
        jwt_public_key_file: Some(fixture(public_key_fixture)),
        ..AuthConfig::default()
    }
}

pub(crate) fn authorizer(config: &AuthConfig) -> Authorizer {
    Authorizer::new(config).expect("valid test config")
}

pub(crate) async fn expect_grant(auth: &Authorizer, room: &str, head: &Parts) -> Grant {
    match auth.authorize(room, head).await {
        Ok(grant) => grant,
        Err(refusal) => panic!("expected a grant, got {refusal}"),
    }
}

pub(crate) async fn expect_refusal(auth: &Authorizer, room: &str, head: &Parts) -> Refusal {
    match auth.authorize(room, head).await {
        Ok(grant) => panic!("expected a refusal, got {grant:?}"),
        Err(refusal) => refusal,
    }
}

/// What the local webhook does with each request.
#[derive(Clone, Copy)]
pub(crate) enum Behaviour {
    /// Answer with this status and body.
    Answer(u16, &'static str),
    /// Never answer (the connection stays open).
    Hang,
}

/// A hyper server on 127.0.0.1:0 that counts requests and keeps the last JSON body.
pub(crate) struct WebhookServer {
    pub(crate) url: String,
    hits: Arc<AtomicUsize>,
    last_body: Arc<Mutex<Option<Value>>>,
    task: JoinHandle<()>,
}

impl WebhookServer {
    pub(crate) async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/auth", listener.local_addr().expect("addr"));
        let hits = Arc::new(AtomicUsize::new(0));
        let last_body = Arc::new(Mutex::new(None));
        let (task_hits, task_body) = (hits.clone(), last_body.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (hits, last_body) = (task_hits.clone(), task_body.clone());
                let service = service_fn(move |request: Request<Incoming>| {
                    let (hits, last_body) = (hits.clone(), last_body.clone());
                    async move {
                        let body = request.into_body().collect().await.map(|b| b.to_bytes());
                        if let Ok(body) = body {
                            *last_body.lock() = serde_json::from_slice(&body).ok();
                        }
                        hits.fetch_add(1, Ordering::SeqCst);
                        match behaviour {
                            Behaviour::Answer(status, body) => {
                                let mut response = Response::new(Full::new(Bytes::from(body)));
                                *response.status_mut() =
                                    StatusCode::from_u16(status).expect("valid status");
                                Ok::<_, Infallible>(response)
                            }
                            Behaviour::Hang => std::future::pending().await,
                        }
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        WebhookServer {
            url,
            hits,
            last_body,
            task,
        }
    }

    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub(crate) fn last_body(&self) -> Option<Value> {
        self.last_body.lock().clone()
    }

    /// A webhook-only config pointing at this server.
    pub(crate) fn config(&self) -> AuthConfig {
        AuthConfig {
            webhook_url: Some(self.url.clone()),
            ..AuthConfig::default()
        }
    }
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
