use super::*;
use proptest::prelude::*;

fn id(ms: u64, seq: u64) -> LogId {
    LogId::new(ms, seq)
}

#[test]
fn names_an_operator_can_read() {
    let layout = Layout::new("/docs/prod/").unwrap();
    assert_eq!(layout.prefix(), "docs/prod");
    let snap = SnapshotId {
        epoch: 42,
        covered: id(1733400000000, 3),
    };
    let path = layout.snapshot("my room/1", &snap).unwrap();
    assert_eq!(
        path.as_ref(),
        format!(
            "docs/prod/rooms/{}/my%20room%2F1/snap/00000000000000000042-00000001733400000000-00000000000000000003.bin",
            shard("my room/1")
        )
    );
    let seg = SegmentId {
        first: id(1733400000000, 4),
        last: id(1733400001000, 0),
    };
    assert_eq!(
        layout.segment("doc", &seg).unwrap().as_ref(),
        format!(
            "docs/prod/rooms/{}/doc/log/00000001733400001000-00000000000000000000_00000001733400000000-00000000000000000004.bin",
            shard("doc")
        )
    );
    // The shard is the first byte of SHA-256 (as `sha256sum | cut -c1-2` prints it).
    assert_eq!(shard("doc"), "13");
    assert_eq!(Layout::new("").unwrap().rooms().as_ref(), "rooms");
}

#[test]
fn awkward_room_names_get_one_safe_segment() {
    assert_eq!(room_segment("a-b_c.d").unwrap(), "a-b_c.d");
    assert_eq!(room_segment(".").unwrap(), "%2E");
    assert_eq!(room_segment("..").unwrap(), "%2E%2E");
    assert_eq!(room_segment("x/../y").unwrap(), "x%2F..%2Fy");
    assert_eq!(room_segment("100%").unwrap(), "100%25");
    assert_eq!(room_segment("ü!").unwrap(), "%C3%BC%21");
    assert!(room_segment("").is_err());
    for room in [".", "..", "a b", "ü", "x/y", "%41"] {
        assert_eq!(
            room_from_segment(&room_segment(room).unwrap()).as_deref(),
            Some(room)
        );
    }
    // Non-canonical spellings name no room.
    assert_eq!(room_from_segment("%61"), None);
    assert_eq!(room_from_segment("a%2"), None);
}

#[test]
fn long_names_are_cut_and_hashed() {
    let long = "ü".repeat(200); // 400 bytes, 1200 encoded
    let segment = room_segment(&long).unwrap();
    assert!(segment.len() <= MAX_ROOM_SEGMENT, "{}", segment.len());
    let (kept, hash) = segment.split_once('!').unwrap();
    assert!(kept.len() <= KEPT_WHEN_HASHED);
    assert_eq!(hash.len(), 32);
    assert!(
        percent_decode_str(kept).decode_utf8().is_ok(),
        "cut at an escape boundary"
    );
    assert_eq!(room_from_segment(&segment), None, "hashed: read the header");
    // Two long names sharing their first 200 bytes still get different directories.
    let other = format!("{}x", "ü".repeat(200));
    assert_ne!(room_segment(&other).unwrap(), segment);
    // A whole key stays under the 1024 bytes every store accepts.
    let layout = Layout::new(&"p".repeat(MAX_PREFIX)).unwrap();
    let seg = SegmentId {
        first: id(u64::MAX, u64::MAX),
        last: id(u64::MAX, u64::MAX),
    };
    assert!(layout.segment(&long, &seg).unwrap().as_ref().len() <= 1024);
}

#[test]
fn bad_prefixes_are_refused() {
    for bad in ["a//b", "a/./b", "../x", "a\nb"] {
        assert!(Layout::new(bad).is_err(), "{bad:?}");
    }
    assert!(Layout::new(&"p".repeat(MAX_PREFIX + 1)).is_err());
}

#[test]
fn file_names_parse_back_and_reject_others() {
    assert_eq!(SnapshotId::from_file_name("1-2-3.bin"), None);
    assert_eq!(SnapshotId::from_file_name("x.bin"), None);
    assert_eq!(
        SnapshotId::from_file_name(
            "99999999999999999999-00000000000000000000-00000000000000000000.bin"
        ),
        None,
        "overflows u64"
    );
    let seg = SegmentId {
        first: id(5, 0),
        last: id(4, 0),
    };
    assert_eq!(
        SegmentId::from_file_name(&seg.file_name()),
        None,
        "first > last"
    );
    assert_eq!("17-3".parse::<LogId>().unwrap(), id(17, 3));
    assert_eq!("17".parse::<LogId>().unwrap(), id(17, 0));
    assert!("17-x".parse::<LogId>().is_err());
    assert_eq!(id(17, 3).to_string(), "17-3");
}

fn log_id() -> impl Strategy<Value = LogId> {
    (any::<u64>(), any::<u64>()).prop_map(|(ms, seq)| LogId { ms, seq })
}

proptest! {
    #[test]
    fn snapshot_names_round_trip_and_sort_like_ids(
        a in (any::<u64>(), log_id()), b in (any::<u64>(), log_id())
    ) {
        let a = SnapshotId { epoch: a.0, covered: a.1 };
        let b = SnapshotId { epoch: b.0, covered: b.1 };
        prop_assert_eq!(SnapshotId::from_file_name(&a.file_name()), Some(a));
        prop_assert_eq!(a.file_name().cmp(&b.file_name()), a.cmp(&b));
    }

    #[test]
    fn segment_names_round_trip_and_sort_by_last_id(
        x in log_id(), y in log_id(), z in log_id(), w in log_id()
    ) {
        let a = SegmentId { first: x.min(y), last: x.max(y) };
        let b = SegmentId { first: z.min(w), last: z.max(w) };
        prop_assert_eq!(SegmentId::from_file_name(&a.file_name()), Some(a));
        if a.last != b.last {
            prop_assert_eq!(a.file_name().cmp(&b.file_name()), a.last.cmp(&b.last));
        }
    }

    #[test]
    fn the_listing_offset_splits_segments_at_from(x in log_id(), y in log_id(), from in log_id()) {
        let layout = Layout::new("p").unwrap();
        let seg = SegmentId { first: x.min(y), last: x.max(y) };
        let path = layout.segment("r", &seg).unwrap();
        let offset = layout.segments_from("r", from).unwrap();
        // Listed after the offset exactly when the segment ends at or after `from`.
        prop_assert_eq!(path.as_ref() > offset.as_ref(), seg.last >= from);
    }

    #[test]
    fn rooms_get_distinct_valid_segments(a in "\\PC{1,80}", b in "\\PC{1,80}") {
        let sa = room_segment(&a).unwrap();
        prop_assert!(Path::parse(&sa).is_ok());
        prop_assert!(!sa.contains('/'));
        if !sa.contains('!') {
            prop_assert_eq!(room_from_segment(&sa), Some(a.clone()));
        }
        if a != b {
            prop_assert_ne!(sa, room_segment(&b).unwrap());
        }
    }

    #[test]
    fn any_room_has_a_path(room in "(?s).{1,300}") {
        let layout = Layout::new("pre/fix").unwrap();
        let path = layout.room_dir(&room).unwrap();
        prop_assert!(path.as_ref().starts_with("pre/fix/rooms/"));
        prop_assert_eq!(path.parts().count(), 5);
    }
}
