#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The publish API router as `lambda_http` serves it: an API Gateway HTTP API (v2) event
//! (tests/fixtures/publish_api_request.json) parsed by `lambda_http::request::from_str`,
//! then sent through the router.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_core::auth::{mint_hs256, AuthConfig, Verifier};
use switchboard_core::testkit::RecordingQueue;
use switchboard_lambdas::publish_api::{queue_url, router};
use switchboard_model::{TenantId, UserId};
use tower::ServiceExt;

const SECRET: &[u8] = b"lambda-publish-api-test-secret-32";

fn token(roles: &[&str]) -> String {
    mint_hs256(
        SECRET,
        &TenantId::parse("acme").unwrap(),
        &UserId::parse("alice").unwrap(),
        &roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        Duration::from_secs(300),
    )
}

fn request(token: &str) -> lambda_http::Request {
    let path = format!(
        "{}/tests/fixtures/publish_api_request.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    lambda_http::request::from_str(&text.replace("__TOKEN__", token)).unwrap()
}

async fn send(queue: Arc<RecordingQueue>, request: lambda_http::Request) -> (u16, Value) {
    let verifier = Arc::new(
        Verifier::new(AuthConfig::with_hs256_secret(SECRET))
            .await
            .unwrap(),
    );
    let response = router(verifier, queue).oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn valid_request_is_enqueued_with_202() {
    let queue = Arc::new(RecordingQueue::new());
    let (status, body) = send(queue.clone(), request(&token(&["publisher"]))).await;
    assert_eq!(status, 202);
    assert_eq!(body, json!({"id": "m-42"}));
    let enqueued = queue.enqueued();
    assert_eq!(enqueued.len(), 1);
    assert_eq!(enqueued[0].0, "m-42");
    let envelope: Value = serde_json::from_str(&enqueued[0].1).unwrap();
    assert_eq!(
        envelope["target"],
        json!({"type": "users", "tenant": "acme", "users": ["bob"]})
    );
}

#[tokio::test]
async fn invalid_token_is_401_and_nothing_is_enqueued() {
    let queue = Arc::new(RecordingQueue::new());
    let (status, body) = send(queue.clone(), request("not-a-jwt")).await;
    assert_eq!(status, 401);
    assert!(body["error"].is_string() && body["message"].is_string());
    assert!(queue.enqueued().is_empty());
}

#[tokio::test]
async fn token_without_publish_role_is_403() {
    let queue = Arc::new(RecordingQueue::new());
    let (status, _) = send(queue.clone(), request(&token(&["reader"]))).await;
    assert_eq!(status, 403);
    assert!(queue.enqueued().is_empty());
}

#[test]
fn queue_url_is_required_by_name() {
    let error = queue_url(|_| None).unwrap_err();
    assert!(error.to_string().contains("QUEUE_URL"), "{error}");
    assert_eq!(
        queue_url(|_| Some("https://sqs.eu-west-1.amazonaws.com/123456789012/q".into())).unwrap(),
        "https://sqs.eu-west-1.amazonaws.com/123456789012/q"
    );
}
