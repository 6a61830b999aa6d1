use super::*;
use crate::peer::standalone_control;
use yrs::{GetString, Text};
use yws_protocol::{decode, Message};

fn room() -> Room {
    Room::new(RoomName::new("r", 64).unwrap(), RoomSettings::default())
}

struct TestPeer {
    id: ConnId,
    rx: crate::Outbox,
    control: Arc<PeerControl>,
}

fn join(room: &Room, id: u64, capacity: usize) -> TestPeer {
    let rx = crate::Outbox::new(capacity, 1 << 30);
    let control = standalone_control();
    room.join(ConnId(id), rx.clone(), control.clone());
    TestPeer {
        id: ConnId(id),
        rx,
        control,
    }
}

fn drain(peer: &mut TestPeer) -> Vec<Bytes> {
    let mut out = Vec::new();
    while let Some(frame) = peer.rx.try_next() {
        out.push(frame);
    }
    out
}

fn text_update(client: u64, text: &str) -> Vec<u8> {
    let doc = Doc::with_client_id(client);
    doc.get_or_insert_text("t")
        .push(&mut doc.transact_mut(), text);
    let update = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    update
}

/// An awareness payload; decode it with `AwarenessUpdate::decode`.
fn awareness(entries: &[(u64, u64, &str)]) -> Vec<u8> {
    yws_protocol::awareness::encode_entries(entries.iter().map(|&(client_id, clock, state)| {
        yws_protocol::AwarenessEntry {
            client_id,
            clock,
            state,
        }
    }))
}

/// Applies a local awareness payload as one frame: apply, then flush.
fn apply_awareness(
    room: &Room,
    conn: ConnId,
    payload: &[u8],
) -> Result<Option<Vec<u8>>, AwarenessViolation> {
    let mut batch = AwarenessBatch::default();
    room.apply_awareness(conn, &AwarenessUpdate::decode(payload).unwrap(), &mut batch)?;
    Ok(room.flush_awareness(conn, &mut batch))
}

fn all(frame: &[u8]) -> Vec<Message<'_>> {
    decode(frame).collect::<Result<_, _>>().unwrap()
}

