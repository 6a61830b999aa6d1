//! An update that makes yrs panic while integrating it (it decodes, then yrs panics after
//! writing part of it into the document): no gateway keeps serving the half-applied document,
//! the compactor quarantines the entry and still compacts the rest, other rooms carry on.

use yws_e2e::docs::{same_state, Author};
use yws_e2e::http;
use yws_e2e::metrics::sample;
use yws_e2e::peer::Peer;
use yws_e2e::redis::RedisServer;
use yws_e2e::redis_keys::RedisKeys;
use yws_e2e::unique_room;
use yws_protocol::encode;

use crate::support::{
    compactor, gateway, runtime, send_all, wait_fully_compacted, PREFIX, SYNC_LIMIT, WAIT,
};

/// The poison and how many good edits may come before it: in a build with overflow checks
/// (tests), one found by a structure-aware fuzzer (fuzz regression
/// `yrs-apply-half-applied-any-doc`, panics wherever it comes); in a release
/// build the fuzz regression `yrs-apply-panic`, which panics in an empty document only.
fn poison() -> (Vec<u8>, usize) {
    if cfg!(debug_assertions) {
        let update = vec![
            2, 1, 1, 1, 34, 1, 1, 116, 1, 107, 1, 1, 49, 2, 3, 1, 2, 1, 1, 97, 1, 1, 49, 4, 1, 1,
            116, 2, 98, 99, 0,
        ];
        (update, 20)
    } else {
        let frame: &[u8] = include_bytes!("../../../protocol/fuzz/regressions/yrs-apply-panic");
        // A sync step 2 frame: message 0, step 1, the update's length (25), the update.
        (frame[3..].to_vec(), 0)
    }
}

#[test]
fn a_poisoned_update_is_served_by_no_gateway_and_compacted_around() {
    let redis = RedisServer::start();
    let gw1 = gateway(&redis).spawn();
    let gw2 = gateway(&redis).spawn();
    let compactor = compactor(&redis).spawn();
    let (room, other) = (unique_room("poison"), unique_room("bystander"));
    let author = Author::new(701);
    let (bad, at) = poison();
    let good: Vec<Vec<u8>> = (0..40).map(|i| author.append(&format!("<{i}>"))).collect();
    let rt = runtime();
    rt.block_on(async {
        let url = |gw: &yws_e2e::process::Service, room: &str| format!("{}/{room}", gw.ws_url());
        // A bystander in another room, on the gateway that will receive the poison from Redis.
        let by_author = Author::new(702);
        let (mut bystander, _) = Peer::join(&url(&gw2, &other), SYNC_LIMIT).await;
        send_all(&mut bystander, &[by_author.append("before")]).await;

        let (mut writer, _) = Peer::join(&url(&gw1, &room), SYNC_LIMIT).await;
        let (mut watcher, _) = Peer::join(&url(&gw2, &room), SYNC_LIMIT).await;
        send_all(&mut writer, &good[..at]).await;
        // Sent raw: the test's own yrs would panic applying it.
        writer.send(encode::update(&bad)).await;
        // Both gateways take their copy out of service: the sender is closed as invalid
        // (1007; or 1011 if the room's kick is seen first), every other connection with 1011,
        // so that its client reconnects.
        let sender = writer.close_code().await;
        assert!(
            matches!(sender, Some(1007 | 1011)),
            "sender closed with {sender:?}"
        );
        assert_eq!(watcher.close_code().await, Some(1011));

        // Clients reconnecting to either gateway get a clean load: the good edits, nothing of
        // the poison.
        let (mut writer, _) = Peer::join(&url(&gw1, &room), SYNC_LIMIT).await;
        send_all(&mut writer, &good[at..]).await;
        for gw in [&gw1, &gw2] {
            let (joiner, _) = Peer::join(&url(gw, &room), SYNC_LIMIT).await;
            if let Err(e) = same_state(&joiner.doc, &author.doc) {
                panic!("a joiner on {} got something else: {e}", gw.name());
            }
            joiner.close().await;
        }
        writer.close().await;

        // The bystander was never disturbed.
        send_all(&mut bystander, &[by_author.append(" after")]).await;
        assert!(same_state(&bystander.doc, &by_author.doc).is_ok());
        bystander.close().await;
    });

    // The compactor leaves the entry out, counts it, and compacts everything else.
    let mut direct = RedisKeys::connect(redis.port, PREFIX);
    wait_fully_compacted(&mut direct, &room, &author.doc, WAIT);
    let text = http::get(compactor.addr, "/metrics").text();
    assert_eq!(
        sample(&text, "yws_compactor_entries_quarantined_total"),
        Some(1.0)
    );
    assert!(compactor.logs().contains("quarantined"));
    assert!(gw1.logs().contains("taken out of service"));
    assert!(gw2.logs().contains("taken out of service"));
}
