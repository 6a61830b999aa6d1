//! The one parser of list settings: a sequence (TOML) or one comma-separated string (an
//! environment variable, `YWS__…` or a reference name).

use serde::de::{self, SeqAccess, Visitor};
use serde::Deserializer;
use std::fmt;

/// Deserializes a list given as a sequence or as one comma-separated string. Entries are
/// trimmed; empty ones are dropped (`"a, ,b"` → `["a", "b"]`, `""` → `[]`).
///
/// Use with `#[serde(deserialize_with = "yws_config::comma_list")]`.
pub fn comma_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    deserializer.deserialize_any(ListVisitor { keep_empty: false })
}

/// Like [`comma_list`], but empty entries are kept (`"a,,b"` → `["a", "", "b"]`, `""` →
/// `[""]`), for settings whose validation refuses them rather than ignore a typo.
pub fn comma_list_keep_empty<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    deserializer.deserialize_any(ListVisitor { keep_empty: true })
}

struct ListVisitor {
    keep_empty: bool,
}

impl ListVisitor {
    fn entries<'a>(&self, items: impl Iterator<Item = &'a str>) -> Vec<String> {
        items
            .map(str::trim)
            .filter(|s| self.keep_empty || !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

impl<'de> Visitor<'de> for ListVisitor {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of strings or a comma-separated string")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(self.entries(value.split(',')))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element::<String>()? {
            items.push(item);
        }
        Ok(self.entries(items.iter().map(String::as_str)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Lists {
        #[serde(deserialize_with = "comma_list")]
        dropped: Vec<String>,
        #[serde(deserialize_with = "comma_list_keep_empty")]
        kept: Vec<String>,
    }

    fn parse(json: serde_json::Value) -> Result<Lists, serde_json::Error> {
        serde_json::from_value(json)
    }

    #[test]
    fn strings_and_sequences() {
        let l = parse(serde_json::json!({"dropped": " a, ,b ", "kept": " a, ,b "})).unwrap();
        assert_eq!(l.dropped, ["a", "b"]);
        assert_eq!(l.kept, ["a", "", "b"]);
        let l = parse(serde_json::json!({"dropped": ["x ", ""], "kept": ["x ", ""]})).unwrap();
        assert_eq!(l.dropped, ["x"]);
        assert_eq!(l.kept, ["x", ""]);
        let l = parse(serde_json::json!({"dropped": "", "kept": ""})).unwrap();
        assert!(l.dropped.is_empty());
        assert_eq!(l.kept, [""]);
        let l = parse(serde_json::json!({"dropped": null, "kept": null})).unwrap();
        assert!(l.dropped.is_empty() && l.kept.is_empty());
    }

    #[test]
    fn other_types_are_errors() {
        assert!(parse(serde_json::json!({"dropped": 7000, "kept": "a"})).is_err());
        assert!(parse(serde_json::json!({"dropped": "a", "kept": true})).is_err());
    }
}