#[test]
fn join_sends_step1_then_awareness() {
    let room = room();
    let mut a = join(&room, 1, 16);
    let first = drain(&mut a);
    assert_eq!(first.len(), 1, "no awareness yet, only step 1");
    assert!(matches!(all(&first[0])[0], Message::SyncStep1(_)));

    apply_awareness(&room, a.id, &awareness(&[(10, 1, r#"{"u":"a"}"#)])).unwrap();
    let mut b = join(&room, 2, 16);
    let frames = drain(&mut b);
    assert_eq!(frames.len(), 2);
    let Message::Awareness(aw) = &all(&frames[1])[0] else {
        panic!("second frame is awareness")
    };
    assert_eq!(aw.entries().next().map(|e| e.client_id), Some(10));
}

#[test]
fn updates_reach_everyone_including_sender() {
    let room = room();
    let mut a = join(&room, 1, 16);
    let mut b = join(&room, 2, 16);
    drain(&mut a);
    drain(&mut b);
    let raw = text_update(5, "hello");
    room.apply_update(validate::update(&raw).unwrap(), &raw)
        .unwrap();
    for peer in [&mut a, &mut b] {
        let frames = drain(peer);
        assert_eq!(frames.len(), 1);
        assert_eq!(all(&frames[0]), vec![Message::Update(&raw)]);
    }
    assert_eq!(
        room.doc()
            .get_or_insert_text("t")
            .get_string(&room.doc().transact()),
        "hello"
    );
}

#[test]
fn sync_step2_is_the_diff() {
    let room = room();
    let raw = text_update(5, "hello");
    room.apply_update(validate::update(&raw).unwrap(), &raw)
        .unwrap();
    let frame = room.sync_step2(&StateVector::default());
    let Message::SyncStep2(update) = all(&frame)[0] else {
        panic!("step 2")
    };
    let doc = Doc::new();
    doc.transact_mut()
        .apply_update(validate::update(update).unwrap())
        .unwrap();
    assert_eq!(
        doc.get_or_insert_text("t").get_string(&doc.transact()),
        "hello"
    );

    // A client that has everything gets an update with nothing in it.
    let sv = room.doc().transact().state_vector();
    let frame = room.sync_step2(&sv);
    let Message::SyncStep2(update) = all(&frame)[0] else {
        panic!("step 2")
    };
    assert!(validate::update(update).unwrap().is_empty());
}

#[test]
fn awareness_is_relayed_and_removed_on_leave() {
    let room = room();
    let mut a = join(&room, 1, 16);
    let mut b = join(&room, 2, 16);
    drain(&mut a);
    drain(&mut b);
    let out = apply_awareness(&room, a.id, &awareness(&[(10, 1, r#"{"u":"a"}"#)]));
    assert!(matches!(out, Ok(Some(_))));
    assert_eq!(drain(&mut a).len(), 1, "sender gets its own awareness back");
    assert_eq!(drain(&mut b).len(), 1);
    // A renewal (same state, higher clock) is relayed too.
    apply_awareness(&room, a.id, &awareness(&[(10, 2, r#"{"u":"a"}"#)])).unwrap();
    assert_eq!(drain(&mut b).len(), 1);

    let removal = room.leave(a.id).expect("a owned client 10");
    let update = AwarenessUpdate::decode(&removal).unwrap();
    let entries: Vec<_> = update.entries().collect();
    assert_eq!(entries.len(), 1);
    assert!(entries[0].is_removal());
    assert_eq!(entries[0].clock, 2);
    assert_eq!(drain(&mut b).len(), 1);
    assert_eq!(room.peer_count(), 1);
    assert_eq!(
        room.awareness_frame(),
        Bytes::from(encode::empty_awareness())
    );
}

#[test]
fn slow_peer_is_kicked_not_skipped() {
    let room = room();
    let mut fast = join(&room, 1, 64);
    let mut slow = join(&room, 2, 2);
    drain(&mut fast);
    // The slow peer holds its step 1 and never reads.
    for i in 0..5 {
        let raw = text_update(100 + i, "x");
        room.apply_update(validate::update(&raw).unwrap(), &raw)
            .unwrap();
    }
    assert_eq!(drain(&mut fast).len(), 5);
    assert_eq!(slow.control.reason(), Some(CloseReason::TooSlow));
    assert_eq!(
        drain(&mut slow).len(),
        2,
        "queue held what fit, then the peer was closed"
    );
}

#[test]
fn bad_remote_update_changes_nothing() {
    let room = room();
    let mut a = join(&room, 1, 16);
    drain(&mut a);
    assert!(room.apply_remote_update(&[1, 2, 3, 4, 5]).is_err());
    assert!(drain(&mut a).is_empty());
    assert!(room.apply_remote_awareness(&[9, 9]).is_err());
}

#[test]
fn an_awareness_update_over_a_limit_reaches_nobody() {
    let room = Room::new(
        RoomName::new("r", 64).unwrap(),
        RoomSettings {
            awareness: AwarenessLimits {
                max_clients_per_conn: 2,
                ..AwarenessLimits::default()
            },
            ..RoomSettings::default()
        },
    );
    let mut a = join(&room, 1, 64);
    let mut b = join(&room, 2, 64);
    drain(&mut a);
    drain(&mut b);
    let out = apply_awareness(
        &room,
        a.id,
        &awareness(&[(1, 1, "{}"), (2, 1, "{}"), (3, 1, "{}")]),
    );
    assert_eq!(out, Err(AwarenessViolation::TooManyClients));
    assert!(drain(&mut b).is_empty(), "nothing was relayed");
    assert_eq!(
        room.awareness_frame(),
        Bytes::from(encode::empty_awareness()),
        "nothing was applied"
    );
    assert_eq!(room.leave(a.id), None);
}

#[test]
fn awareness_changes_of_one_frame_are_relayed_once() {
    let room = room();
    let mut a = join(&room, 1, 64);
    let mut b = join(&room, 2, 64);
    drain(&mut a);
    drain(&mut b);
    let mut batch = AwarenessBatch::default();
    for clock in 1..=1000 {
        let payload = awareness(&[(10, clock, r#"{"u":"a"}"#)]);
        room.apply_awareness(
            a.id,
            &AwarenessUpdate::decode(&payload).unwrap(),
            &mut batch,
        )
        .unwrap();
    }
    assert!(
        drain(&mut b).is_empty(),
        "nothing is sent before the frame is done"
    );
    let payload = room.flush_awareness(a.id, &mut batch).expect("a change");
    let update = AwarenessUpdate::decode(&payload).unwrap();
    let entries: Vec<_> = update.entries().collect();
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].client_id, entries[0].clock), (10, 1000));
    assert_eq!(drain(&mut b).len(), 1);
    assert_eq!(room.flush_awareness(a.id, &mut batch), None);
}

#[test]
fn remote_awareness_is_relayed() {
    let room = room();
    let mut a = join(&room, 1, 16);
    drain(&mut a);
    let payload = yws_protocol::awareness::encode_entries([yws_protocol::AwarenessEntry {
        client_id: 77,
        clock: 3,
        state: "{}",
    }]);
    let change = room.apply_remote_awareness(&payload).unwrap();
    assert_eq!(change.added, vec![77]);
    assert_eq!(drain(&mut a).len(), 1);
    // Remote states are not owned by any local connection.
    assert_eq!(room.leave(a.id), None);
}

#[test]
fn full_state_is_encoded_once_until_the_document_changes() {
    let room = room();
    let raw = text_update(5, "hello");
    room.apply_update(validate::update(&raw).unwrap(), &raw)
        .unwrap();
    let a = room.sync_step2(&StateVector::default());
    let b = room.sync_step2(&StateVector::default());
    assert_eq!(
        a.as_ptr(),
        b.as_ptr(),
        "one shared frame for every empty-state joiner"
    );
    let raw = text_update(6, " world");
    room.apply_update(validate::update(&raw).unwrap(), &raw)
        .unwrap();
    let c = room.sync_step2(&StateVector::default());
    assert_ne!(a, c, "a change invalidates the cached state");
    let Message::SyncStep2(update) = all(&c)[0] else {
        panic!("step 2")
    };
    let doc = Doc::new();
    doc.transact_mut()
        .apply_update(validate::update(update).unwrap())
        .unwrap();
    assert_eq!(
        doc.get_or_insert_text("t")
            .get_string(&doc.transact())
            .len(),
        11
    );
}

/// An update that decodes and then makes yrs panic while integrating it, after it wrote part
/// of it into the document: in a build with overflow checks (tests), a text insert "bc" whose
/// delete set overflows a clock (found by a structure-aware fuzzer; fuzz regression
/// `yrs-apply-half-applied-empty-doc`); in a release build the fuzz regression
/// `yrs-apply-panic` (an index out of bounds while committing). Both panic when applied to an
/// empty document.
fn poison() -> Vec<u8> {
    if cfg!(debug_assertions) {
        vec![
            1, 2, 3, 8, 4, 1, 1, 116, 5, 240, 159, 152, 128, 120, 196, 3, 8, 3, 9, 2, 98, 99, 1, 3,
            1, 8, 4,
        ]
    } else {
        let frame: &[u8] = include_bytes!("../../tests/fixtures/yrs-apply-panic.bin");
        match decode(frame).next().and_then(Result::ok) {
            Some(Message::SyncStep2(raw)) => raw.to_vec(),
            other => panic!("the fixture is a sync step 2: {other:?}"),
        }
    }
}

fn text_of(room: &Room) -> String {
    room.doc()
        .get_or_insert_text("t")
        .get_string(&room.doc().transact())
}

#[test]
fn a_panicking_update_takes_the_room_out_of_service_and_nothing_of_it_is_served() {
    // The poison panics in an empty document (with content, yrs may integrate it).
    let room = room();
    let mut a = join(&room, 1, 16);
    drain(&mut a);
    let raw = poison();
    let update = validate::update(&raw).expect("the poison decodes");
    assert!(matches!(
        room.apply_update(update, &raw),
        Err(RoomError::Poisoned)
    ));
    assert!(room.is_poisoned() && room.is_retired());
    assert!(drain(&mut a).is_empty(), "the poison is not broadcast");
    assert_eq!(
        a.control.reason(),
        Some(CloseReason::InternalError),
        "clients reconnect and re-sync from a clean load"
    );
    // Nothing more is applied to, or served from, the suspect document.
    let more = text_update(9, "more");
    assert!(room
        .apply_update(validate::update(&more).unwrap(), &more)
        .is_err());
    let step2 = room.sync_step2(&StateVector::default());
    let Some(Ok(Message::SyncStep2(served))) = decode(&step2).next() else {
        panic!("step 2")
    };
    assert_eq!(served, Update::EMPTY_V1);
    let late = join(&room, 2, 16);
    assert_eq!(late.control.reason(), Some(CloseReason::InternalError));
    assert_eq!(room.peer_count(), 1, "a late joiner is not added");
    assert!(crate::quarantine::contains(&raw));
}

#[test]
fn loading_a_quarantined_update_skips_it() {
    let raw = poison();
    crate::quarantine::insert(&raw);
    let room = room();
    assert!(matches!(
        room.load_update(&raw),
        Err(RoomError::Quarantined)
    ));
    let good = text_update(8, "fine");
    room.load_update(&good).unwrap();
    assert_eq!(text_of(&room), "fine");
    assert!(!room.is_poisoned());
}

#[test]
fn joiners_arriving_together_share_one_encoding_of_the_full_state() {
    let room = Arc::new(room());
    // Large enough that encoding takes a while, so the joiners overlap.
    let big = "x".repeat(4 << 20);
    let update = text_update(7, &big);
    room.apply_remote_update(&update).unwrap();
    for _ in 0..5 {
        room.forget_cached_state();
        let start = Arc::new(std::sync::Barrier::new(4));
        let frames: Vec<Bytes> = (0..4)
            .map(|_| {
                let (room, start) = (room.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    room.sync_step2(&StateVector::default())
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        // One encoding, shared: every frame is the same buffer.
        assert!(
            frames.iter().all(|f| f.as_ptr() == frames[0].as_ptr()),
            "each joiner encoded the document again"
        );
    }
}

#[test]
fn rooms_created_later_have_larger_instance_numbers() {
    let (a, b) = (room(), room());
    assert!(b.instance() > a.instance());
}

mod reload {
    use super::poison;
    use crate::backend::{BackendError, RoomBackend};
    use crate::rooms::{Rooms, RoomsSettings};
    use crate::{Room, RoomName};
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::time::Duration;

    /// Loads rooms by replaying a fixed log, as the stores do.
    #[derive(Debug)]
    struct LogBackend {
        log: Vec<Vec<u8>>,
        opens: AtomicUsize,
    }

    #[async_trait]
    impl RoomBackend for LogBackend {
        async fn open(&self, room: &Arc<Room>) -> Result<(), BackendError> {
            self.opens.fetch_add(1, Ordering::SeqCst);
            for raw in &self.log {
                let _ = room.load_update(raw); // skipped as unreadable, as the stores do
            }
            Ok(())
        }
        async fn append(&self, _: &Room, _: &[u8]) -> Result<(), BackendError> {
            Ok(())
        }
        async fn publish_awareness(&self, _: &Room, _: &[u8]) -> Result<(), BackendError> {
            Ok(())
        }
        async fn close(&self, _room: &Arc<Room>) {}
        fn unload_grace(&self) -> Option<Duration> {
            None
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_room_whose_load_makes_yrs_panic_is_loaded_again_without_the_update() {
        use yrs::{GetString, ReadTxn, StateVector, Text, Transact};
        let source = yrs::Doc::with_client_id(8);
        source
            .get_or_insert_text("t")
            .push(&mut source.transact_mut(), "fine");
        let good = source
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        // The poison first: it panics in an empty document.
        let backend = Arc::new(LogBackend {
            log: vec![poison(), good],
            opens: AtomicUsize::new(0),
        });
        let rooms = Rooms::new(backend.clone(), RoomsSettings::default());
        let lease = rooms.lease(&RoomName::new("p", 64).unwrap()).await.unwrap();
        let room = lease.room();
        assert!(!room.is_poisoned());
        let text = room
            .doc()
            .get_or_insert_text("t")
            .get_string(&room.doc().transact());
        assert_eq!(text, "fine", "nothing of the poison is in the document");
        // Twice: the poisoned room was dropped (once, if another test quarantined the poison).
        assert!((1..=2).contains(&backend.opens.load(Ordering::SeqCst)));
    }
}
