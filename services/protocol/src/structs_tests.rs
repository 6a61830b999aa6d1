use super::*;
use proptest::prelude::*;
use yrs::types::text::TextPrelim;
use yrs::types::xml::{XmlElementPrelim, XmlTextPrelim};
use yrs::updates::decoder::Decode;
use yrs::{
    Any, Array, Doc, GetString, Map, MapPrelim, Options, ReadTxn, StateVector, Text, Transact,
    Update, WriteTxn, XmlFragment,
};

/// Positions count UTF-16 code units, as in Yjs (yrs's default counts bytes).
fn new_doc(client_id: u64, gc: bool) -> Doc {
    Doc::with_options(Options {
        client_id: yrs::block::ClientID::new(client_id),
        skip_gc: !gc,
        offset_kind: yrs::OffsetKind::Utf16,
        ..Options::default()
    })
}

fn full_update(doc: &Doc) -> Vec<u8> {
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

/// Every kind of content yrs writes: strings beyond the BMP (UTF-16 lengths), formatting,
/// embeds, nested maps and arrays of every `Any`, binary, XML elements and text, a
/// sub-document, deleted and garbage-collected items.
fn every_kind_of_content(gc: bool) -> Doc {
    let doc = new_doc(1, gc);
    let text = doc.get_or_insert_text("text");
    let map = doc.get_or_insert_map("map");
    let array = doc.get_or_insert_array("array");
    let xml = doc.get_or_insert_xml_fragment("xml");
    let mut txn = doc.transact_mut();
    text.insert(&mut txn, 0, "héllo 👋🏽 wörld");
    text.format(&mut txn, 0, 5, [("bold".into(), Any::Bool(true))].into());
    text.insert_embed(&mut txn, 3, Any::from(vec![Any::from(1.5), Any::Null]));
    text.remove_range(&mut txn, 4, 2);
    map.insert(&mut txn, "n", -123_456_789_i64);
    map.insert(&mut txn, "f", 0.25_f64);
    map.insert(&mut txn, "s", "string");
    map.insert(&mut txn, "b", Any::Buffer(vec![0u8, 1, 255].into()));
    map.insert(&mut txn, "u", Any::Undefined);
    map.insert(
        &mut txn,
        "nested",
        MapPrelim::from([(
            "a".to_string(),
            Any::from(vec![Any::from(true), Any::from("x")]),
        )]),
    );
    map.insert(&mut txn, "gone", "soon");
    map.remove(&mut txn, "gone");
    map.insert(&mut txn, "doc", Doc::new());
    array.insert_range(&mut txn, 0, [1, 2, 3]);
    array.insert(&mut txn, 1, TextPrelim::new("inner"));
    array.remove_range(&mut txn, 0, 1);
    let element = xml.insert(&mut txn, 0, XmlElementPrelim::empty("p"));
    yrs::types::xml::Xml::insert_attribute(&element, &mut txn, "class", "c");
    element.insert(&mut txn, 0, XmlTextPrelim::new("xml text"));
    drop(txn);
    doc
}

#[test]
fn real_updates_pass() {
    for gc in [true, false] {
        let doc = every_kind_of_content(gc);
        let bytes = full_update(&doc);
        check_references(&bytes).unwrap();
        // And every incremental update along the way.
        let other = new_doc(2, true);
        let t = other.get_or_insert_text("t");
        for i in 0..20u32 {
            let mut txn = other.transact_mut();
            let at = t.len(&txn).min(i % 3);
            t.insert(&mut txn, at, if i % 4 == 0 { "ab" } else { "é" });
            if i == 19 {
                let end = t.len(&txn);
                t.insert(&mut txn, end, "𝄞");
            }
            if i % 3 == 0 {
                t.remove_range(&mut txn, 0, 1);
            }
            let update = txn.encode_update_v1();
            check_references(&update).unwrap();
        }
    }
}

#[test]
fn the_update_that_crashes_yrs_is_refused() {
    let frame = include_bytes!("../fuzz/regressions/yrs-apply-segfault-three-updates");
    let updates: Vec<Vec<u8>> = crate::decode(frame)
        .map(|m| match m.unwrap() {
            crate::Message::Update(u) | crate::Message::SyncStep2(u) => u.to_vec(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(updates.len(), 3);
    // The second carries item 1#5 whose left origin is 1#8: its own client's future.
    for u in &updates {
        assert!(Update::decode_v1(u).is_ok(), "yrs decodes each of them");
    }
    assert!(check_references(&updates[0]).is_ok());
    let err = check_references(&updates[1]).unwrap_err();
    assert!(err.to_string().contains("left origin"), "{err}");
    assert!(crate::validate::update(&updates[1]).is_err());
    assert!(check_references(&updates[2]).is_ok());
}

/// One client, one string item at `clock` with the given origin.
fn item_with_origin(client: u64, clock: u64, origin: (u64, u64)) -> Vec<u8> {
    let mut b = vec![1, 1];
    crate::varint::write_var_u64(&mut b, client);
    crate::varint::write_var_u64(&mut b, clock);
    b.push(HAS_ORIGIN | 4);
    crate::varint::write_var_u64(&mut b, origin.0);
    crate::varint::write_var_u64(&mut b, origin.1);
    crate::varint::write_var_bytes(&mut b, b"ab");
    b.push(0); // empty delete set
    b
}

#[test]
fn own_client_references_must_be_older() {
    assert!(check_references(&item_with_origin(7, 5, (7, 4))).is_ok());
    assert!(check_references(&item_with_origin(7, 5, (8, 900))).is_ok());
    assert!(check_references(&item_with_origin(7, 5, (7, 5))).is_err());
    assert!(check_references(&item_with_origin(7, 5, (7, 6))).is_err());
    for bytes in [
        item_with_origin(7, 5, (7, 4)),
        item_with_origin(7, 5, (7, 6)),
    ] {
        assert!(Update::decode_v1(&bytes).is_ok());
    }
    // Truncated input is an error, not a panic.
    let bytes = item_with_origin(7, 5, (7, 4));
    for end in 0..bytes.len() - 1 {
        let _ = check_references(&bytes[..end]);
    }
}

#[test]
fn deep_values_are_bounded() {
    // An Any array nested 600 deep inside one item.
    let mut b = vec![1, 1, 1, 0, 8];
    b.push(1); // parent info: a named root
    crate::varint::write_var_bytes(&mut b, b"a");
    b.push(1); // one value
    for _ in 0..600 {
        b.extend([117, 1]);
    }
    b.push(126);
    b.push(0);
    assert!(check_references(&b).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Edits by two clients, exchanged in both directions: every update either writes passes.
    #[test]
    fn updates_of_concurrent_editors_pass(ops in proptest::collection::vec((0u8..6, 0u32..40, "[a-zé]{0,6}"), 1..40)) {
        let a = new_doc(1, true);
        let b = new_doc(2, true);
        for (i, (op, pos, s)) in ops.iter().enumerate() {
            let (doc, peer) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
            let text = doc.get_or_insert_text("t");
            let map = doc.get_or_insert_map("m");
            let array = doc.get_or_insert_array("a");
            let update = {
                let mut txn = doc.transact_mut();
                let len = text.len(&txn);
                match op {
                    0 | 1 => text.insert(&mut txn, pos % (len + 1), s),
                    2 if len > 0 => text.remove_range(&mut txn, pos % len, 1.min(len)),
                    3 => { map.insert(&mut txn, s.as_str(), *pos as i64); }
                    4 => { let n = array.len(&txn); array.insert(&mut txn, pos % (n + 1), s.as_str()); }
                    _ => { let n = array.len(&txn); if n > 0 { array.remove(&mut txn, pos % n); } }
                }
                txn.encode_update_v1()
            };
            prop_assert!(check_references(&update).is_ok());
            peer.transact_mut().apply_update(Update::decode_v1(&update).unwrap()).unwrap();
        }
        for doc in [&a, &b] {
            prop_assert!(check_references(&full_update(doc)).is_ok());
        }
        prop_assert_eq!(
            a.get_or_insert_text("t").get_string(&a.transact()),
            b.get_or_insert_text("t").get_string(&b.transact())
        );
        let _ = a.transact_mut().store_mut();
    }
}
