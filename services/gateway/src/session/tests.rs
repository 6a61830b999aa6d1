//! Session tests over an in-memory duplex pipe: a real WebSocket codec on both ends, no
//! sockets, paused time where timing matters.
#![allow(
    clippy::disallowed_methods,
    reason = "tests may spawn: each test owns and awaits what it starts, and the runtime ends with it"
)]

use super::*;
use futures_util::{SinkExt, StreamExt};
use prometheus::Registry;
use tokio::io::DuplexStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact};
use yws_core::{MemoryBackend, RoomName, Rooms, RoomsSettings};
use yws_protocol::{decode, AwarenessEntry, Message};

type Client = WebSocketStream<DuplexStream>;

struct Harness {
    rooms: Arc<Rooms>,
    ctx: SessionContext,
}

impl Harness {
    fn new() -> Self {
        let ctx = SessionContext {
            backend: Arc::new(MemoryBackend),
            metrics: Metrics::new(&Registry::new()).unwrap(),
            settings: SessionSettings {
                outbox_frames: 64,
                outbox_bytes: 1 << 20,
                ping_interval: Duration::from_secs(30),
                idle_message: Some(Duration::from_secs(20)),
                rate: yws_core::RateLimits::default(),
                max_throttled: Duration::from_secs(10),
            },
        };
        Harness {
            rooms: Rooms::new(ctx.backend.clone(), RoomsSettings::default()),
            ctx,
        }
    }

    /// Starts a session in `room`; returns the client end and the session's outcome.
    async fn connect(
        &self,
        room: &str,
        access: Access,
    ) -> (Client, Arc<PeerControl>, tokio::task::JoinHandle<End>) {
        let (client_io, server_io) = tokio::io::duplex(1 << 20);
        let server = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
        let client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        let lease = self
            .rooms
            .lease(&RoomName::new(room, 64).unwrap())
            .await
            .unwrap();
        let control = yws_core::peer::standalone_control();
        let session = Session {
            conn: ConnId(rand_id()),
            lease,
            control: control.clone(),
            access,
            expires_at: None,
        };
        let ctx = self.ctx.clone();
        let task = tokio::spawn(async move { run(server, session, &ctx).await });
        (client, control, task)
    }
}

fn rand_id() -> u64 {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Every message of a frame the server sent.
fn all(frame: &[u8]) -> Vec<Message<'_>> {
    decode(frame).collect::<Result<_, _>>().unwrap()
}

