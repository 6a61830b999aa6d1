//! Routing: which request paths are ours and what they answer.
//!
//! | path | answer |
//! | --- | --- |
//! | `/` | the landing page |
//! | `/demo`, `/demo/` | the demo (404 while [`Site::demo`] is off) |
//! | `/admin`, `/admin/` | the admin console (404 while [`Site::admin`] is off; its API under `/admin/api/` is the gateway's) |
//! | `/assets/<file>` | an embedded asset (404 if unknown, or its page is off) |
//! | anything else | `None`: not ours, the gateway routes it |
//!
//! Only GET and HEAD are answered (405 otherwise; for HEAD the HTTP server drops the body).

use crate::assets::{self, Scope};
use crate::pages;
use crate::response::{self, IMMUTABLE, REVALIDATE};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};

/// What this node's pages show, taken from the gateway's configuration. Cheap to build: the
/// gateway makes one per request.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    /// Serve `/demo` and link it from `/` (`server.demo`).
    pub demo: bool,
    /// Serve `/admin` and link it from `/`: an admin credential is configured.
    pub admin: bool,
    /// The room path prefix (`server.path_prefix`, e.g. `""` or `"/collab"`): the demo's
    /// client connects to `ws://<host><prefix>/<room>`.
    pub room_prefix: &'a str,
    /// The separate metrics port, if one is configured (`server.metrics_port`, 0: none).
    pub metrics_port: u16,
}

/// A path of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Landing,
    Demo,
    Admin,
    Asset(usize),
    NotFound,
}

const ASSETS_PREFIX: &str = "/assets/";

impl Site<'_> {
    /// Answers `req` if its path is one of ours; `None` hands it back to the gateway.
    pub fn respond<B>(&self, req: &Request<B>) -> Option<Response<Bytes>> {
        let target = self.target(req.uri().path())?;
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return Some(response::method_not_allowed());
        }
        let headers = req.headers();
        let response = match target {
            Target::Landing => html(headers, pages::landing(self)),
            Target::Demo => html(headers, pages::demo(self)),
            Target::Admin => html(headers, pages::admin(self)),
            Target::Asset(index) => {
                let asset = &assets::ASSETS[index];
                let digest = assets::asset_digest(index);
                let versioned = query_param(req.uri().query(), "v") == Some(digest);
                response::cached(
                    headers,
                    Bytes::from_static(asset.bytes),
                    asset.content_type,
                    digest,
                    if versioned { IMMUTABLE } else { REVALIDATE },
                )
            }
            Target::NotFound => response::plain(StatusCode::NOT_FOUND, "not found\n"),
        };
        Some(response)
    }

    fn target(&self, path: &str) -> Option<Target> {
        match path {
            "/" => return Some(Target::Landing),
            "/demo" | "/demo/" if self.demo => return Some(Target::Demo),
            "/demo" | "/demo/" => return Some(Target::NotFound),
            "/admin" | "/admin/" if self.admin => return Some(Target::Admin),
            "/admin" | "/admin/" => return Some(Target::NotFound),
            "/assets" => return Some(Target::NotFound),
            _ => {}
        }
        let name = path.strip_prefix(ASSETS_PREFIX)?;
        Some(match assets::find(name) {
            Some((index, asset)) if self.enabled(asset.scope) => Target::Asset(index),
            _ => Target::NotFound,
        })
    }

    fn enabled(&self, scope: Scope) -> bool {
        match scope {
            Scope::Site => true,
            Scope::Demo => self.demo,
            Scope::Admin => self.admin,
        }
    }
}

fn html(headers: &http::HeaderMap, page: String) -> Response<Bytes> {
    let digest = assets::digest(page.as_bytes());
    response::cached(
        headers,
        Bytes::from(page),
        "text/html; charset=utf-8",
        &digest,
        REVALIDATE,
    )
}

