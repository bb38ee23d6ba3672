#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The publisher Lambda as `publisher::build` makes it from its environment: with
//! `EVENT_BUS_NAME` set, a delivered message's receipt turning final puts `message.settled`
//! on that bus (the fake EventBridge); without it, nothing goes to EventBridge. The roster
//! and history tables are on DynamoDB Local; the management API, SQS and EventBridge are
//! fakes reached through the SDK's endpoint variables (`AWS_ENDPOINT_URL_SQS`,
//! `AWS_ENDPOINT_URL_EVENTBRIDGE`), which is why this is a test binary of its own: it sets
//! the process environment once, before any client is built.

#[path = "support/dynamodb_local.rs"]
mod dynamodb_local;
#[allow(dead_code)]
mod support;

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde_json::json;
use support::eventbridge::fake_eventbridge;
use support::fake_sqs;
use switchboard_aws::config::dynamodb_client_from;
use switchboard_aws::testkit::sdk_config;
use switchboard_aws::{create_history_table, create_table, delete_table, DynamoRosterStore};
use switchboard_core::roster::{ConnectionRecord, RosterStore};
use switchboard_lambdas::emf::testkit::MemorySink;
use switchboard_lambdas::emf::Metrics;
use switchboard_lambdas::publisher;
use time::OffsetDateTime;

/// A management API that takes every post.
async fn fake_gateway() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/{stage}/@connections/{id}",
        post(|| async { StatusCode::OK }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/main")
}

#[tokio::test]
async fn a_publisher_with_an_event_bus_puts_message_settled_when_a_message_is_delivered() {
    let endpoint = dynamodb_local::endpoint();
    let (bus, bus_addr) = fake_eventbridge().await;
    let (_sqs, sqs_addr) = fake_sqs().await;
    for (name, value) in [
        ("AWS_REGION", "eu-west-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "secret".to_string()),
        ("AWS_ENDPOINT_URL_SQS", format!("http://{sqs_addr}")),
        ("AWS_ENDPOINT_URL_EVENTBRIDGE", format!("http://{bus_addr}")),
    ] {
        std::env::set_var(name, value);
    }
    let dynamo = dynamodb_client_from(&sdk_config(None), Some(&endpoint));
    let roster_table = dynamodb_local::table_name("settled-roster");
    let history_table = dynamodb_local::table_name("settled-history");
    create_table(&dynamo, &roster_table).await.unwrap();
    create_history_table(&dynamo, &history_table).await.unwrap();
    let roster = DynamoRosterStore::new(dynamo.clone(), roster_table.clone(), 1);
    let record = ConnectionRecord::from_raw(
        "Alice000000000A=",
        "acme",
        "alice",
        vec![],
        OffsetDateTime::now_utc(),
        7_200,
    )
    .unwrap();
    roster.put(&record).await.unwrap();

    let env: HashMap<&str, String> = HashMap::from([
        ("DYNAMODB_ENDPOINT", endpoint.clone()),
        ("ROSTER_TABLE", roster_table.clone()),
        ("HISTORY_TABLE", history_table.clone()),
        ("CALLBACK_URL", fake_gateway().await),
        (
            "QUEUE_URL",
            format!("http://{sqs_addr}/123456789012/envelopes"),
        ),
        (
            "DLQ_URL",
            format!("http://{sqs_addr}/123456789012/dead-letters"),
        ),
        ("AWS_REGION", "eu-west-1".to_string()),
    ]);
    let lookup = |with_bus: bool| {
        let env = env.clone();
        move |name: &str| {
            if name == "EVENT_BUS_NAME" && with_bus {
                return Some("switchboard-test-events".to_string());
            }
            env.get(name).cloned()
        }
    };
    let metrics = Metrics::new("Switchboard/Test", Arc::new(MemorySink::new())).unwrap();
    let body = |id: &str| {
        json!({"id": id, "target": {"type": "users", "tenant": "acme", "users": ["alice"]},
               "data": {"hello": "world"}})
        .to_string()
    };

    // Without EVENT_BUS_NAME: delivered, nothing on the bus.
    let (quiet, _) = publisher::build(lookup(false)).await.unwrap();
    let response =
        publisher::handle(&quiet, &metrics, &support::event(&[body("m-quiet")]), None).await;
    assert!(response.batch_item_failures.is_empty());
    assert!(bus.taken().is_empty());

    let (publisher, _) = publisher::build(lookup(true)).await.unwrap();
    let response =
        publisher::handle(&publisher, &metrics, &support::event(&[body("m-1")]), None).await;
    assert!(response.batch_item_failures.is_empty());
    let taken = bus.taken();
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(taken[0]["Source"], "switchboard");
    assert_eq!(taken[0]["DetailType"], "message.settled");
    assert_eq!(taken[0]["EventBusName"], "switchboard-test-events");
    let detail = &bus.details()[0];
    assert_eq!(detail["type"], "message.settled");
    assert!(detail["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(detail["data"]["id"], "m-1");
    assert_eq!(detail["data"]["tenant"], "acme");
    assert_eq!(detail["data"]["status"], "delivered");
    assert_eq!(detail["data"]["matched"], 1);
    assert_eq!(detail["data"]["delivered"], 1);

    delete_table(&dynamo, &roster_table).await.unwrap();
    delete_table(&dynamo, &history_table).await.unwrap();
}
