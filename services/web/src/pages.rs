//! The HTML pages: templates in `pages/` with `{{key}}` placeholders, rendered per request
//! from the [`Site`](crate::Site) settings (they are a few kilobytes; rendering is cheap and
//! keeps the gateway free of cached state).
//!
//! Placeholders: `{{asset:NAME}}` (a versioned asset URL), `{{room_prefix}}`, `{{version}}`,
//! `{{cards}}` (the landing page's links). Every value is HTML-escaped except `{{cards}}`,
//! which is built here from fixed strings.

use crate::assets;
use crate::Site;
use std::borrow::Cow;

const LANDING: &str = include_str!("../pages/landing.html");
const DEMO: &str = include_str!("../pages/demo.html");
const ADMIN: &str = include_str!("../pages/admin.html");

/// The crate version shown in page footers (the workspace version).
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Where the docs live: the repository's README.
const DOCS: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "#readme");

/// `GET /`.
pub(crate) fn landing(site: &Site<'_>) -> String {
    render(LANDING, |key| match key {
        "cards" => Some(Cow::Owned(cards(site))),
        _ => common(site, key),
    })
}

/// `GET /demo`.
pub(crate) fn demo(site: &Site<'_>) -> String {
    render(DEMO, |key| common(site, key))
}

/// `GET /admin`.
pub(crate) fn admin(site: &Site<'_>) -> String {
    render(ADMIN, |key| common(site, key))
}

fn common(site: &Site<'_>, key: &str) -> Option<Cow<'static, str>> {
    if let Some(name) = key.strip_prefix("asset:") {
        return assets::url(name).map(|u| Cow::Owned(escape(&u)));
    }
    match key {
        "room_prefix" => Some(Cow::Owned(escape(site.room_prefix))),
        "version" => Some(Cow::Borrowed(VERSION)),
        _ => None,
    }
}

fn card(out: &mut String, href: &str, title: &str, text: &str) {
    out.push_str(&format!(
        "<a class=\"card\" href=\"{}\"><strong>{}</strong><span>{}</span></a>\n",
        escape(href),
        escape(title),
        escape(text)
    ));
}

fn cards(site: &Site<'_>) -> String {
    let mut out = String::new();
    if site.demo {
        card(
            &mut out,
            "/demo",
            "Demo",
            "A shared rich-text document: open it in two tabs and edit together, with names and cursors.",
        );
    }
    if site.admin {
        card(
            &mut out,
            "/admin",
            "Admin console",
            "The cluster's nodes and rooms, who is in them, their content live; needs the admin token.",
        );
    }
    let metrics = if site.metrics_port != 0 {
        format!(
            "This node's Prometheus metrics (also on port {} with the probes).",
            site.metrics_port
        )
    } else {
        "This node's Prometheus metrics.".to_string()
    };
    card(&mut out, "/metrics", "Metrics", &metrics);
    card(
        &mut out,
        "/readyz",
        "Readiness",
        "Whether this node takes connections now (/healthz: whether it lives).",
    );
    card(
        &mut out,
        DOCS,
        "Docs",
        "Configuration, deployment and scaling: the README on GitHub.",
    );
    out
}

/// Replaces every `{{key}}` in `template` with `value(key)`. An unknown key renders as
/// nothing (the tests check that every template renders every key).
fn render<'a>(template: &str, value: impl Fn(&str) -> Option<Cow<'a, str>>) -> String {
    let mut out = String::with_capacity(template.len() + 512);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        if let Some(v) = value(&after[..end]) {
            out.push_str(&v);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Escapes text for HTML content and double-quoted attributes.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(demo: bool) -> Site<'static> {
        Site {
            demo,
            admin: demo,
            room_prefix: "",
            metrics_port: 0,
        }
    }

    fn keys(template: &str) -> Vec<&str> {
        template
            .split("{{")
            .skip(1)
            .filter_map(|s| s.split_once("}}").map(|(k, _)| k))
            .collect()
    }

    #[test]
    fn every_placeholder_has_a_value() {
        for template in [LANDING, DEMO, ADMIN] {
            for key in keys(template) {
                let known =
                    key == "cards" && template == LANDING || common(&site(true), key).is_some();
                assert!(known, "unknown placeholder {{{{{key}}}}}");
            }
        }
        for page in [landing(&site(true)), demo(&site(true)), admin(&site(true))] {
            assert!(!page.contains("{{") && !page.contains("}}"), "{page}");
        }
    }

    /// Whether `html` has an attribute like ` onclick=`.
    fn has_event_handler(html: &str) -> bool {
        html.split(" on").skip(1).any(|rest| {
            let name_len = rest.chars().take_while(char::is_ascii_lowercase).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        })
    }

    #[test]
    fn the_event_handler_check_finds_one() {
        assert!(has_event_handler("<a onclick=\"x()\">"));
        assert!(!has_event_handler("<p>go on = good, onwards</p>"));
    }

    #[test]
    fn templates_carry_no_inline_script_or_style() {
        for template in [LANDING, DEMO, ADMIN] {
            let lower = template.to_ascii_lowercase();
            assert!(!lower.contains("<style"), "inline <style>");
            assert!(!lower.contains(" style="), "style attribute");
            assert!(!lower.contains("javascript:"), "javascript: URL");
            assert!(!has_event_handler(&lower), "inline event handler");
            for script in lower.split("<script").skip(1) {
                let (tag, body) = script.split_once('>').unwrap();
                assert!(tag.contains(" src="), "script without src");
                assert!(body.starts_with("</script"), "script with a body");
            }
            for link in lower.split(" href=\"").skip(1) {
                let href = link.split('"').next().unwrap();
                assert!(
                    href.starts_with('/') || href.starts_with("{{") || href.starts_with('#'),
                    "external resource {href}"
                );
            }
        }
    }

    #[test]
    fn the_landing_page_links_what_is_on() {
        let on = landing(&site(true));
        assert!(on.contains("href=\"/demo\""));
        assert!(on.contains("href=\"/metrics\""));
        assert!(on.contains("href=\"/readyz\""));
        assert!(on.contains(&format!("href=\"{DOCS}\"")));
        assert!(DOCS.starts_with("https://github.com/"));
        let off = landing(&site(false));
        assert!(!off.contains("/demo"), "no demo link when the demo is off");
        let with_port = landing(&Site {
            metrics_port: 9100,
            ..site(false)
        });
        assert!(with_port.contains("also on port 9100"));
    }

    #[test]
    fn values_are_escaped() {
        let page = demo(&Site {
            room_prefix: "/a\"><script>",
            ..site(true)
        });
        assert!(page.contains("content=\"/a&quot;&gt;&lt;script&gt;\""));
        assert_eq!(escape("a&b<'>"), "a&amp;b&lt;&#39;&gt;");
    }

    #[test]
    fn render_handles_unknown_and_unclosed_keys() {
        let r = render("a{{x}}b{{y}}c{{open", |k| {
            (k == "x").then_some(Cow::Borrowed("X"))
        });
        assert_eq!(r, "aXbc{{open");
    }

    #[test]
    fn pages_reference_their_assets() {
        let d = demo(&site(true));
        assert!(d.contains(&assets::url("demo.js").unwrap()));
        assert!(d.contains(&assets::url("demo.css").unwrap()));
        let a = admin(&site(true));
        assert!(a.contains(&assets::url("admin.js").unwrap()));
        assert!(a.contains(&assets::url("admin.css").unwrap()));
        let l = landing(&site(true));
        assert!(l.contains(&assets::url("landing.js").unwrap()));
        assert!(l.contains(&assets::url("landing.css").unwrap()));
    }
}
