//! HTTP routing on the main port: WebSocket upgrades (any path: the path is the room),
//! probes, metrics, the document API, the browser pages (`/`, `/demo`, `/assets/…`: the
//! `yws-web` crate); anything else is 404 or 426.

use crate::state::Gateway;
use crate::{api, upgrade};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use yws_telemetry::admin::{probe_response, text};

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
    let site = yws_web::Site {
        demo: gw.demo,
        room_prefix: &gw.server.path_prefix,
        metrics_port: gw.server.metrics_port,
    };
    if let Some(response) = site.respond(&req) {
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
