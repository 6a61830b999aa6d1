//! What one frame may cost: its messages are handled as they are decoded, repeated requests
//! are answered once, awareness is checked before it is applied and relayed once per frame,
//! and a connection's queue is bounded in bytes.

use super::*;

/// Reads frames until none arrives for a moment; returns them.
async fn read_quiet(client: &mut Client) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_millis(200), client.next()).await
    {
        if let WsMessage::Binary(b) = message {
            frames.push(b.to_vec());
        }
    }
    frames
}

async fn send(client: &mut Client, frame: Vec<u8>) {
    client.send(WsMessage::Binary(frame.into())).await.unwrap();
}

#[tokio::test]
async fn a_frame_of_repeated_requests_is_answered_once() {
    let h = Harness::new();
    let (mut a, control, _) = h.connect("repeat", Access::ReadWrite).await;
    next_binary(&mut a).await;
    // 200 000 query-awareness messages (the outbox holds 64 frames).
    send(&mut a, vec![3u8; 200_000]).await;
    let frames = read_quiet(&mut a).await;
    assert_eq!(frames, vec![encode::empty_awareness()], "one answer");
    // Sync step 1, many times, then lower: at most two answers.
    let mut frame = Vec::new();
    for _ in 0..10_000 {
        frame.extend(encode::sync_step1(&StateVector::default()));
    }
    send(&mut a, frame).await;
    let frames = read_quiet(&mut a).await;
    assert_eq!(frames.len(), 1, "one sync step 2");
    assert!(matches!(all(&frames[0])[0], Message::SyncStep2(_)));
    assert_eq!(control.reason(), None, "still connected");
}

#[tokio::test]
async fn awareness_of_one_frame_is_relayed_once() {
    let h = Harness::new();
    let (mut a, _, _) = h.connect("aw-once", Access::ReadWrite).await;
    let (mut b, _, _) = h.connect("aw-once", Access::ReadWrite).await;
    next_binary(&mut a).await;
    next_binary(&mut b).await;
    let mut frame = Vec::new();
    for clock in 1..=20_000 {
        frame.extend(encode::awareness([AwarenessEntry {
            client_id: 7,
            clock,
            state: r#"{"u":"a"}"#,
        }]));
    }
    send(&mut a, frame).await;
    let frames = read_quiet(&mut b).await;
    assert_eq!(frames.len(), 1, "one relay for the whole frame");
    let Message::Awareness(aw) = &all(&frames[0])[0] else {
        panic!("awareness")
    };
    let entries: Vec<_> = aw.entries().collect();
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].client_id, entries[0].clock), (7, 20_000));
}

#[tokio::test]
async fn removals_of_unknown_clients_reach_nobody() {
    let h = Harness::new();
    let (mut a, control, _) = h.connect("nulls", Access::ReadWrite).await;
    let (mut b, _, _) = h.connect("nulls", Access::ReadWrite).await;
    next_binary(&mut a).await;
    next_binary(&mut b).await;
    let entries: Vec<_> = (1..=100_000u64)
        .map(|client_id| AwarenessEntry {
            client_id,
            clock: 1,
            state: "null",
        })
        .collect();
    send(&mut a, encode::awareness(entries)).await;
    assert!(read_quiet(&mut b).await.is_empty());
    assert_eq!(control.reason(), None);
    let room = h.rooms.get(&RoomName::new("nulls", 64).unwrap()).unwrap();
    assert_eq!(
        room.awareness_frame(),
        Bytes::from(encode::empty_awareness())
    );
}

#[tokio::test]
async fn awareness_over_a_limit_closes_with_1008_and_reaches_nobody() {
    let h = Harness::new();
    let (mut b, _, _) = h.connect("limits", Access::ReadWrite).await;
    next_binary(&mut b).await;
    let big_state = format!(r#"{{"x":"{}"}}"#, "y".repeat(64 * 1024));
    let many: Vec<String> = (0..33).map(|i| format!(r#"{{"i":{i}}}"#)).collect();
    let too_many: Vec<AwarenessEntry<'_>> = many
        .iter()
        .enumerate()
        .map(|(i, state)| AwarenessEntry {
            client_id: i as u64 + 1,
            clock: 1,
            state,
        })
        .collect();
    let huge: Vec<AwarenessEntry<'_>> = (1..=500_000u64)
        .map(|client_id| AwarenessEntry {
            client_id,
            clock: 1,
            state: "null",
        })
        .collect();
    for (frame, reason) in [
        (
            encode::awareness([AwarenessEntry {
                client_id: 1,
                clock: 1,
                state: &big_state,
            }]),
            "state_too_large",
        ),
        (encode::awareness(too_many), "too_many_clients"),
        (encode::awareness(huge), "message_too_large"),
    ] {
        let (mut a, _, task) = h.connect("limits", Access::ReadWrite).await;
        next_binary(&mut a).await;
        send(&mut a, frame).await;
        assert_eq!(close_code(&mut a).await, 1008, "{reason}");
        drop(a);
        assert_eq!(
            task.await.unwrap(),
            End::Server(CloseReason::PolicyViolation)
        );
        let rejected = h
            .ctx
            .metrics
            .awareness_rejected
            .with_label_values(&[reason]);
        assert_eq!(rejected.get(), 1, "{reason}");
    }
    assert!(read_quiet(&mut b).await.is_empty(), "nothing was relayed");
}

#[tokio::test]
async fn a_client_that_does_not_read_is_closed_by_queued_bytes() {
    let h = Harness::new(); // 64 frames, 1 MiB
    let (mut writer, _, _) = h.connect("bytes", Access::ReadWrite).await;
    let (mut idle, idle_control, _) = h.connect("bytes", Access::ReadWrite).await;
    next_binary(&mut writer).await;
    // Thirty updates of 300 KiB: fewer frames than the outbox holds, more bytes than the idle
    // client's pipe (1 MiB), socket buffer and outbox (1 MiB) take.
    for i in 0..30 {
        let update = text_update(100 + i, &"z".repeat(300 * 1024));
        send(&mut writer, encode::update(&update)).await;
        next_binary(&mut writer).await; // the echo
    }
    assert_eq!(idle_control.reason(), Some(CloseReason::TooSlow));
    // What it is sent ends with 1013, so it re-syncs when it reconnects.
    assert_eq!(close_code(&mut idle).await, 1013);
}
