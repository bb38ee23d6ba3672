#![allow(clippy::unwrap_used, clippy::expect_used)]
//! SQS fair queues (docs/design.md: AWS deployment): every `SendMessage` the publish API and
//! the publisher make carries the message's tenant as `MessageGroupId` (`*` for a broadcast
//! or a body that addresses nothing), through the real `SqsQueue` against the fake SQS
//! endpoint in `support/` (which also checks the group of every message any rig test sends).

#[allow(dead_code)] // the rig serves several test files; this one uses part of it
mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use support::{config, fake_sqs, rig, tenant_message, DLQ, QUEUE};
use switchboard_aws::testkit::sdk_config;
use switchboard_aws::SqsQueue;
use switchboard_core::auth::{mint_hs256, AuthConfig, Verifier};
use switchboard_core::publish_api::PublishApi;
use switchboard_core::publisher::PublisherConfig;
use switchboard_core::roster::MemoryRosterStore;
use switchboard_core::tenants::Tenants;
use switchboard_lambdas::emf::testkit::MemorySink;
use switchboard_lambdas::emf::Metrics;
use switchboard_lambdas::publish_api::router;
use switchboard_model::{TenantId, UserId};
use tower::ServiceExt;

const SECRET: &[u8] = b"lambda-fair-queue-test-secret-0032";

/// The publish API's request fixture with `token` and `body`.
fn publish_request(token: &str, body: &Value) -> lambda_http::Request {
    let path = format!(
        "{}/tests/fixtures/publish_api_request.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let text = body.to_string();
    event["headers"]["authorization"] = json!(format!("Bearer {token}"));
    event["headers"]["content-length"] = json!(text.len().to_string());
    event["body"] = json!(text);
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

#[tokio::test]
async fn the_publish_api_sends_each_message_with_its_tenant_as_group() {
    let (sqs, addr) = fake_sqs().await;
    let queue = Arc::new(SqsQueue::from_sdk_config(
        &sdk_config(Some(&format!("http://{addr}"))),
        format!("http://{addr}{QUEUE}"),
    ));
    let verifier = Arc::new(
        Verifier::new(AuthConfig::with_hs256_secret(SECRET))
            .await
            .unwrap(),
    );
    let metrics = Metrics::new("Switchboard/Test", Arc::new(MemorySink::new())).unwrap();
    let api = PublishApi {
        verifier,
        queue,
        receipts: None,
        tenants: Tenants::unlimited(),
        usage: None,
        push_enabled: false,
    };
    let app = router(api, Arc::new(MemoryRosterStore::new()), metrics);
    for tenant in ["acme", "globex"] {
        let token = mint_hs256(
            SECRET,
            &TenantId::parse(tenant).unwrap(),
            &UserId::parse("alice").unwrap(),
            &["publisher".to_string()],
            Duration::from_secs(300),
        );
        let body = json!({"id": format!("m-{tenant}"),
                          "target": {"type": "users", "tenant": tenant, "users": ["bob"]},
                          "data": {"n": 1}});
        let response = app
            .clone()
            .oneshot(publish_request(&token, &body))
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "{tenant}");
    }
    let sent = sqs.take(QUEUE);
    let groups: Vec<&str> = sent.iter().map(|s| s.group.as_str()).collect();
    assert_eq!(groups, ["acme", "globex"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuations_retries_and_dead_letters_carry_their_tenant() {
    let mut rig = rig(PublisherConfig {
        page_size: 5,
        ..config()
    })
    .await;
    for i in 0..12 {
        rig.connect("acme", &format!("conn-{i:03}"), time::Duration::minutes(5))
            .await;
    }
    rig.connect("acme", "flaky-1", time::Duration::minutes(5))
        .await;
    rig.connect("globex", "gx-1", time::Duration::minutes(5))
        .await;
    let broadcast = json!({"id": "b-1", "target": {"type": "broadcast"}, "data": 1}).to_string();
    rig.invoke(
        &[
            tenant_message("m-1", "acme"),
            tenant_message("m-2", "globex"),
            broadcast,
            "this is not an envelope".to_string(),
        ],
        None,
    )
    .await;
    // The malformed body is dead-lettered at once; it belongs to no tenant.
    let dead = rig.sqs.take(DLQ);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].group, "*");

    // Run every chain out, keeping what was enqueued on the way.
    let mut groups = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..50 {
        let sent = rig.sqs.take(QUEUE);
        if sent.is_empty() {
            break;
        }
        for s in &sent {
            *groups.entry(s.group.clone()).or_default() += 1;
        }
        let bodies: Vec<String> = sent.into_iter().map(|s| s.body).collect();
        for batch in bodies.chunks(10) {
            rig.invoke(batch, None).await;
        }
    }
    assert!(
        groups["acme"] >= 2,
        "acme's pages and its retry: {groups:?}"
    );
    assert!(groups["*"] >= 1, "the broadcast's pages: {groups:?}");
    assert!(
        groups
            .keys()
            .all(|g| ["acme", "globex", "*"].contains(&g.as_str())),
        "{groups:?}"
    );
    // flaky-1 got m-1 (after its retry item) and the broadcast.
    assert_eq!(rig.gateway.delivered().get("flaky-1"), Some(&2));
}
