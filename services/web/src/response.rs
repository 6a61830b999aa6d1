//! Building responses: the security headers every response of this crate carries, caching
//! (`ETag`, `If-None-Match` → 304, `Cache-Control`), and the plain error answers.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};

/// The pages' Content-Security-Policy. Scripts, styles, images and fonts only from this
/// origin, no inline code and no `eval`; WebSockets to this server (`ws:`/`wss:` — `'self'`
/// alone does not cover them in every browser); no framing, no `<base>`, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self' ws: wss:; \
object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// HTML is revalidated on every load (cheap: a 304); it names its assets by digest.
pub(crate) const REVALIDATE: &str = "no-cache";
/// An asset requested under its current digest never changes.
pub(crate) const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn security_headers(headers: &mut HeaderMap) {
    let fixed: [(HeaderName, &'static str); 6] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// A cacheable body: `200` with the body, or `304` when the client's `If-None-Match` names
/// `digest` already.
pub(crate) fn cached(
    request_headers: &HeaderMap,
    body: Bytes,
    content_type: &'static str,
    digest: &str,
    cache_control: &'static str,
) -> Response<Bytes> {
    let etag = format!("\"{digest}\"");
    let fresh = if_none_match(request_headers, &etag);
    let mut response = Response::new(if fresh { Bytes::new() } else { body });
    if fresh {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
    }
    let headers = response.headers_mut();
    security_headers(headers);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

/// Whether `If-None-Match` lists `etag` (weak comparison, as RFC 9110 asks for GET) or `*`.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// A short plain-text answer (404, 405) with the security headers.
pub(crate) fn plain(status: StatusCode, text: &'static str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from_static(text.as_bytes()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    security_headers(headers);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(REVALIDATE));
    response
}

/// `405` for anything but GET and HEAD.
pub(crate) fn method_not_allowed() -> Response<Bytes> {
    let mut response = plain(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed: this page answers GET and HEAD\n",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inm(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn if_none_match_forms() {
        let tag = "\"abc\"";
        assert!(if_none_match(&inm(&["\"abc\""]), tag));
        assert!(if_none_match(&inm(&["W/\"abc\""]), tag));
        assert!(if_none_match(&inm(&["\"x\", \"abc\""]), tag));
        assert!(if_none_match(&inm(&["\"x\"", "\"abc\""]), tag));
        assert!(if_none_match(&inm(&["*"]), tag));
        assert!(!if_none_match(&inm(&["\"abcd\""]), tag));
        assert!(!if_none_match(&inm(&["abc"]), tag));
        assert!(!if_none_match(&HeaderMap::new(), tag));
    }

    #[test]
    fn the_policy_allows_nothing_inline() {
        let csp = CONTENT_SECURITY_POLICY;
        assert!(!csp.contains("unsafe"), "{csp}");
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
        ] {
            assert!(csp.contains(directive), "{directive}");
        }
        assert!(HeaderValue::from_str(csp).is_ok());
    }
}
