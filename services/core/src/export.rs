//! A document as JSON of named shared objects, in the shape of the reference server's
//! `CALLBACK_OBJECTS` (used by the HTTP callback and the document API).

use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use yrs::types::AsPrelim;
use yrs::types::ToJson;
use yrs::{Doc, GetString, In, Out, ReadTxn, Transact};

/// The kind of a shared object, as named in `CALLBACK_OBJECTS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ObjectKind {
    /// `Y.Text` → a string.
    Text,
    /// `Y.Array` → a JSON array.
    Array,
    /// `Y.Map` → a JSON object.
    Map,
    /// `Y.XmlFragment` → its XML string.
    XmlFragment,
    /// A root `Y.XmlElement` → its XML string (`<UNDEFINED>…</UNDEFINED>`, as Yjs names a
    /// root element).
    XmlElement,
}

impl ObjectKind {
    fn name(self) -> &'static str {
        match self {
            ObjectKind::Text => "Text",
            ObjectKind::Array => "Array",
            ObjectKind::Map => "Map",
            ObjectKind::XmlFragment => "XmlFragment",
            ObjectKind::XmlElement => "XmlElement",
        }
    }
}

/// Which shared objects to export: name → kind (`{"content":"Text","meta":"Map"}`).
pub type ObjectSpec = BTreeMap<String, ObjectKind>;

/// Parses the `CALLBACK_OBJECTS` / `?objects=` syntax.
pub fn parse_spec(json: &str) -> Result<ObjectSpec, String> {
    serde_json::from_str(json).map_err(|e| {
        format!("expected a JSON object of name → Text|Array|Map|XmlFragment|XmlElement: {e}")
    })
}

/// The spec of every root type `state` holds, for showing a document whose objects are not
/// named in advance (the admin console's default). A root's kind is recorded only once a
/// client reads it, so it is inferred from the content as yrs does: text runs → `Text`, keys
/// → `Map`, XML children → `XmlFragment`, other items → `Array`; an empty root is left out.
pub fn root_spec(state: &[u8]) -> Result<ObjectSpec, String> {
    let doc = Doc::new();
    let update = yws_protocol::validate::update(state).map_err(|e| e.to_string())?;
    doc.transact_mut()
        .apply_update(update)
        .map_err(|e| e.to_string())?;
    let txn = doc.transact();
    let mut spec = ObjectSpec::new();
    for (name, out) in txn.root_refs() {
        let kind = match &out {
            Out::YText(_) | Out::YXmlText(_) => ObjectKind::Text,
            Out::YArray(_) => ObjectKind::Array,
            Out::YMap(_) => ObjectKind::Map,
            Out::YXmlFragment(_) => ObjectKind::XmlFragment,
            Out::YXmlElement(_) => ObjectKind::XmlElement,
            Out::UndefinedRef(_) => match out.as_prelim(&txn) {
                In::Text(_) | In::XmlText(_) => ObjectKind::Text,
                In::Map(map) if map.is_empty() => continue,
                In::Map(_) => ObjectKind::Map,
                In::XmlElement(_) => ObjectKind::XmlElement,
                In::Array(items) if items.iter().any(is_xml) => ObjectKind::XmlFragment,
                In::Array(_) => ObjectKind::Array,
                _ => continue,
            },
            _ => continue,
        };
        spec.insert(name.to_string(), kind);
    }
    Ok(spec)
}

fn is_xml(item: &In) -> bool {
    matches!(
        item,
        In::XmlElement(_) | In::XmlText(_) | In::XmlFragment(_)
    )
}

/// `{ name: { type, content } }` for every object in `spec`, read from `doc`.
///
/// Reading a root type by a kind fixes that kind for the document's lifetime in yrs, so the
/// export works on a private copy and never touches a live room's document.
pub fn export(state: &[u8], spec: &ObjectSpec) -> Result<Value, String> {
    let doc = Doc::new();
    let update = yws_protocol::validate::update(state).map_err(|e| e.to_string())?;
    doc.transact_mut()
        .apply_update(update)
        .map_err(|e| e.to_string())?;
    let mut data = Map::new();
    for (name, kind) in spec {
        let content = content(&doc, name, *kind);
        data.insert(
            name.clone(),
            json!({ "type": kind.name(), "content": content }),
        );
    }
    Ok(Value::Object(data))
}

