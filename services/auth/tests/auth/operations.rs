//! Deployment-wide operations (listing rooms): an explicit `admin` grant, never implied by a
//! room pattern — from the JWT and from the webhook, which is told the operation.

use serde_json::json;
use yws_auth::{Operation, RefusalReason};

use crate::support::*;

fn list_head(token: &str) -> http::request::Parts {
    head(&format!("/api/rooms?token={token}"), &[])
}

#[tokio::test]
async fn listing_needs_the_admin_claim_not_a_room_pattern() {
    let auth = authorizer(&hs_config());
    // Patterns that cover a room literally named `*` do not grant listing.
    for rooms in [&["*"][..], &["**"], &[r"\*"], &["*", "team-a/*"]] {
        let token = hs256(&claims(rooms));
        let refusal = auth
            .authorize_operation(Operation::ListRooms, &list_head(&token))
            .await
            .expect_err("a room pattern does not grant listing");
        assert_eq!(refusal.reason, RefusalReason::NotAdmin, "{rooms:?}");
        assert_eq!(refusal.status, 403);
    }
    for admin in [json!(false), json!("true"), json!(1)] {
        let mut claims = claims(&["*"]);
        claims["admin"] = admin.clone();
        let refusal = auth
            .authorize_operation(Operation::ListRooms, &list_head(&hs256(&claims)))
            .await
            .expect_err("only admin: true grants");
        assert_eq!(refusal.reason, RefusalReason::NotAdmin, "admin: {admin}");
    }
    // admin: true lists, with or without rooms.
    let admin = hs256(&json!({ "sub": "ops", "exp": now() + 3600, "admin": true }));
    let grant = auth
        .authorize_operation(Operation::ListRooms, &list_head(&admin))
        .await
        .expect("admin lists");
    assert_eq!(grant.subject.as_deref(), Some("ops"));
    // admin does not imply any room.
    let refusal = expect_refusal(&auth, "doc", &list_head(&admin)).await;
    assert_eq!(refusal.reason, RefusalReason::RoomNotAllowed);
    // A room named `*` is an ordinary room: `*` covers it, listing is not involved.
    expect_grant(&auth, "*", &with_query_token(&hs256(&claims(&["*"])))).await;
}

#[tokio::test]
async fn webhook_is_told_the_operation_and_must_answer_admin() {
    let plain = WebhookServer::start(Behaviour::Answer(200, r#"{"access":"rw"}"#)).await;
    let auth = authorizer(&plain.config());
    let refusal = auth
        .authorize_operation(Operation::ListRooms, &head("/api/rooms", &[]))
        .await
        .expect_err("a grant without admin does not list");
    assert_eq!(refusal.reason, RefusalReason::NotAdmin);
    assert_eq!(refusal.status, 403);
    assert_eq!(
        plain.last_body(),
        Some(json!({ "operation": "list_rooms", "headers": {} }))
    );
    // The same webhook still grants rooms, including one named `*`.
    expect_grant(&auth, "*", &head("/*", &[])).await;
    assert_eq!(
        plain.last_body(),
        Some(json!({ "operation": "room", "room": "*", "headers": {} }))
    );

    let admin = WebhookServer::start(Behaviour::Answer(200, r#"{"admin":true}"#)).await;
    let auth = authorizer(&admin.config());
    auth.authorize_operation(Operation::ListRooms, &head("/api/rooms", &[]))
        .await
        .expect("admin: true lists");
}

#[tokio::test]
async fn jwt_and_webhook_both_need_admin() {
    let server = WebhookServer::start(Behaviour::Answer(200, r#"{"admin":true}"#)).await;
    let config = yws_auth::AuthConfig {
        jwt_secret: Some(SECRET.into()),
        ..server.config()
    };
    let auth = authorizer(&config);
    let not_admin = hs256(&claims(&["*"]));
    let refusal = auth
        .authorize_operation(Operation::ListRooms, &list_head(&not_admin))
        .await
        .expect_err("the JWT must say admin too");
    assert_eq!(refusal.reason, RefusalReason::NotAdmin);
    assert_eq!(
        server.hits(),
        0,
        "the webhook is not asked after the JWT refused"
    );
    let admin = hs256(&json!({ "exp": now() + 3600, "admin": true }));
    auth.authorize_operation(Operation::ListRooms, &list_head(&admin))
        .await
        .expect("both say admin");
    assert_eq!(server.last_body().expect("body")["operation"], "list_rooms");
}
