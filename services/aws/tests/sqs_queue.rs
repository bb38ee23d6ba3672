#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `SqsQueue` against a fake SQS endpoint on 127.0.0.1 (the JSON protocol the SDK
//! speaks): enqueued bodies and dead letters arrive with their body and attributes, and
//! refusals map to `QueueError`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aws_smithy_types::retry::RetryConfig;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use switchboard_aws::testkit::sdk_config;
use switchboard_aws::SqsQueue;
use switchboard_core::queue::{DeadLetter, DeadLetterSink, MessageQueue, QueueError};

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, Value)>>>);

async fn sqs(State(received): State<Received>, headers: HeaderMap, body: String) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let queue = request["QueueUrl"].as_str().unwrap_or_default().to_string();
    received.0.lock().unwrap().push((target, request));
    let json_type = [("content-type", "application/x-amz-json-1.0")];
    if queue.ends_with("/missing") {
        return (
            StatusCode::BAD_REQUEST,
            json_type,
            json!({"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "no queue"})
                .to_string(),
        )
            .into_response();
    }
    if queue.ends_with("/picky") {
        return (
            StatusCode::BAD_REQUEST,
            json_type,
            json!({"__type": "com.amazonaws.sqs#InvalidMessageContents", "message": "bad chars"})
                .to_string(),
        )
            .into_response();
    }
    if queue.ends_with("/broken") {
        return (StatusCode::INTERNAL_SERVER_ERROR, json_type, "{}").into_response();
    }
    (
        StatusCode::OK,
        json_type,
        json!({"MessageId": "5fea7756-0ea4-451a-a703-a558b933e274",
               "MD5OfMessageBody": "00000000000000000000000000000000"})
        .to_string(),
    )
        .into_response()
}

async fn spawn_sqs() -> (SocketAddr, Received) {
    let received = Received::default();
    let app = Router::new()
        .route("/", post(sqs))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, received)
}

fn client(addr: SocketAddr) -> aws_sdk_sqs::Client {
    let sdk = sdk_config(Some(&format!("http://{addr}")))
        .into_builder()
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_sqs::Client::new(&sdk)
}

const QUEUE: &str = "https://sqs.eu-west-1.amazonaws.com/123456789012/envelopes";
const DLQ: &str = "https://sqs.eu-west-1.amazonaws.com/123456789012/envelopes-dlq";

#[tokio::test]
async fn enqueue_sends_the_body_to_the_queue() {
    let (addr, received) = spawn_sqs().await;
    let queue = SqsQueue::new(client(addr), QUEUE);
    let body = r#"{"id":"m-1","target":{"type":"tenant","tenant":"acme"},"data":1}"#;
    queue.enqueue("m-1", body).await.unwrap();
    let received = received.0.lock().unwrap();
    let [(target, request)] = &received[..] else {
        panic!("expected one request: {received:?}");
    };
    assert_eq!(target, "AmazonSQS.SendMessage");
    assert_eq!(request["QueueUrl"], QUEUE);
    assert_eq!(request["MessageBody"], body);
    assert_eq!(
        request["MessageAttributes"]["envelopeId"]["StringValue"],
        "m-1"
    );
    assert_eq!(request["MessageGroupId"], "acme", "fair queues: the tenant");
}

#[tokio::test]
async fn delayed_sends_carry_the_group_too() {
    let (addr, received) = spawn_sqs().await;
    let queue = SqsQueue::new(client(addr), QUEUE);
    let broadcast = r#"{"id":"b-1","target":{"type":"broadcast"},"data":1}"#;
    queue
        .enqueue_delayed("b-1", broadcast, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let users = r#"{"target":{"type":"users","tenant":"globex","users":["u"]},"data":1}"#;
    queue
        .enqueue_delayed("u-1", users, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let received = received.0.lock().unwrap();
    let groups: Vec<&Value> = received.iter().map(|(_, r)| &r["MessageGroupId"]).collect();
    assert_eq!(groups, [&json!("*"), &json!("globex")]);
    assert!(received.iter().all(|(_, r)| r["DelaySeconds"] == 5));
}

#[tokio::test]
async fn dead_letter_carries_body_error_and_receive_count() {
    let (addr, received) = spawn_sqs().await;
    let dlq = SqsQueue::new(client(addr), DLQ);
    dlq.dead_letter(DeadLetter {
        message_id: "sqs-msg-7".into(),
        body: "not json {".into(),
        error: "invalid envelope: expected value at line 1 column 1".into(),
        receive_count: 3,
        tenant: None,
    })
    .await
    .unwrap();
    let received = received.0.lock().unwrap();
    let [(target, request)] = &received[..] else {
        panic!("expected one request: {received:?}");
    };
    assert_eq!(target, "AmazonSQS.SendMessage");
    assert_eq!(request["QueueUrl"], DLQ);
    assert_eq!(request["MessageBody"], "not json {");
    let attributes = &request["MessageAttributes"];
    assert_eq!(
        attributes["error"],
        json!({"DataType": "String",
               "StringValue": "invalid envelope: expected value at line 1 column 1"})
    );
    assert_eq!(
        attributes["receiveCount"],
        json!({"DataType": "Number", "StringValue": "3"})
    );
    assert_eq!(attributes["messageId"]["StringValue"], "sqs-msg-7");
    // An unreadable body belongs to no tenant: the broadcasts' group.
    assert_eq!(request["MessageGroupId"], "*");
}

#[tokio::test]
async fn a_missing_queue_and_a_server_error_are_unavailable() {
    let (addr, _) = spawn_sqs().await;
    // A missing queue is this side's misconfiguration, not the publisher's body: 503.
    let missing = SqsQueue::new(
        client(addr),
        "https://sqs.eu-west-1.amazonaws.com/123456789012/missing",
    );
    let err = missing.enqueue("m-1", "{}").await.unwrap_err();
    assert!(matches!(err, QueueError::Unavailable(_)), "{err:?}");
    let broken = SqsQueue::new(
        client(addr),
        "https://sqs.eu-west-1.amazonaws.com/123456789012/broken",
    );
    let err = broken.enqueue("m-1", "{}").await.unwrap_err();
    assert!(matches!(err, QueueError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn a_body_the_queue_refuses_is_rejected() {
    let (addr, _) = spawn_sqs().await;
    let picky = SqsQueue::new(
        client(addr),
        "https://sqs.eu-west-1.amazonaws.com/123456789012/picky",
    );
    let err = picky.enqueue("m-1", "{}").await.unwrap_err();
    assert!(matches!(err, QueueError::Rejected(_)), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_queue_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let queue = SqsQueue::new(client(addr), QUEUE);
    let err = queue.enqueue("m-1", "{}").await.unwrap_err();
    assert!(matches!(err, QueueError::Unavailable(_)), "{err:?}");
}
