#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The publish API router as `lambda_http` serves it: an API Gateway HTTP API (v2) event
//! (tests/fixtures/publish_api_request.json) parsed by `lambda_http::request::from_str`,
//! then sent through the router.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_core::auth::{mint_hs256, AuthConfig, Verifier};
use switchboard_core::publish_api::PublishApi;
use switchboard_core::queue::MessageQueue;
use switchboard_core::receipts::Receipts;
use switchboard_core::roster::{MemoryRosterStore, RosterStore};
use switchboard_core::tenants::Tenants;
use switchboard_core::testkit::RecordingQueue;
use switchboard_lambdas::emf::testkit::{parse_document, MemorySink};
use switchboard_lambdas::emf::Metrics;
use switchboard_lambdas::publish_api::{queue_url, router};
use switchboard_model::{TenantId, UserId};
use tower::ServiceExt;

const SECRET: &[u8] = b"lambda-publish-api-test-secret-32";

/// The publish API on `queue`, without tenant limits or usage.
fn api(
    verifier: Arc<Verifier>,
    queue: Arc<dyn MessageQueue>,
    receipts: Option<Receipts>,
) -> PublishApi {
    PublishApi {
        verifier,
        queue,
        receipts,
        tenants: Tenants::unlimited(),
        usage: None,
        push_enabled: false,
    }
}

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
    let (status, body, _) = send_with_metrics(queue, request).await;
    (status, body)
}

/// Sends the request and returns the EMF documents the router emitted for it.
async fn send_with_metrics(
    queue: Arc<RecordingQueue>,
    request: lambda_http::Request,
) -> (u16, Value, Vec<Value>) {
    send_with_tenant_metrics(queue, request, "").await
}

/// As [`send_with_metrics`], with `METRICS_TENANTS` set to `tenants`.
async fn send_with_tenant_metrics(
    queue: Arc<RecordingQueue>,
    request: lambda_http::Request,
    tenants: &str,
) -> (u16, Value, Vec<Value>) {
    let sink = Arc::new(MemorySink::new());
    let metrics = Metrics::new("Switchboard/Test", sink.clone())
        .and_then(|m| m.with_tenants(tenants))
        .unwrap();
    let verifier = Arc::new(
        Verifier::new(AuthConfig::with_hs256_secret(SECRET))
            .await
            .unwrap(),
    );
    let roster = Arc::new(MemoryRosterStore::new());
    roster
        .put(&switchboard_core::testkit::record(
            "acme", "bob", "bobConn1",
        ))
        .await
        .unwrap();
    let response = router(api(verifier, queue, None), roster, metrics)
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let documents = sink
        .lines()
        .iter()
        .map(|line| parse_document(line).unwrap())
        .collect();
    (status, serde_json::from_slice(&bytes).unwrap(), documents)
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

#[tokio::test]
async fn a_request_of_a_listed_tenant_is_dimensioned_by_tenant_too() {
    let queue = Arc::new(RecordingQueue::new());
    let publish = || request(&token(&["publisher"]));
    let (status, _, docs) = send_with_tenant_metrics(queue.clone(), publish(), "acme").await;
    assert_eq!(status, 202);
    let dimensions = &docs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"];
    assert_eq!(dimensions, &json!([["Target"], ["Target", "Tenant"], []]));
    assert_eq!(docs[0]["Tenant"], "acme");
    assert_eq!(docs[0]["Target"], "users");
    let (_, _, docs) = send_with_tenant_metrics(queue.clone(), publish(), "big-co").await;
    assert!(docs[0].get("Tenant").is_none(), "acme is not listed");
}

#[tokio::test]
async fn every_request_is_one_emf_document_by_target_type() {
    let queue = Arc::new(RecordingQueue::new());
    let (status, _, docs) = send_with_metrics(queue.clone(), request(&token(&["publisher"]))).await;
    assert_eq!(status, 202);
    assert_eq!(docs.len(), 1);
    let doc = &docs[0];
    assert_eq!(
        doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "Switchboard/Test"
    );
    assert_eq!(doc["Target"], "users");
    assert_eq!(doc["Requests"], 1.0);
    assert_eq!(doc["Accepted"], 1.0);
    assert_eq!(doc["ClientErrors"], 0.0);
    assert_eq!(doc["status"], 202);
    assert!(doc["Latency"].as_f64().unwrap() >= 0.0);
    assert!(
        !doc.to_string().contains("acme"),
        "the tenant is never in a metric document: {doc}"
    );
    assert_eq!(
        queue.enqueued().len(),
        1,
        "the body reached the core intact"
    );

    let (status, _, docs) = send_with_metrics(queue, request("not-a-jwt")).await;
    assert_eq!(status, 401);
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["ClientErrors"], 1.0);
    assert_eq!(docs[0]["Accepted"], 0.0);
}

