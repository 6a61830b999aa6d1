//! HTTP routing on the main port: WebSocket upgrades (any path: the path is the room),
//! probes, metrics, the document API, the admin console's API, the browser pages (`/`,
//! `/demo`, `/admin`, `/assets/…`: the `yws-web` crate); anything else is 404 or 426. The
//! metrics port, when configured, answers the probes, the metrics and the admin console.

use crate::admin::{self, Body};
use crate::state::Gateway;
use crate::{api, upgrade};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use std::sync::Arc;
use yws_telemetry::admin::{probe_response, text};

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// `server.port`: rooms, API, pages.
    Main,
    /// `server.metrics_port`: probes, metrics, the admin console.
    Metrics,
}

/// Routes one request arriving on `port`.
pub async fn respond(gw: &Arc<Gateway>, req: Request<Incoming>, port: Port) -> Response<Body> {
    let is_upgrade = upgrade::is_upgrade(req.headers());
    if admin::is_api(req.uri().path()) && !(port == Port::Main && is_upgrade) {
        return admin::handle(gw, req).await;
    }
    match port {
        Port::Main => route(gw, req).await.map(BodyExt::boxed_unsync),
        Port::Metrics => metrics_port(gw, &req).map(BodyExt::boxed_unsync),
    }
}

/// The metrics port: probes, metrics, the console's page and assets; 404 otherwise.
fn metrics_port(gw: &Gateway, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if let Some(response) = probe_response(req, &gw.health, &gw.registry) {
        return response;
    }
    let path = req.uri().path();
    if path == "/admin" || path == "/admin/" || path.starts_with("/assets/") {
        if let Some(response) = site(gw).respond(req) {
            return response.map(Full::new);
        }
    }
    text(StatusCode::NOT_FOUND, "not found\n")
}

fn site(gw: &Gateway) -> yws_web::Site<'_> {
    yws_web::Site {
        demo: gw.demo,
        admin: gw.admin.is_some(),
        room_prefix: &gw.server.path_prefix,
        metrics_port: gw.server.metrics_port,
    }
}

/// Routes one request.
pub async fn route(gw: &Gateway, req: Request<Incoming>) -> Response<Full<Bytes>> {
    // A WebSocket upgrade always names a room, even `/healthz`.
    if upgrade::is_upgrade(req.headers()) {
        return upgrade::handle(gw, req).await;
    }
    if let Some(response) = probe_response(&req, &gw.health, &gw.registry) {
        return response;
    }
    if api::is_api(req.uri().path()) {
        return api::handle(gw, req).await;
    }
    if let Some(response) = site(gw).respond(&req) {
        return response.map(Full::new);
    }
    let prefix = &gw.server.path_prefix;
    let in_rooms = req
        .uri()
        .path()
        .strip_prefix(prefix.as_str())
        .is_some_and(|r| r.len() > 1);
    if req.method() == http::Method::GET && in_rooms {
        let mut response = text(
            StatusCode::UPGRADE_REQUIRED,
            "this is a y-websocket endpoint: connect with a WebSocket client\n",
        );
        response.headers_mut().insert(
            http::header::UPGRADE,
            http::HeaderValue::from_static("websocket"),
        );
        return response;
    }
    text(StatusCode::NOT_FOUND, "not found\n")
}
