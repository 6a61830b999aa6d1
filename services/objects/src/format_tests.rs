use super::*;
use proptest::prelude::*;

fn snapshot(state: &[u8]) -> Snapshot {
    Snapshot {
        room: "room/ü".into(),
        epoch: 7,
        covered: LogId::new(1733400000000, 2),
        written_at_ms: 1733400000123,
        state: Bytes::copy_from_slice(state),
    }
}

fn segment(n: u64) -> Segment {
    Segment {
        room: "r".into(),
        epoch: 3,
        written_at_ms: 99,
        entries: (0..n)
            .map(|i| SegmentEntry {
                id: LogId::new(1000 + i / 2, i % 2),
                written_at_ms: 5000 + i,
                update: Bytes::from(vec![i as u8; i as usize]),
            })
            .collect(),
    }
}

fn bytes(e: &Encoded) -> Bytes {
    Bytes::from(e.to_vec())
}

#[test]
fn the_header_is_what_the_docs_say() {
    let e = encode_snapshot(&snapshot(b"state")).unwrap();
    let h = &e.header;
    assert_eq!(h.len(), HEADER_FIXED + "room/ü".len());
    assert_eq!(&h[..8], b"\x89YWS\r\n\x1a\n");
    assert_eq!(&h[8..10], &[1, 0], "version 1, little-endian");
    assert_eq!(h[10], 1, "kind snapshot");
    assert_eq!(h[11], 0, "flags");
    assert_eq!(&h[12..20], &7u64.to_le_bytes(), "epoch");
    assert_eq!(&h[20..36], &[0; 16], "from 0-0");
    assert_eq!(&h[36..44], &1733400000000u64.to_le_bytes(), "covered ms");
    assert_eq!(&h[44..52], &2u64.to_le_bytes(), "covered seq");
    assert_eq!(&h[52..60], &1733400000123u64.to_le_bytes(), "written at");
    assert_eq!(&h[60..64], &0u32.to_le_bytes(), "entries");
    assert_eq!(&h[64..72], &5u64.to_le_bytes(), "payload length");
    assert_eq!(&h[72..76], &crc32c(b"state").to_le_bytes(), "payload crc");
    assert_eq!(&h[76..78], &7u16.to_le_bytes(), "room length");
    assert_eq!(&h[78..85], "room/ü".as_bytes());
    assert_eq!(&h[85..89], &crc32c(&h[..85]).to_le_bytes(), "header crc");
    assert_eq!(&e.payload[..], b"state");
    // CRC-32C check value (RFC 3720): "123456789" → 0xE3069283.
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn snapshots_and_segments_round_trip() {
    let s = snapshot(&[1, 2, 3]);
    assert_eq!(
        decode_snapshot(&bytes(&encode_snapshot(&s).unwrap())).unwrap(),
        s
    );
    let empty = snapshot(&[]);
    assert_eq!(
        decode_snapshot(&bytes(&encode_snapshot(&empty).unwrap())).unwrap(),
        empty
    );
    let seg = segment(5);
    let encoded = encode_segment(&seg).unwrap();
    let (h, _) = decode_header(&encoded.header).unwrap();
    assert_eq!(
        (h.from, h.upto, h.entries),
        (LogId::new(1000, 0), LogId::new(1002, 0), 5)
    );
    assert_eq!(decode_segment(&bytes(&encoded)).unwrap(), seg);
}

#[test]
fn invalid_objects_are_refused_when_encoding() {
    assert!(encode_segment(&segment(0)).is_err(), "empty");
    let mut unordered = segment(3);
    unordered.entries.swap(0, 1);
    assert!(encode_segment(&unordered).is_err());
    let mut duplicate = segment(2);
    duplicate.entries[1].id = duplicate.entries[0].id;
    assert!(encode_segment(&duplicate).is_err());
    let mut long = snapshot(b"");
    long.room = "x".repeat(70_000);
    assert!(encode_snapshot(&long).is_err());
}

#[test]
fn corruption_is_named() {
    let good = bytes(&encode_snapshot(&snapshot(b"payload")).unwrap());
    let header_len = good.len() - 7;
    let flip = |at: usize| {
        let mut v = good.to_vec();
        v[at] ^= 0x01;
        Bytes::from(v)
    };
    // Every single-bit flip is detected.
    for at in 0..good.len() {
        assert!(decode_snapshot(&flip(at)).is_err(), "flip at {at}");
    }
    assert_eq!(decode_snapshot(&flip(0)), Err(Corruption::BadMagic));
    assert!(matches!(
        decode_snapshot(&flip(20)),
        Err(Corruption::HeaderChecksum { .. })
    ));
    assert!(matches!(
        decode_snapshot(&flip(header_len + 2)),
        Err(Corruption::PayloadChecksum { .. })
    ));
    assert!(matches!(
        decode_snapshot(&good.slice(..good.len() - 1)),
        Err(Corruption::Truncated { .. })
    ));
    assert!(matches!(
        decode_snapshot(&good.slice(..40)),
        Err(Corruption::Truncated { .. })
    ));
    let mut longer = good.to_vec();
    longer.push(0);
    assert!(matches!(
        decode_snapshot(&Bytes::from(longer)),
        Err(Corruption::TrailingBytes { .. })
    ));
    assert_eq!(decode_snapshot(&Bytes::new()), Err(Corruption::BadMagic));
    // A future version is refused as such (the checksum would not help a v1 reader).
    let mut v2 = good.to_vec();
    v2[8] = 2;
    assert_eq!(
        decode_snapshot(&Bytes::from(v2)),
        Err(Corruption::UnsupportedVersion(2))
    );
    // The right checksum on the wrong kind.
    let seg = bytes(&encode_segment(&segment(2)).unwrap());
    assert_eq!(decode_snapshot(&seg), Err(Corruption::WrongKind));
    assert_eq!(decode_segment(&good), Err(Corruption::WrongKind));
    // Messages say what is wrong.
    let message = decode_snapshot(&flip(header_len + 2))
        .unwrap_err()
        .to_string();
    assert!(message.contains("payload checksum mismatch"), "{message}");
}

/// Re-seals a header after editing it, so the checks behind the checksum are reached.
fn reseal(header: &mut [u8]) {
    let n = header.len() - 4;
    let crc = crc32c(&header[..n]);
    header[n..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn inconsistent_but_sealed_segments_are_refused() {
    let seg = encode_segment(&segment(3)).unwrap();
    let with_header = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut h = seg.header.to_vec();
        edit(&mut h);
        reseal(&mut h);
        let mut all = h;
        all.extend_from_slice(&seg.payload);
        decode_segment(&Bytes::from(all))
    };
    assert!(
        with_header(&|h| h[60..64].copy_from_slice(&2u32.to_le_bytes())).is_err(),
        "count"
    );
    assert!(
        with_header(&|h| h[60..64].copy_from_slice(&u32::MAX.to_le_bytes())).is_err(),
        "huge count, no huge allocation"
    );
    assert!(
        with_header(&|h| h[36..44].copy_from_slice(&999u64.to_le_bytes())).is_err(),
        "from > upto"
    );
    assert!(
        with_header(&|h| h[28..36].copy_from_slice(&1u64.to_le_bytes())).is_err(),
        "first id"
    );
    assert!(with_header(&|h| h[11] = 1).is_err(), "flags");
    assert!(with_header(&|h| h[10] = 9).is_err(), "kind");
    assert!(with_header(&|_| {}).is_ok(), "the unedited header decodes");
}

fn arb_snapshot() -> impl Strategy<Value = Snapshot> {
    (
        "\\PC{1,40}",
        any::<u64>(),
        any::<(u64, u64)>(),
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..2000),
    )
        .prop_map(|(room, epoch, (ms, seq), at, state)| Snapshot {
            room,
            epoch,
            covered: LogId::new(ms, seq),
            written_at_ms: at,
            state: state.into(),
        })
}

fn arb_segment() -> impl Strategy<Value = Segment> {
    (
        "\\PC{1,40}",
        any::<u64>(),
        any::<u64>(),
        proptest::collection::btree_map(
            any::<(u64, u64)>(),
            (any::<u64>(), proptest::collection::vec(any::<u8>(), 0..200)),
            1..20,
        ),
    )
        .prop_map(|(room, epoch, at, entries)| Segment {
            room,
            epoch,
            written_at_ms: at,
            entries: entries
                .into_iter()
                .map(|((ms, seq), (at, update))| SegmentEntry {
                    id: LogId::new(ms, seq),
                    written_at_ms: at,
                    update: update.into(),
                })
                .collect(),
        })
}

proptest! {
    #[test]
    fn snapshot_round_trip(s in arb_snapshot()) {
        let e = encode_snapshot(&s).unwrap();
        prop_assert_eq!(decode_snapshot(&bytes(&e)).unwrap(), s);
    }

    #[test]
    fn segment_round_trip(s in arb_segment()) {
        let e = encode_segment(&s).unwrap();
        prop_assert_eq!(decode_segment(&bytes(&e)).unwrap(), s);
    }

    #[test]
    fn every_truncation_is_an_error(s in arb_segment(), cut in any::<prop::sample::Index>()) {
        let all = bytes(&encode_segment(&s).unwrap());
        let cut = cut.index(all.len());
        prop_assert!(decode_segment(&all.slice(..cut)).is_err());
        prop_assert!(decode_header(&all[..cut.min(HEADER_FIXED - 1)]).is_err());
    }

    #[test]
    fn damaged_objects_never_decode_silently(
        s in arb_snapshot(), at in any::<prop::sample::Index>(), bit in 0u8..8
    ) {
        let mut v = encode_snapshot(&s).unwrap().to_vec();
        let at = at.index(v.len());
        v[at] ^= 1 << bit;
        prop_assert!(decode_snapshot(&Bytes::from(v)).is_err());
    }

    /// Fuzz-style: arbitrary bytes (and arbitrary bytes behind a valid magic and version)
    /// never panic and never allocate beyond their length.
    #[test]
    fn decoding_garbage_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..600), kind in 0u8..4) {
        let _ = decode_snapshot(&Bytes::from(tail.clone()));
        let _ = decode_segment(&Bytes::from(tail.clone()));
        let mut framed = MAGIC.to_vec();
        framed.extend_from_slice(&VERSION.to_le_bytes());
        framed.push(kind);
        framed.push(0);
        framed.extend_from_slice(&tail);
        let _ = decode_snapshot(&Bytes::from(framed.clone()));
        let _ = decode_segment(&Bytes::from(framed.clone()));
        // With a valid header checksum too, so the payload parser is reached.
        if framed.len() >= HEADER_FIXED {
            let room_len = u16::from_le_bytes([framed[76], framed[77]]) as usize;
            let end = HEADER_FIXED - 4 + room_len;
            if framed.len() >= end + 4 {
                let crc = crc32c(&framed[..end]);
                framed[end..end + 4].copy_from_slice(&crc.to_le_bytes());
                let _ = decode_snapshot(&Bytes::from(framed.clone()));
                let _ = decode_segment(&Bytes::from(framed));
            }
        }
    }

    /// Sealed headers with a payload that matches its checksum: the entry parser must catch
    /// every inconsistency on its own.
    #[test]
    fn sealed_garbage_segments_never_panic(
        payload in proptest::collection::vec(any::<u8>(), 0..400),
        entries in 0u32..40,
        from in any::<(u64, u64)>(), upto in any::<(u64, u64)>(),
    ) {
        let header = Header {
            kind: ObjectKind::Segment,
            room: "r".into(),
            epoch: 1,
            from: LogId::new(from.0, from.1),
            upto: LogId::new(upto.0, upto.1),
            written_at_ms: 0,
            entries,
            payload_len: payload.len() as u64,
            payload_crc: crc32c(&payload),
        };
        let mut all = encode_header(&header).unwrap().to_vec();
        all.extend_from_slice(&payload);
        if let Ok(seg) = decode_segment(&Bytes::from(all)) {
            // Whatever decodes is consistent.
            prop_assert_eq!(seg.entries.len() as u32, entries);
            prop_assert!(seg.entries.windows(2).all(|w| w[0].id < w[1].id));
        }
    }
}