async fn next_binary(client: &mut Client) -> Vec<u8> {
    loop {
        match client.next().await.expect("stream open").expect("no error") {
            WsMessage::Binary(b) => return b.to_vec(),
            WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn close_code(client: &mut Client) -> u16 {
    loop {
        match client.next().await {
            Some(Ok(WsMessage::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
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

#[tokio::test]
async fn handshake_update_echo_and_step2() {
    let h = Harness::new();
    let (mut a, _, _) = h.connect("r", Access::ReadWrite).await;
    let first = next_binary(&mut a).await;
    assert!(matches!(all(&first)[0], Message::SyncStep1(_)));

    a.send(WsMessage::Binary(
        encode::sync_step1(&StateVector::default()).into(),
    ))
    .await
    .unwrap();
    let step2 = next_binary(&mut a).await;
    assert!(matches!(all(&step2)[0], Message::SyncStep2(_)));

    let update = text_update(9, "hi");
    a.send(WsMessage::Binary(encode::update(&update).into()))
        .await
        .unwrap();
    let echo = next_binary(&mut a).await;
    assert_eq!(all(&echo), vec![Message::Update(&update)]);

    // A late joiner's step 2 holds the update.
    let (mut b, _, _) = h.connect("r", Access::ReadWrite).await;
    next_binary(&mut b).await;
    b.send(WsMessage::Binary(
        encode::sync_step1(&StateVector::default()).into(),
    ))
    .await
    .unwrap();
    let step2 = next_binary(&mut b).await;
    let Message::SyncStep2(bytes) = all(&step2)[0] else {
        panic!("step 2")
    };
    let doc = Doc::new();
    doc.transact_mut()
        .apply_update(yrs::Update::decode_v1(bytes).unwrap())
        .unwrap();
    assert_eq!(
        doc.get_or_insert_text("t").get_string(&doc.transact()),
        "hi"
    );
}

#[tokio::test]
async fn several_messages_in_one_frame_and_trailing_header() {
    let h = Harness::new();
    let (mut a, _, _) = h.connect("multi", Access::ReadWrite).await;
    next_binary(&mut a).await;
    let mut frame = encode::update(&text_update(1, "a"));
    frame.extend(encode::update(&text_update(2, "b")));
    frame.push(0);
    a.send(WsMessage::Binary(frame.into())).await.unwrap();
    // Two echoes, each in its own frame.
    for _ in 0..2 {
        let echo = next_binary(&mut a).await;
        assert_eq!(all(&echo).len(), 1);
    }
}

#[tokio::test]
async fn received_bytes_are_counted_once_per_frame() {
    let h = Harness::new();
    let (mut a, _, _) = h.connect("bytes", Access::ReadWrite).await;
    next_binary(&mut a).await;
    let mut frame = encode::update(&text_update(1, "a"));
    frame.extend(encode::update(&text_update(2, "b")));
    frame.extend(encode::query_awareness());
    let len = frame.len() as u64;
    a.send(WsMessage::Binary(frame.into())).await.unwrap();
    // Two update echoes, then the awareness answer: the whole frame was handled.
    for _ in 0..3 {
        next_binary(&mut a).await;
    }
    let m = &h.ctx.metrics;
    let count = |vec: &prometheus::IntCounterVec, t: &str| vec.with_label_values(&[t]).get();
    assert_eq!(count(&m.messages_received, "update"), 2);
    assert_eq!(count(&m.messages_received, "query_awareness"), 1);
    let bytes: u64 = crate::metrics::MESSAGE_TYPES
        .iter()
        .map(|t| count(&m.received_bytes, t))
        .sum();
    assert_eq!(bytes, len, "one frame of {len} bytes, counted once");
    assert_eq!(
        count(&m.received_bytes, "update"),
        len,
        "under its first message's type"
    );
}

#[tokio::test]
async fn malformed_frames_close_only_that_connection() {
    let h = Harness::new();
    let (mut good, _, _) = h.connect("m", Access::ReadWrite).await;
    next_binary(&mut good).await;
    for (frame, code) in [
        (WsMessage::Binary(vec![9u8].into()), 1002u16),
        (WsMessage::Binary(vec![0x80u8].into()), 1002),
        (
            WsMessage::Binary(encode::update(&[1, 2, 3, 4]).into()),
            1007,
        ),
        (
            WsMessage::Binary(encode::awareness_payload(&[1, 1, 1, 3, b'{', b'x', b'"']).into()),
            1007,
        ),
        (WsMessage::Text("hello".into()), 1003),
    ] {
        let (mut bad, _, task) = h.connect("m", Access::ReadWrite).await;
        next_binary(&mut bad).await;
        bad.send(frame).await.unwrap();
        assert_eq!(close_code(&mut bad).await, code);
        drop(bad);
        assert!(matches!(task.await.unwrap(), End::Server(_)));
    }
    let update = text_update(3, "still fine");
    good.send(WsMessage::Binary(encode::update(&update).into()))
        .await
        .unwrap();
    assert_eq!(
        all(&next_binary(&mut good).await),
        vec![Message::Update(&update)]
    );
}

#[tokio::test]
async fn read_only_updates_are_dropped_and_counted() {
    let h = Harness::new();
    let (mut reader, _, _) = h.connect("ro", Access::ReadOnly).await;
    let (mut writer, _, _) = h.connect("ro", Access::ReadWrite).await;
    next_binary(&mut reader).await;
    next_binary(&mut writer).await;
    reader
        .send(WsMessage::Binary(
            encode::update(&text_update(4, "nope")).into(),
        ))
        .await
        .unwrap();
    let update = text_update(5, "yes");
    writer
        .send(WsMessage::Binary(encode::update(&update).into()))
        .await
        .unwrap();
    // The reader stays connected and receives the writer's update, never its own.
    assert_eq!(
        all(&next_binary(&mut reader).await),
        vec![Message::Update(&update)]
    );
    assert_eq!(h.ctx.metrics.readonly_updates_dropped.get(), 1);
}

#[tokio::test]
async fn awareness_relayed_and_removed_when_a_peer_leaves() {
    let h = Harness::new();
    let (mut a, _, _) = h.connect("aw", Access::ReadWrite).await;
    let (mut b, _, _) = h.connect("aw", Access::ReadWrite).await;
    next_binary(&mut a).await;
    next_binary(&mut b).await;
    let state = AwarenessEntry {
        client_id: 42,
        clock: 1,
        state: r#"{"user":"a"}"#,
    };
    a.send(WsMessage::Binary(encode::awareness([state]).into()))
        .await
        .unwrap();
    for client in [&mut a, &mut b] {
        let frame = next_binary(client).await;
        let Message::Awareness(aw) = &all(&frame)[0] else {
            panic!("awareness")
        };
        assert_eq!(aw.entries().collect::<Vec<_>>(), vec![state]);
    }
    // Query awareness answers with every state.
    b.send(WsMessage::Binary(encode::query_awareness().into()))
        .await
        .unwrap();
    let frame = next_binary(&mut b).await;
    let Message::Awareness(aw) = &all(&frame)[0] else {
        panic!("awareness")
    };
    assert_eq!(aw.entries().next().map(|e| e.client_id), Some(42));
    // A drops without a goodbye: its state is removed for B.
    drop(a);
    let frame = next_binary(&mut b).await;
    let Message::Awareness(aw) = &all(&frame)[0] else {
        panic!("awareness")
    };
    assert!(aw.entries().next().is_some_and(|e| e.is_removal()));
}

#[tokio::test]
async fn too_many_awareness_ids_is_a_policy_violation() {
    let h = Harness::new();
    let (mut a, _, _) = h.connect("many", Access::ReadWrite).await;
    next_binary(&mut a).await;
    let states: Vec<String> = (0..40).map(|i| format!("{{\"i\":{i}}}")).collect();
    let entries: Vec<_> = states
        .iter()
        .enumerate()
        .map(|(i, s)| AwarenessEntry {
            client_id: i as u64 + 1,
            clock: 1,
            state: s,
        })
        .collect();
    a.send(WsMessage::Binary(encode::awareness(entries).into()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut a).await, 1008);
}

#[tokio::test(start_paused = true)]
async fn quiet_connections_get_an_empty_awareness_update() {
    let h = Harness::new();
    let (mut a, _, _) = h.connect("quiet", Access::ReadWrite).await;
    next_binary(&mut a).await;
    let frame = next_binary(&mut a).await; // time auto-advances while everything idles
    assert_eq!(frame, encode::empty_awareness());
}

#[tokio::test(start_paused = true)]
async fn missing_pong_closes_the_connection() {
    let h = Harness::new();
    let (a, _, task) = h.connect("ping", Access::ReadWrite).await;
    // The client never reads, so it never answers the ping.
    let end = task.await.unwrap();
    assert_eq!(end, End::Server(CloseReason::PingTimeout));
    drop(a);
}

#[tokio::test]
async fn kicked_sessions_close_with_the_reason() {
    let h = Harness::new();
    let (mut a, control, task) = h.connect("kick", Access::ReadWrite).await;
    next_binary(&mut a).await;
    control.kick(CloseReason::RoomDeleted);
    assert_eq!(close_code(&mut a).await, 4404);
    drop(a);
    assert_eq!(task.await.unwrap(), End::Server(CloseReason::RoomDeleted));
}

#[tokio::test]
async fn large_messages_go_out_in_fragments_and_arrive_whole() {
    let h = Harness::new();
    let (mut a, _, _) = h.connect("big", Access::ReadWrite).await;
    next_binary(&mut a).await;
    let update = text_update(7, &"x".repeat(300 * 1024));
    a.send(WsMessage::Binary(encode::update(&update).into()))
        .await
        .unwrap();
    let echo = next_binary(&mut a).await;
    assert_eq!(all(&echo), vec![Message::Update(&update)]);
}

#[derive(Debug)]
struct PanickingBackend;

#[async_trait::async_trait]
impl RoomBackend for PanickingBackend {
    async fn open(&self, _: &Arc<yws_core::Room>) -> Result<(), yws_core::BackendError> {
        Ok(())
    }
    async fn append(&self, _: &yws_core::Room, _: &[u8]) -> Result<(), yws_core::BackendError> {
        panic!("injected fault");
    }
    async fn publish_awareness(
        &self,
        _: &yws_core::Room,
        _: &[u8],
    ) -> Result<(), yws_core::BackendError> {
        Ok(())
    }
    async fn close(&self, _: &Arc<yws_core::Room>) {}
    fn unload_grace(&self) -> Option<Duration> {
        None
    }
}

#[tokio::test]
async fn a_panicking_session_leaves_its_room_clean() {
    let mut h = Harness::new();
    h.ctx.backend = Arc::new(PanickingBackend);
    h.rooms = Rooms::new(h.ctx.backend.clone(), RoomsSettings::default());
    let (mut victim, _, task) = h.connect("panic", Access::ReadWrite).await;
    let (mut other, _, _) = h.connect("panic", Access::ReadWrite).await;
    next_binary(&mut victim).await;
    next_binary(&mut other).await;
    let state = AwarenessEntry {
        client_id: 5,
        clock: 1,
        state: "{}",
    };
    victim
        .send(WsMessage::Binary(encode::awareness([state]).into()))
        .await
        .unwrap();
    next_binary(&mut other).await;
    victim
        .send(WsMessage::Binary(
            encode::update(&text_update(6, "boom")).into(),
        ))
        .await
        .unwrap();
    assert!(task.await.is_err(), "the session task panicked");
    // Its awareness state was removed by the membership guard during unwinding.
    let frame = next_binary(&mut other).await;
    let Message::Awareness(aw) = &all(&frame)[0] else {
        panic!("awareness")
    };
    assert!(aw.entries().next().is_some_and(|e| e.is_removal()));
    let room = h.rooms.get(&RoomName::new("panic", 64).unwrap()).unwrap();
    assert_eq!(room.peer_count(), 1);
}

mod dropped;
mod frames;
