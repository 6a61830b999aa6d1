//! A write whose outcome the writing node never learned: Redis ran the append (the entry is
//! logged and published) but the reply was lost, so the node closed its client (1013) without
//! applying the update — while its live feed skipped the entry as "applied when written". Found
//! by the long chaos run (a resync's sync step 2 of nine updates, timed out under load, was
//! missing from that node for good; its writer had moved on to a node that held it). The
//! test-only fault point `YWS_REDIS_FAULT=append_reply_lost` makes every append end so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic with a message is a test failure"
)]

use std::time::Duration;
use yws_e2e::process::ServiceBuilder;
use yws_e2e::redis::RedisServer;
use yws_e2e::unique_room;
use yws_e2e::ws::{self, Follower};
use yws_protocol::encode;

#[test]
fn a_written_update_whose_reply_was_lost_reaches_the_writers_node_too() {
    let redis = RedisServer::start();
    let faulty = ServiceBuilder::gateway()
        .env("REDIS_URL", redis.url())
        .env("YWS_REDIS_FAULT", "append_reply_lost")
        .spawn();
    let other = ServiceBuilder::gateway()
        .env("REDIS_URL", redis.url())
        .spawn();
    let room = unique_room("reply-lost");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let url = |gw: &yws_e2e::process::Service| format!("{}/{room}", gw.ws_url());
        let mut on_faulty = Follower::connect(&url(&faulty)).await.unwrap();
        let mut on_other = Follower::connect(&url(&other)).await.unwrap();
        let mut writer = ws::connect(&url(&faulty)).await.unwrap();
        ws::next_binary(&mut writer).await.expect("sync step 1");

        ws::send(
            &mut writer,
            encode::update(&on_faulty.append_update("written; ")),
        )
        .await;
        assert_eq!(
            ws::close_code(&mut writer).await,
            Some(1013),
            "the writer is told to retry"
        );
        // The entry is in the log: the other node delivers it ...
        assert!(
            on_other
                .wait_text(Duration::from_secs(10), |t| t == "written; ")
                .await,
            "the other node delivered {:?}",
            on_other.text()
        );
        // ... and so does the node that wrote it, which read its unconfirmed write back.
        assert!(
            on_faulty
                .wait_text(Duration::from_secs(10), |t| t == "written; ")
                .await,
            "the writer's node delivered {:?}; its log:\n{}",
            on_faulty.text(),
            faulty.logs()
        );
    });
}