#[tokio::test]
async fn an_oversized_body_still_gets_the_cores_answers_and_one_document() {
    let body = format!(
        r#"{{"target":{{"type":"users","tenant":"acme","users":["bob"]}},"data":"{}"}}"#,
        "x".repeat(switchboard_core::publish_api::MAX_BODY_BYTES)
    );
    let oversized = |auth: &str| {
        http::Request::builder()
            .method("POST")
            .uri("/v1/messages")
            .header("authorization", format!("Bearer {auth}"))
            .header("content-type", "application/json")
            .body(lambda_http::Body::Text(body.clone()))
            .unwrap()
    };
    let queue = Arc::new(RecordingQueue::new());
    // The core checks the token before the size: the metrics layer must not answer first.
    let (status, _, docs) = send_with_metrics(queue.clone(), oversized("not-a-jwt")).await;
    assert_eq!(status, 401);
    assert_eq!(docs.len(), 1);
    assert_eq!(
        docs[0]["Target"], "invalid",
        "an unread body names no target"
    );
    let (status, _, docs) =
        send_with_metrics(queue.clone(), oversized(&token(&["publisher"]))).await;
    assert_eq!(status, 413);
    assert_eq!(docs[0]["ClientErrors"], 1.0);
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

/// The same function serves presence from the roster (an HTTP API event of the fixture's
/// shape, another route): a publisher of the tenant sees who is online.
#[tokio::test]
async fn presence_is_served_beside_publishing() {
    let path = format!(
        "{}/tests/fixtures/publish_api_request.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(path)
            .unwrap()
            .replace("__TOKEN__", &token(&["publisher"])),
    )
    .unwrap();
    let route = "/v1/tenants/acme/users/bob/presence";
    event["routeKey"] = json!(format!("GET {route}"));
    event["rawPath"] = json!(route);
    event["requestContext"]["http"]["method"] = json!("GET");
    event["requestContext"]["http"]["path"] = json!(route);
    event["body"] = Value::Null;
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let (status, body) = send(Arc::new(RecordingQueue::new()), request).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["online"], true);
    assert_eq!(body["connections"][0]["connectionId"], "bobConn1");
}

/// With receipts on, the Lambda router answers a repeated id with 200 and the receipt, and
/// serves it at `GET /v1/messages/{id}` (not metered as a publish).
#[tokio::test]
async fn a_repeated_id_is_200_and_its_receipt_is_readable() {
    use switchboard_core::receipts::{MemoryReceiptStore, ReceiptConfig, Receipts};
    let queue = Arc::new(RecordingQueue::new());
    let sink = Arc::new(MemorySink::new());
    let metrics = Metrics::new("Switchboard/Test", sink.clone()).unwrap();
    let verifier = Arc::new(
        Verifier::new(AuthConfig::with_hs256_secret(SECRET))
            .await
            .unwrap(),
    );
    let receipts = Receipts::new(
        Arc::new(MemoryReceiptStore::new(100)),
        &ReceiptConfig::default(),
    );
    let app = router(
        api(verifier, queue.clone(), receipts),
        Arc::new(MemoryRosterStore::new()),
        metrics,
    );
    let publisher = token(&["publisher"]);
    let first = app.clone().oneshot(request(&publisher)).await.unwrap();
    assert_eq!(first.status().as_u16(), 202);
    let again = app.clone().oneshot(request(&publisher)).await.unwrap();
    assert_eq!(again.status().as_u16(), 200);
    let body: Value = serde_json::from_slice(
        &axum::body::to_bytes(again.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["id"], "m-42");
    assert_eq!(body["status"], "queued");
    assert_eq!(queue.enqueued().len(), 1, "enqueued once");
    let get = http::Request::builder()
        .uri("/v1/messages/m-42")
        .header("authorization", format!("Bearer {publisher}"))
        .body(lambda_http::Body::Empty)
        .unwrap();
    let read = app.oneshot(get).await.unwrap();
    assert_eq!(read.status().as_u16(), 200);
    let body: Value = serde_json::from_slice(
        &axum::body::to_bytes(read.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["tenant"], "acme");
    assert_eq!(body["target"]["users"], json!(["bob"]));
    assert_eq!(sink.lines().len(), 2, "two publishes metered, the read not");
}

/// The publisher puts a cursor in every frame it keeps in history: a body whose frame fits
/// only without one is refused here (413), not accepted and then dead-lettered. A
/// `connections` frame carries no cursor and may use the whole limit.
#[tokio::test]
async fn the_frame_limit_counts_the_cursor_the_publisher_adds() {
    use switchboard_core::history::Cursor;
    use switchboard_model::{Envelope, MAX_FRAME_BYTES};

    let body_for = |target: Value, len: usize| {
        json!({"id": "edge", "target": target, "data": "x".repeat(len)}).to_string()
    };
    let users = json!({"type":"users","tenant":"acme","users":["bob"]});
    // The data length that makes the cursor-less frame exactly the limit.
    let empty = Envelope::parse(body_for(users.clone(), 0).as_bytes()).unwrap();
    let fill = MAX_FRAME_BYTES - empty.frame("edge").len();
    let envelope = Envelope::parse(body_for(users.clone(), fill).as_bytes()).unwrap();
    assert_eq!(envelope.frame("edge").len(), MAX_FRAME_BYTES);
    assert!(envelope
        .checked_frame("edge", Some(Cursor::WIDEST))
        .is_err());

    let publish = |body: String| {
        http::Request::builder()
            .method("POST")
            .uri("/v1/messages")
            .header("authorization", format!("Bearer {}", token(&["publisher"])))
            .header("content-type", "application/json")
            .body(lambda_http::Body::Text(body))
            .unwrap()
    };
    let queue = Arc::new(RecordingQueue::new());
    let (status, body) = send(queue.clone(), publish(body_for(users.clone(), fill))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("payload_too_large"))
    );
    assert!(queue.enqueued().is_empty());

    // With room for the widest cursor it is accepted.
    let room = fill - (r#","cursor":"""#.len() + Cursor::WIDEST.len());
    let (status, _) = send(queue.clone(), publish(body_for(users, room))).await;
    assert_eq!(status, 202);

    // A `connections` target's frame has no cursor: the full limit.
    let connections = json!({"type":"connections","tenant":"acme","connectionIds":["c-1"]});
    let (status, body) = send(queue.clone(), publish(body_for(connections, fill))).await;
    assert_eq!(status, 202, "{body}");
}