fn content(doc: &Doc, name: &str, kind: ObjectKind) -> Value {
    let any_to_json = |any: yrs::Any| serde_json::to_value(any).unwrap_or(Value::Null);
    match kind {
        ObjectKind::Text => {
            let text = doc.get_or_insert_text(name);
            Value::String(text.get_string(&doc.transact()))
        }
        ObjectKind::Array => {
            let array = doc.get_or_insert_array(name);
            any_to_json(array.to_json(&doc.transact()))
        }
        ObjectKind::Map => {
            let map = doc.get_or_insert_map(name);
            any_to_json(map.to_json(&doc.transact()))
        }
        ObjectKind::XmlFragment => {
            let fragment = doc.get_or_insert_xml_fragment(name);
            Value::String(fragment.get_string(&doc.transact()))
        }
        ObjectKind::XmlElement => {
            let fragment = doc.get_or_insert_xml_fragment(name);
            let inner = fragment.get_string(&doc.transact());
            Value::String(format!("<UNDEFINED>{inner}</UNDEFINED>"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Array, Map as _, ReadTxn, StateVector, Text, XmlFragment, XmlTextPrelim};

    #[test]
    fn exports_each_kind_like_the_reference() {
        let doc = Doc::new();
        // Root refs first: `get_or_insert_*` takes the document's lock itself.
        let (text, map) = (
            doc.get_or_insert_text("content"),
            doc.get_or_insert_map("meta"),
        );
        let (list, xml) = (
            doc.get_or_insert_array("list"),
            doc.get_or_insert_xml_fragment("xml"),
        );
        {
            let mut txn = doc.transact_mut();
            text.push(&mut txn, "hello");
            map.insert(&mut txn, "title", "Doc");
            list.push_back(&mut txn, 1);
            xml.push_back(&mut txn, XmlTextPrelim::new("hi"));
        }
        let state = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let spec =
            parse_spec(r#"{"content":"Text","meta":"Map","list":"Array","xml":"XmlFragment"}"#)
                .unwrap();
        let data = export(&state, &spec).unwrap();
        assert_eq!(data["content"], json!({"type": "Text", "content": "hello"}));
        assert_eq!(
            data["meta"],
            json!({"type": "Map", "content": {"title": "Doc"}})
        );
        assert_eq!(data["list"], json!({"type": "Array", "content": [1]}));
        assert_eq!(data["xml"], json!({"type": "XmlFragment", "content": "hi"}));
        assert!(parse_spec(r#"{"x":"Nope"}"#).is_err());
        assert!(export(&[1, 2, 3], &spec).is_err());
    }

    #[test]
    fn the_root_spec_names_every_root_with_its_kind() {
        let doc = Doc::new();
        let (text, map) = (doc.get_or_insert_text("t"), doc.get_or_insert_map("m"));
        let (list, xml) = (
            doc.get_or_insert_array("a"),
            doc.get_or_insert_xml_fragment("prosemirror"),
        );
        {
            let mut txn = doc.transact_mut();
            text.push(&mut txn, "hello");
            map.insert(&mut txn, "k", 1);
            list.push_back(&mut txn, 1);
            xml.push_back(&mut txn, XmlTextPrelim::new("hi"));
        }
        let state = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let spec = root_spec(&state).unwrap();
        let kinds: Vec<(&str, ObjectKind)> = spec.iter().map(|(n, k)| (n.as_str(), *k)).collect();
        assert_eq!(
            kinds,
            [
                ("a", ObjectKind::Array),
                ("m", ObjectKind::Map),
                ("prosemirror", ObjectKind::XmlFragment),
                ("t", ObjectKind::Text)
            ]
        );
        let data = export(&state, &spec).unwrap();
        assert_eq!(data["t"]["content"], "hello");
        assert_eq!(data["prosemirror"]["content"], "hi");
        assert!(root_spec(&[1, 2, 3]).is_err());
    }
}
