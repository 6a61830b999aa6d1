//! Where a token comes from: the query parameter (what `WebsocketProvider`'s `params` option
//! sends), an `Authorization: Bearer` header, or the configured cookie — looked up in that
//! order; the first non-empty one wins.

use std::borrow::Cow;

use http::header::{AUTHORIZATION, COOKIE};
use http::request::Parts;
use http::HeaderMap;

/// The configured token locations.
#[derive(Debug, Clone)]
pub(crate) struct TokenSources {
    query_param: String,
    cookie: Option<String>,
}

impl TokenSources {
    pub(crate) fn new(query_param: &str, cookie: Option<&str>) -> Self {
        TokenSources {
            query_param: query_param.to_owned(),
            cookie: cookie.map(str::to_owned),
        }
    }

    /// The request's token, if any.
    pub(crate) fn find<'a>(&self, head: &'a Parts) -> Option<Cow<'a, str>> {
        if let Some(token) = from_query(head.uri.query(), &self.query_param) {
            return Some(token);
        }
        if let Some(token) = from_bearer(&head.headers) {
            return Some(Cow::Borrowed(token));
        }
        let name = self.cookie.as_deref()?;
        cookies(&head.headers)
            .find(|(n, v)| *n == name && !v.is_empty())
            .map(|(_, v)| Cow::Borrowed(v))
    }
}

/// The first non-empty `name` parameter of a query string, percent- and `+`-decoded.
fn from_query<'a>(query: Option<&'a str>, name: &str) -> Option<Cow<'a, str>> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// The credentials of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn from_bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// All `name=value` pairs of all `Cookie` headers (HTTP/2 may send several), with surrounding
/// double quotes removed from values.
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            Some((name.trim(), value))
        })
}

/// The raw `Cookie` header (several joined with `; `), for the webhook.
pub(crate) fn raw_cookie(headers: &HeaderMap) -> Option<String> {
    let parts: Vec<&str> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::builder().uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn find(sources: &TokenSources, head: &Parts) -> Option<String> {
        sources.find(head).map(Cow::into_owned)
    }

    #[test]
    fn query_parameter_is_percent_decoded() {
        let sources = TokenSources::new("token", None);
        assert_eq!(
            find(
                &sources,
                &head("/room?a=1&token=ab%2Ecd%3D&token=second", &[])
            ),
            Some("ab.cd=".to_owned())
        );
        assert_eq!(find(&sources, &head("/room?token=", &[])), None);
        assert_eq!(find(&sources, &head("/room?tokens=x", &[])), None);
        let custom = TokenSources::new("auth", None);
        assert_eq!(
            find(&custom, &head("/r?auth=a+b", &[])),
            Some("a b".to_owned())
        );
    }

    #[test]
    fn bearer_header() {
        let sources = TokenSources::new("token", None);
        assert_eq!(
            find(&sources, &head("/r", &[("authorization", "bearer  abc ")])),
            Some("abc".to_owned())
        );
        assert_eq!(
            find(&sources, &head("/r", &[("authorization", "Basic abc")])),
            None
        );
        assert_eq!(
            find(&sources, &head("/r", &[("authorization", "Bearer")])),
            None
        );
    }

    #[test]
    fn cookie_only_when_configured() {
        let headers = [("cookie", "a=1; yws_token=\"tok\""), ("cookie", "b=2")];
        assert_eq!(
            find(&TokenSources::new("token", None), &head("/r", &headers)),
            None
        );
        let sources = TokenSources::new("token", Some("yws_token"));
        assert_eq!(
            find(&sources, &head("/r", &headers)),
            Some("tok".to_owned())
        );
        assert_eq!(
            raw_cookie(&head("/r", &headers).headers).as_deref(),
            Some("a=1; yws_token=\"tok\"; b=2")
        );
        assert_eq!(raw_cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn query_wins_over_header_and_cookie() {
        let sources = TokenSources::new("token", Some("t"));
        let head = head(
            "/r?token=q",
            &[("authorization", "Bearer h"), ("cookie", "t=c")],
        );
        assert_eq!(find(&sources, &head), Some("q".to_owned()));
    }
}
