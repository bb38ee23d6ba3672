#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Each Lambda's start-up: its dependency builder refuses a missing or invalid variable,
//! naming it, and builds from a complete environment (no AWS call is made at init).

use switchboard_lambdas::{authorizer, connect, default, disconnect, publish_api, publisher};

type Env = &'static [(&'static str, &'static str)];

fn lookup(pairs: Env) -> impl Fn(&str) -> Option<String> {
    move |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_string())
    }
}

const REGION: (&str, &str) = ("AWS_REGION", "eu-west-1");
const SECRET: (&str, &str) = ("JWT_HS256_SECRET", "startup-test-secret-of-32-bytes!!");
const CALLBACK: (&str, &str) = (
    "CALLBACK_URL",
    "https://abc.execute-api.eu-west-1.amazonaws.com/main",
);
const QUEUE: (&str, &str) = (
    "QUEUE_URL",
    "https://sqs.eu-west-1.amazonaws.com/123456789012/envelopes",
);
const DLQ: (&str, &str) = (
    "DLQ_URL",
    "https://sqs.eu-west-1.amazonaws.com/123456789012/dead-letters",
);

fn names(error: impl std::fmt::Display, variable: &str) {
    let text = error.to_string();
    assert!(text.contains(variable), "{text:?} does not name {variable}");
}

#[tokio::test]
async fn authorizer_needs_a_key_source() {
    names(
        authorizer::build(lookup(&[REGION])).await.unwrap_err(),
        "JWT_",
    );
    authorizer::build(lookup(&[REGION, SECRET])).await.unwrap();
}

#[tokio::test]
async fn connect_checks_its_ttl() {
    let error = connect::build(lookup(&[REGION, ("CONNECTION_TTL_SECS", "soon")]))
        .await
        .err()
        .unwrap();
    names(error, "CONNECTION_TTL_SECS");
    connect::build(lookup(&[REGION, ("ROSTER_TABLE", "Roster")]))
        .await
        .unwrap();
}

#[tokio::test]
async fn disconnect_checks_its_endpoint() {
    let error = disconnect::build(lookup(&[REGION, ("DYNAMODB_ENDPOINT", "not a url")]))
        .await
        .err()
        .unwrap();
    names(error, "DYNAMODB_ENDPOINT");
    disconnect::build(lookup(&[REGION])).await.unwrap();
}

#[tokio::test]
async fn default_needs_its_callback_url() {
    names(
        default::build(lookup(&[REGION])).await.err().unwrap(),
        "CALLBACK_URL",
    );
    // `refresh` verifies tokens as the authorizer does: the same key source is required.
    names(
        default::build(lookup(&[REGION, CALLBACK]))
            .await
            .err()
            .unwrap(),
        "JWT_",
    );
    default::build(lookup(&[REGION, CALLBACK, SECRET]))
        .await
        .unwrap();
}

#[tokio::test]
async fn publisher_needs_its_queues_and_checks_the_fan_out_settings() {
    names(
        publisher::build(lookup(&[REGION, CALLBACK, DLQ]))
            .await
            .err()
            .unwrap(),
        "QUEUE_URL",
    );
    names(
        publisher::build(lookup(&[
            REGION,
            CALLBACK,
            DLQ,
            QUEUE,
            ("FANOUT_SHARD_SIZE", "0"),
        ]))
        .await
        .err()
        .unwrap(),
        "FANOUT_SHARD_SIZE",
    );
    names(
        publisher::build(lookup(&[
            REGION,
            CALLBACK,
            DLQ,
            QUEUE,
            ("HISTORY_TTL_SECS", "-1"),
        ]))
        .await
        .err()
        .unwrap(),
        "HISTORY_TTL_SECS",
    );
    names(
        publisher::build(lookup(&[
            REGION,
            CALLBACK,
            DLQ,
            QUEUE,
            ("RECEIPT_TTL_SECS", "604801"),
        ]))
        .await
        .err()
        .unwrap(),
        "RECEIPT_TTL_SECS",
    );
    let (publisher, _) = publisher::build(lookup(&[
        REGION,
        CALLBACK,
        DLQ,
        QUEUE,
        ("FANOUT_RATE", "500"),
    ]))
    .await
    .unwrap();
    assert_eq!(publisher.config().fanout_rate, 500);
}

#[tokio::test]
async fn publish_api_needs_keys_and_its_queue() {
    names(
        publish_api::build(lookup(&[REGION, SECRET]))
            .await
            .err()
            .unwrap(),
        "QUEUE_URL",
    );
    names(
        publish_api::build(lookup(&[REGION, QUEUE]))
            .await
            .err()
            .unwrap(),
        "JWT_",
    );
    names(
        publish_api::build(lookup(&[
            REGION,
            QUEUE,
            SECRET,
            ("RECEIPT_TTL_SECS", "forever"),
        ]))
        .await
        .err()
        .unwrap(),
        "RECEIPT_TTL_SECS",
    );
    let _router = publish_api::build(lookup(&[REGION, QUEUE, SECRET]))
        .await
        .unwrap();
}
