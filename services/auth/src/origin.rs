//! Cross-site WebSocket hijacking protection: the `Origin` allow-list.
//!
//! Browsers always send `Origin` on a WebSocket handshake (and on cross-origin `fetch`), and a
//! page cannot forge it. So when cookies can authenticate a request, a request whose `Origin`
//! is present but not listed is refused. A request without `Origin` does not come from a
//! browser page (the Node `y-websocket` client, a native app, `curl`) and is let through: such
//! clients can set any header anyway, so the check would add nothing.

use http::header::ORIGIN;
use http::HeaderMap;

use crate::grant::{Refusal, RefusalReason};

/// The normalized allow-list (lowercase `scheme://host[:port]`, default ports dropped).
#[derive(Debug, Clone)]
pub(crate) struct OriginPolicy {
    allowed: Vec<String>,
}

impl OriginPolicy {
    /// Builds the policy; `None` when the list is empty (no check).
    pub(crate) fn new(origins: &[String]) -> Result<Option<Self>, String> {
        if origins.is_empty() {
            return Ok(None);
        }
        let allowed = origins
            .iter()
            .map(|o| normalize_origin(o))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(OriginPolicy { allowed }))
    }

    /// Refuses a request whose `Origin` is present and not allowed.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let mut values = headers.get_all(ORIGIN).iter();
        let Some(value) = values.next() else {
            return Ok(());
        };
        let refuse = || Refusal::new(RefusalReason::BadOrigin, "origin not allowed");
        if values.next().is_some() {
            return Err(refuse());
        }
        let value = value.to_str().map_err(|_| refuse())?;
        match normalize_origin(value) {
            Ok(origin) if self.allowed.contains(&origin) => Ok(()),
            _ => Err(refuse()),
        }
    }
}

/// `"HTTPS://App.Example.com:443/"` → `"https://app.example.com"`. Errors say what is wrong.
pub(crate) fn normalize_origin(origin: &str) -> Result<String, String> {
    let lower = origin.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('/').unwrap_or(&lower);
    let (scheme, rest) = lower
        .split_once("://")
        .ok_or_else(|| format!("`{origin}` is not an origin like `https://app.example.com`"))?;
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return Err(format!("`{origin}`: the scheme must be http or https")),
    };
    if rest.is_empty()
        || rest.contains(['/', '?', '#', '@', '*'])
        || rest.contains(char::is_whitespace)
    {
        return Err(format!(
            "`{origin}` must be exactly `scheme://host[:port]` (no path, wildcard or user info)"
        ));
    }
    let port_ok = valid_port(rest);
    if !port_ok || rest.parse::<http::uri::Authority>().is_err() {
        return Err(format!("`{origin}` has an invalid host or port"));
    }
    let host = rest.strip_suffix(default_port).unwrap_or(rest);
    Ok(format!("{scheme}://{host}"))
}

/// Whether the port part of `host[:port]` (or `[v6]:port`) is absent or 1-5 digits fitting u16.
fn valid_port(authority: &str) -> bool {
    let after_host = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => &authority[end + 1..],
            None => return false,
        }
    } else {
        authority.find(':').map_or("", |i| &authority[i..])
    };
    match after_host.strip_prefix(':') {
        None => after_host.is_empty(),
        Some(port) => port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn normalizes() {
        assert_eq!(
            normalize_origin("HTTPS://App.Example.com:443/").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            normalize_origin("http://localhost:3000").unwrap(),
            "http://localhost:3000"
        );
        assert_eq!(normalize_origin("http://[::1]:80").unwrap(), "http://[::1]");
        for bad in [
            "*",
            "example.com",
            "ftp://example.com",
            "https://",
            "https://example.com/app",
            "https://*.example.com",
            "https://user@example.com",
            "https://example.com:http",
            "https://example.com:",
            "https://example.com:+1",
            "https://example.com:70000",
            "http://[::1",
        ] {
            assert!(normalize_origin(bad).is_err(), "{bad}");
        }
    }

    fn headers(origins: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for origin in origins {
            map.append(ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        map
    }

    #[test]
    fn checks_the_origin_header() {
        let policy = OriginPolicy::new(&["https://app.example.com".to_owned()])
            .unwrap()
            .unwrap();
        assert!(policy.check(&headers(&[])).is_ok());
        assert!(policy.check(&headers(&["https://app.example.com"])).is_ok());
        assert!(policy
            .check(&headers(&["https://APP.example.com:443"]))
            .is_ok());
        for bad in [
            &["https://evil.example.com"][..],
            &["http://app.example.com"],
            &["null"],
            &["https://app.example.com", "https://app.example.com"],
        ] {
            let refusal = policy.check(&headers(bad)).unwrap_err();
            assert_eq!(refusal.reason, RefusalReason::BadOrigin);
            assert_eq!(refusal.status, 403);
        }
    }

    #[test]
    fn empty_list_means_no_policy() {
        assert!(OriginPolicy::new(&[]).unwrap().is_none());
    }
}
