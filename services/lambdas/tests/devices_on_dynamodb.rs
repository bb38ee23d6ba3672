#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Devices through the Lambdas on DynamoDB Local (docs/design.md: AWS deployment, Web
//! Push): `default` (`push_subscribe` / `push_unsubscribe` on `$default`) and `publish-api`
//! (`POST` / `DELETE /v1/push/subscriptions`), each built from its environment as in
//! Lambda, keep the same user's devices on the history table, where the publisher's
//! `DynamoDeviceStore` finds them. An `http://` endpoint is refused naming the field and
//! nothing is stored.

use std::time::Duration;

#[path = "support/dynamodb_local.rs"]
mod dynamodb_local;
use dynamodb_local::endpoint;

use axum::body::Body;
use serde_json::{json, Value};
use switchboard_aws::{
    create_history_table, delete_table, dynamodb_client, DynamoConfig, DynamoDeviceStore,
    LocalDefaults,
};
use switchboard_core::auth::mint_hs256;
use switchboard_core::devices::DeviceStore;
use switchboard_lambdas::websocket::WebsocketEvent;
use switchboard_lambdas::{default, publish_api};
use switchboard_model::{TenantId, UserId};
use time::OffsetDateTime;
use tower::ServiceExt;

const CONNECTION: &str = "TWegAd-1joECJFA=";
const SECRET: &str = "devices-on-dynamodb-secret-32-bytes";
/// RFC 8291's example user agent keys (a valid P-256 point, a 16-byte secret).
const P256DH: &str =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

fn subscription(endpoint: &str) -> Value {
    json!({"endpoint": endpoint, "keys": {"p256dh": P256DH, "auth": AUTH}, "expirationTime": null})
}

/// A `$default` event of connection `CONNECTION` of acme/alice carrying `body`.
fn frame(body: Value) -> WebsocketEvent {
    let path = format!(
        "{}/tests/fixtures/default_message.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["requestContext"]["connectionId"] = json!(CONNECTION);
    let context = &mut json["requestContext"]["authorizer"];
    context["tenant"] = json!("acme");
    context["user"] = json!("alice");
    context["exp"] = json!(OffsetDateTime::now_utc().unix_timestamp() + 3_600);
    json["body"] = json!(body.to_string());
    serde_json::from_value(json).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_and_publish_api_keep_a_user_s_devices_where_the_publisher_reads_them() {
    let endpoint = endpoint();
    let history = format!(
        "history-devices-{:x}",
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    );
    let keys = switchboard_core::webpush::VapidKeyPair::generate().unwrap();
    let env = [
        ("DYNAMODB_ENDPOINT", endpoint.clone()),
        ("HISTORY_TABLE", history.clone()),
        ("JWT_HS256_SECRET", SECRET.to_string()),
        ("CALLBACK_URL", "http://127.0.0.1:9/main".to_string()),
        (
            "QUEUE_URL",
            "http://127.0.0.1:9/123456789012/envelopes".to_string(),
        ),
        ("VAPID_PUBLIC_KEY", keys.public_key.clone()),
        ("VAPID_PRIVATE_KEY", keys.private_key.clone()),
        ("VAPID_SUBJECT", "mailto:ops@example.com".to_string()),
        ("PUSH_MAX_DEVICES_PER_USER", "2".to_string()),
    ];
    let lookup = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let client = dynamodb_client(&DynamoConfig {
        roster_table: "unused".into(),
        history_table: history.clone(),
        scan_segments: 1,
        endpoint: Some(endpoint),
        local: LocalDefaults {
            region: true,
            credentials: true,
        },
    })
    .await;
    create_history_table(&client, &history).await.unwrap();
    // What the publisher reads (its `DynamoDeviceStore` on the same table).
    let store = DynamoDeviceStore::new(client.clone(), history.clone());
    let acme = TenantId::parse("acme").unwrap();
    let alice = UserId::parse("alice").unwrap();
    let endpoints_of_alice = || async {
        let mut endpoints: Vec<String> = store
            .list_users(&acme, std::slice::from_ref(&alice))
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.subscription.endpoint)
            .collect();
        endpoints.sort();
        endpoints
    };

    let default_deps = default::build(lookup).await.unwrap();
    let reply = |body: Value| {
        let deps = &default_deps;
        async move {
            let response = default::handle(deps, &frame(body)).await.unwrap();
            assert_eq!(response.status_code, 200);
            serde_json::from_str::<Value>(response.body.as_deref().unwrap()).unwrap()
        }
    };

    // Refused, nothing stored: an http:// endpoint, named by its field.
    let refused = reply(json!({"action": "push_subscribe",
        "subscription": subscription("http://push.example.com/plain")}))
    .await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("subscription.endpoint")),
        "{refused}"
    );
    assert!(endpoints_of_alice().await.is_empty());

    // Over the socket.
    let phone = "https://fcm.googleapis.com/fcm/send/phone";
    let subscribed =
        reply(json!({"action": "push_subscribe", "subscription": subscription(phone)})).await;
    assert_eq!(subscribed["type"], "push_subscribed", "{subscribed}");
    let phone_id = subscribed["id"].as_str().unwrap().to_string();
    assert_eq!(endpoints_of_alice().await, [phone]);

    // Over HTTP, with alice's own token.
    let router = publish_api::build(lookup).await.unwrap();
    let token = mint_hs256(
        SECRET.as_bytes(),
        &acme,
        &alice,
        &[],
        Duration::from_secs(600),
    );
    let laptop = "https://updates.push.services.mozilla.com/wpush/v2/laptop";
    let response = router
        .clone()
        .oneshot(
            http::Request::post("/v1/push/subscriptions")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Body::from(subscription(laptop).to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = serde_json::from_slice(
        &axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap(),
    )
    .unwrap();
    let laptop_id = body["id"].as_str().unwrap().to_string();
    assert_eq!(endpoints_of_alice().await, [phone, laptop]);

    // A third device past PUSH_MAX_DEVICES_PER_USER=2: the oldest (the phone) goes.
    let tablet = "https://web.push.apple.com/tablet";
    let subscribed =
        reply(json!({"action": "push_subscribe", "subscription": subscription(tablet)})).await;
    assert_eq!(subscribed["type"], "push_subscribed", "{subscribed}");
    assert_eq!(endpoints_of_alice().await, [laptop, tablet]);
    let gone = reply(json!({"action": "push_unsubscribe", "id": phone_id})).await;
    assert_eq!(gone["error"], "unknown_device", "{gone}");

    // Removed over HTTP and over the socket.
    let response = router
        .oneshot(
            http::Request::delete(format!("/v1/push/subscriptions/{laptop_id}"))
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let tablet_id = subscribed["id"].as_str().unwrap();
    let removed = reply(json!({"action": "push_unsubscribe", "id": tablet_id})).await;
    assert_eq!(removed, json!({"type": "push_unsubscribed"}));
    assert!(endpoints_of_alice().await.is_empty());
    delete_table(&client, &history).await.unwrap();
}