/// The raw value of `name` in a query string (our values are hex digests: no decoding).
fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CONTENT_SECURITY_POLICY;
    use http::header;

    const ON: Site<'static> = Site {
        demo: true,
        admin: true,
        room_prefix: "",
        metrics_port: 0,
    };
    const OFF: Site<'static> = Site {
        demo: false,
        admin: false,
        ..ON
    };

    fn get(site: &Site<'_>, uri: &str) -> Option<Response<Bytes>> {
        site.respond(&Request::get(uri).body(()).unwrap())
    }

    fn with(
        site: &Site<'_>,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> Response<Bytes> {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        site.respond(&req.body(()).unwrap()).expect("ours")
    }

    fn header(r: &Response<Bytes>, name: header::HeaderName) -> &str {
        r.headers()
            .get(&name)
            .unwrap_or_else(|| panic!("no {name}"))
            .to_str()
            .unwrap()
    }

    fn body(r: &Response<Bytes>) -> &str {
        std::str::from_utf8(r.body()).unwrap()
    }

    #[test]
    fn paths_that_are_not_ours_go_back_to_the_gateway() {
        for path in [
            "/room",
            "/demo/room",
            "/demox",
            "/api/rooms",
            "/metrics",
            "/healthz",
            "/admin/api/cluster",
            "/adminx",
            "/assetsx",
        ] {
            assert!(get(&ON, path).is_none(), "{path}");
        }
    }

    #[test]
    fn the_landing_page_is_html_with_the_policy() {
        let r = get(&ON, "/").unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, header::CONTENT_TYPE), "text/html; charset=utf-8");
        assert_eq!(
            header(&r, header::CONTENT_SECURITY_POLICY),
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(header(&r, header::CACHE_CONTROL), "no-cache");
        assert_eq!(header(&r, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert_eq!(header(&r, header::X_FRAME_OPTIONS), "DENY");
        assert!(header(&r, header::ETAG).starts_with('"'));
        assert!(body(&r).contains("href=\"/demo\""));
        assert!(body(&r).contains("href=\"/metrics\""));
        assert!(!body(&get(&OFF, "/").unwrap()).contains("/demo"));
    }

    #[test]
    fn the_demo_is_served_only_when_on() {
        for path in ["/demo", "/demo/", "/demo?room=x"] {
            let r = get(&ON, path).unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert!(body(&r).contains("id=\"editor\""));
            let off = get(&OFF, path).unwrap();
            assert_eq!(off.status(), StatusCode::NOT_FOUND, "{path}");
            assert_eq!(
                header(&off, header::CONTENT_SECURITY_POLICY),
                CONTENT_SECURITY_POLICY
            );
        }
    }

    #[test]
    fn the_admin_page_is_served_only_when_on() {
        for path in ["/admin", "/admin/"] {
            let r = get(&ON, path).unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert!(body(&r).contains("id=\"login\""));
            assert_eq!(get(&OFF, path).unwrap().status(), StatusCode::NOT_FOUND);
        }
        assert!(body(&get(&ON, "/").unwrap()).contains("href=\"/admin\""));
        assert!(!body(&get(&OFF, "/").unwrap()).contains("/admin"));
        for name in ["admin.js", "admin.css"] {
            let path = format!("/assets/{name}");
            assert_eq!(get(&ON, &path).unwrap().status(), StatusCode::OK);
            assert_eq!(get(&OFF, &path).unwrap().status(), StatusCode::NOT_FOUND);
        }
    }

    #[test]
    fn the_room_prefix_reaches_the_demo() {
        let site = Site {
            room_prefix: "/collab",
            ..ON
        };
        let r = get(&site, "/demo").unwrap();
        assert!(body(&r).contains("<meta name=\"yws-room-prefix\" content=\"/collab\">"));
    }

    #[test]
    fn assets_have_their_type_and_a_strong_etag() {
        for asset in assets::ASSETS {
            let r = get(&ON, &format!("/assets/{}", asset.name)).unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{}", asset.name);
            assert_eq!(header(&r, header::CONTENT_TYPE), asset.content_type);
            assert_eq!(r.body().as_ref(), asset.bytes);
            let etag = header(&r, header::ETAG);
            assert_eq!(etag.len(), 18, "{etag}");
            assert_eq!(header(&r, header::CACHE_CONTROL), "no-cache");
        }
    }

    #[test]
    fn versioned_asset_urls_are_immutable() {
        let url = assets::url("demo.js").unwrap();
        let r = get(&ON, &url).unwrap();
        assert_eq!(header(&r, header::CACHE_CONTROL), IMMUTABLE);
        // A stale version is served (the current bytes) but not cached for good.
        let r = get(&ON, "/assets/demo.js?v=0000000000000000").unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, header::CACHE_CONTROL), "no-cache");
    }

    #[test]
    fn a_known_etag_gets_304_without_a_body() {
        for uri in ["/", "/demo", "/assets/landing.css"] {
            let first = get(&ON, uri).unwrap();
            let etag = header(&first, header::ETAG).to_string();
            let again = with(&ON, Method::GET, uri, &[("if-none-match", &etag)]);
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{uri}");
            assert!(again.body().is_empty());
            assert_eq!(header(&again, header::ETAG), etag);
            let other = with(&ON, Method::GET, uri, &[("if-none-match", "\"other\"")]);
            assert_eq!(other.status(), StatusCode::OK);
        }
    }

    #[test]
    fn html_etags_follow_the_settings() {
        let etag = |site: &Site<'_>| header(&get(site, "/").unwrap(), header::ETAG).to_string();
        assert_eq!(etag(&ON), etag(&ON));
        assert_ne!(etag(&ON), etag(&OFF));
    }

    #[test]
    fn unknown_or_disabled_assets_are_404() {
        for path in [
            "/assets",
            "/assets/",
            "/assets/nope.js",
            "/assets/../Cargo.toml",
            "/assets/demo.js/x",
        ] {
            assert_eq!(
                get(&ON, path).unwrap().status(),
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
        for name in ["demo.js", "demo.css", "admin.js", "admin.css"] {
            let path = format!("/assets/{name}");
            assert_eq!(get(&OFF, &path).unwrap().status(), StatusCode::NOT_FOUND);
        }
        for name in ["landing.js", "landing.css", "favicon.svg", "licenses.txt"] {
            let path = format!("/assets/{name}");
            assert_eq!(get(&OFF, &path).unwrap().status(), StatusCode::OK, "{name}");
        }
    }

    #[test]
    fn only_get_and_head() {
        let head = with(&ON, Method::HEAD, "/demo", &[]);
        assert_eq!(head.status(), StatusCode::OK);
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
            for path in ["/", "/demo", "/assets/demo.js"] {
                let r = with(&ON, method.clone(), path, &[]);
                assert_eq!(
                    r.status(),
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path}"
                );
                assert_eq!(header(&r, header::ALLOW), "GET, HEAD");
            }
        }
    }

    #[test]
    fn query_params() {
        assert_eq!(query_param(Some("v=abc"), "v"), Some("abc"));
        assert_eq!(query_param(Some("x=1&v=abc"), "v"), Some("abc"));
        assert_eq!(query_param(Some("vv=abc"), "v"), None);
        assert_eq!(query_param(None, "v"), None);
    }
}
