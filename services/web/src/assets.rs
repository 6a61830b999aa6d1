//! The bundle in `assets/`, embedded with `include_bytes!`: each file with its content type,
//! the page it belongs to, and a content digest for `ETag`s and cache-busting URLs.

use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// Which page an asset belongs to: it is only served while that page is enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Shared by every page (the landing page is always on).
    Site,
    /// Only the demo.
    Demo,
    /// Only the admin console.
    Admin,
}

/// One embedded file.
pub(crate) struct Asset {
    /// File name under `/assets/`.
    pub(crate) name: &'static str,
    pub(crate) content_type: &'static str,
    pub(crate) scope: Scope,
    pub(crate) bytes: &'static [u8],
}

impl std::fmt::Debug for Asset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Asset")
            .field("name", &self.name)
            .field("content_type", &self.content_type)
            .field("scope", &self.scope)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";
const TEXT: &str = "text/plain; charset=utf-8";

macro_rules! asset {
    ($name:literal, $content_type:expr, $scope:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            scope: $scope,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $name)),
        }
    };
}

/// Every file of `assets/` (a test checks that the directory holds exactly these).
pub(crate) static ASSETS: &[Asset] = &[
    asset!("favicon.svg", SVG, Scope::Site),
    asset!("licenses.txt", TEXT, Scope::Site),
    asset!("landing.css", CSS, Scope::Site),
    asset!("landing.js", JS, Scope::Site),
    asset!("demo.css", CSS, Scope::Demo),
    asset!("demo.js", JS, Scope::Demo),
    asset!("admin.css", CSS, Scope::Admin),
    asset!("admin.js", JS, Scope::Admin),
];

/// The asset called `name`.
pub(crate) fn find(name: &str) -> Option<(usize, &'static Asset)> {
    ASSETS.iter().enumerate().find(|(_, a)| a.name == name)
}

/// The first 64 bits of the SHA-256 of `bytes`, in hex: an `ETag` and a cache-busting
/// version in one.
pub(crate) fn digest(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..8])
}

/// The digest of asset `index` of [`ASSETS`], computed once.
pub(crate) fn asset_digest(index: usize) -> &'static str {
    static DIGESTS: OnceLock<Vec<String>> = OnceLock::new();
    let digests = DIGESTS.get_or_init(|| ASSETS.iter().map(|a| digest(a.bytes)).collect());
    digests.get(index).map(String::as_str).unwrap_or_default()
}

/// The URL a page uses for asset `name`: `/assets/<name>?v=<digest>`, so a new build is a new
/// URL and the old one may be cached for good.
pub(crate) fn url(name: &str) -> Option<String> {
    find(name).map(|(i, a)| format!("/assets/{}?v={}", a.name, asset_digest(i)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_exactly_the_files_in_assets() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = ASSETS.iter().map(|a| a.name.to_string()).collect();
        listed.sort();
        assert_eq!(on_disk, listed, "assets/ and ASSETS disagree");
        for a in ASSETS {
            assert!(!a.bytes.is_empty(), "{} is empty", a.name);
            let ext = a.name.rsplit('.').next().unwrap();
            let expected = match ext {
                "js" => JS,
                "css" => CSS,
                "svg" => SVG,
                "txt" => TEXT,
                other => panic!("no content type for .{other}"),
            };
            assert_eq!(a.content_type, expected, "{}", a.name);
        }
    }

    #[test]
    fn digests_are_stable_and_distinct() {
        assert_eq!(digest(b"abc"), "ba7816bf8f01cfea");
        let all: std::collections::HashSet<_> = (0..ASSETS.len()).map(asset_digest).collect();
        assert_eq!(all.len(), ASSETS.len());
        assert_eq!(asset_digest(ASSETS.len()), "");
        let url = url("demo.js").unwrap();
        assert!(
            url.starts_with("/assets/demo.js?v=") && url.len() == "/assets/demo.js?v=".len() + 16
        );
        assert!(self::url("nope.js").is_none());
    }
}
