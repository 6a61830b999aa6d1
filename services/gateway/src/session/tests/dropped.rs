//! A room dropped or deleted between a connection's lease and its join: the session must not
//! stay in it (the room's kick came before the session was a peer; it would edit alone).

use super::*;

async fn session_on_a_dropped_room(drop_it: impl AsyncFnOnce(&Rooms, &RoomName)) -> (u16, End) {
    let harness = Harness::new();
    let name = RoomName::new("dropped", 64).unwrap();
    let lease = harness.rooms.lease(&name).await.unwrap();
    drop_it(&harness.rooms, &name).await;
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let server = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
    let mut client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
    let session = Session {
        conn: ConnId(rand_id()),
        lease,
        control: yws_core::peer::standalone_control(),
        access: Access::ReadWrite,
        expires_at: None,
    };
    let ctx = harness.ctx.clone();
    let task = tokio::spawn(async move { run(server, session, &ctx).await });
    let code = tokio::time::timeout(Duration::from_secs(5), close_code(&mut client))
        .await
        .expect("the session closes instead of staying in the dropped room");
    (code, task.await.unwrap())
}

#[tokio::test]
async fn a_room_dropped_between_lease_and_join_closes_the_session_with_1013() {
    let (code, end) = session_on_a_dropped_room(async |rooms, _| {
        rooms.evict_all(CloseReason::BackendUnavailable).await;
    })
    .await;
    assert_eq!(
        (code, end),
        (1013, End::Server(CloseReason::BackendUnavailable))
    );
}

#[tokio::test]
async fn a_room_deleted_between_lease_and_join_closes_the_session_with_4404() {
    let (code, end) = session_on_a_dropped_room(async |rooms, name| {
        rooms.retire(name).await;
    })
    .await;
    assert_eq!((code, end), (4404, End::Server(CloseReason::RoomDeleted)));
}
