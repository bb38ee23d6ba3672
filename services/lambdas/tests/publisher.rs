#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The publisher driven with a real-shaped SQS event (tests/fixtures/sqs_batch.json):
//! one valid envelope for one connection, one malformed body.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use serde_json::{json, Value};
use switchboard_core::poster::PostError;
use switchboard_core::publisher::{Publisher, PublisherConfig, PublisherPorts, RetryPolicy};
use switchboard_core::roster::{ConnectionRecord, MemoryRosterStore, RosterStore};
use switchboard_core::testkit::{RecordingQueue, ScriptedPoster};
use switchboard_lambdas::emf::testkit::{parse_document, MemorySink};
use switchboard_lambdas::emf::Metrics;
use switchboard_lambdas::publisher::{self, inbound_message, PublisherSettings};
use switchboard_model::{ConnectionId, TenantId, UserId};
use time::OffsetDateTime;

const CONNECTION: &str = "TWegAd-1joECJFA=";
const VALID_ID: &str = "059f36b4-87a3-44ab-83d2-661975830a7d";
const MALFORMED_ID: &str = "2e1424d4-f796-459a-8184-9c92662be6da";

fn sqs_event() -> SqsEvent {
    let path = format!(
        "{}/tests/fixtures/sqs_batch.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

struct Harness {
    poster: Arc<ScriptedPoster>,
    dlq: Arc<RecordingQueue>,
    work: Arc<RecordingQueue>,
    publisher: Publisher,
    metrics: Metrics,
    emf: Arc<MemorySink>,
}

impl Harness {
    async fn handle(&self, event: &SqsEvent) -> aws_lambda_events::sqs::SqsBatchResponse {
        publisher::handle(&self.publisher, &self.metrics, event, None).await
    }

    /// Every EMF line written, each parsed and checked against the specification.
    fn emf_documents(&self) -> Vec<Value> {
        self.emf
            .lines()
            .iter()
            .map(|line| parse_document(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }
}

async fn harness() -> Harness {
    harness_with_token_expiry(None).await
}

/// The harness, its one connection's token expiring at `token_expires_at`.
async fn harness_with_token_expiry(token_expires_at: Option<i64>) -> Harness {
    let roster = Arc::new(MemoryRosterStore::new());
    roster
        .put(
            &ConnectionRecord::new(
                ConnectionId::parse(CONNECTION).unwrap(),
                TenantId::parse("acme").unwrap(),
                UserId::parse("alice").unwrap(),
                vec![],
                OffsetDateTime::now_utc(),
                7_500,
            )
            .with_token_expiry(token_expires_at),
        )
        .await
        .unwrap();
    let poster = Arc::new(ScriptedPoster::new());
    let dlq = Arc::new(RecordingQueue::new());
    let config = PublisherConfig {
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        },
        ..PublisherConfig::default()
    };
    let work = Arc::new(RecordingQueue::new());
    let publisher = Publisher::new(
        PublisherPorts {
            roster,
            poster: poster.clone(),
            dead_letters: dlq.clone(),
            work_queue: work.clone(),
        },
        config,
    );
    let emf = Arc::new(MemorySink::new());
    let metrics = Metrics::new("Switchboard/Test", emf.clone()).unwrap();
    Harness {
        poster,
        dlq,
        work,
        publisher,
        metrics,
        emf,
    }
}

#[test]
fn records_map_to_inbound_messages() {
    let event = sqs_event();
    let message = inbound_message(&event.records[0]);
    assert_eq!(message.message_id, VALID_ID);
    assert_eq!(message.receive_count, 2);
    assert!(message.body.contains("\"connectionIds\""));
    assert_eq!(inbound_message(&event.records[1]).receive_count, 1);
}

#[tokio::test]
async fn delivers_the_envelope_and_dead_letters_the_malformed_body() {
    let h = harness().await;
    let response = h.handle(&sqs_event()).await;
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"batchItemFailures": []})
    );

    let delivered = h.poster.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].0, CONNECTION);
    let frame: Value = serde_json::from_str(&delivered[0].1).unwrap();
    assert_eq!(frame, json!({"id": "m-1", "data": {"hello": "world"}}));

    let letters = h.dlq.letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].message_id, MALFORMED_ID);
    assert_eq!(letters[0].body, "this is not an envelope");
    assert!(!letters[0].error.is_empty());
}

/// The message is done after its posts: the failing connection continues alone in a
/// retry work item, so SQS never redelivers (and re-sends) the whole message.
#[tokio::test]
async fn a_persistently_failing_post_becomes_a_retry_item_not_a_batch_failure() {
    let h = harness().await;
    h.poster
        .always_fail(CONNECTION, PostError::Transient("503 from the API".into()));
    let response = h.handle(&sqs_event()).await;
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"batchItemFailures": []})
    );
    assert_eq!(h.poster.attempts(), 3, "retried up to max_attempts");
    let retry = h.work.enqueued();
    assert_eq!(retry.len(), 1);
    assert!(retry[0].1.starts_with(r#"{"shard":"#) && retry[0].1.contains(CONNECTION));
    assert_eq!(
        h.dlq.letters().len(),
        1,
        "only the malformed body is dead-lettered"
    );
}

#[tokio::test]
async fn each_message_is_one_emf_document_dimensioned_by_target_type() {
    let h = harness().await;
    h.handle(&sqs_event()).await;
    let docs = h.emf_documents();
    assert_eq!(docs.len(), 2, "one document per message of the batch");
    for doc in &docs {
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Switchboard/Test");
        assert_eq!(directive["Dimensions"], json!([["Target"], []]));
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        for name in [
            "Delivered",
            "Gone",
            "Throttled",
            "Failed",
            "Retries",
            "FanoutDuration",
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        assert!(
            !doc.to_string().contains("acme"),
            "the tenant is never in a metric document: {doc}"
        );
    }
    let by_target = |t: &str| docs.iter().find(|d| d["Target"] == t).unwrap();
    let delivered = by_target("connections");
    assert_eq!(delivered["Delivered"], 1.0);
    assert_eq!(delivered["Failed"], 0.0);
    assert_eq!(delivered["outcome"], "delivered");
    assert_eq!(by_target("invalid")["outcome"], "dead_lettered");
}

#[tokio::test]
async fn a_listed_tenant_s_messages_are_dimensioned_by_tenant_too() {
    let mut h = harness().await;
    h.metrics = h.metrics.clone().with_tenants("acme").unwrap();
    h.handle(&sqs_event()).await;
    let docs = h.emf_documents();
    let by_target = |t: &str| docs.iter().find(|d| d["Target"] == t).unwrap();
    let acme = by_target("connections");
    assert_eq!(acme["Tenant"], "acme");
    assert_eq!(
        acme["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Target"], ["Target", "Tenant"], []])
    );
    let invalid = by_target("invalid");
    assert!(
        invalid.get("Tenant").is_none(),
        "an invalid body has no tenant"
    );
    assert_eq!(
        invalid["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Target"], []])
    );
}

#[tokio::test]
async fn failures_and_retries_reach_the_emf_document() {
    let h = harness().await;
    h.poster.always_fail(CONNECTION, PostError::Throttled);
    h.handle(&sqs_event()).await;
    let docs = h.emf_documents();
    let doc = docs.iter().find(|d| d["Target"] == "connections").unwrap();
    assert_eq!(doc["Delivered"], 0.0);
    assert_eq!(doc["Failed"], 1.0);
    assert_eq!(doc["Retries"], 2.0);
    assert_eq!(doc["Throttled"], 3.0);
    assert_eq!(
        doc["Deferred"], 1.0,
        "the failing connection went to a retry item"
    );
    assert_eq!(doc["outcome"], "deferred");
}

#[test]
fn settings_require_callback_and_dlq_urls_by_name() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_string())
        }
    };
    let error = PublisherSettings::from_lookup(env(&[
        ("DLQ_URL", "https://sqs/q"),
        ("QUEUE_URL", "https://sqs/q"),
    ]))
    .unwrap_err();
    assert!(error.to_string().contains("CALLBACK_URL"), "{error}");
    let error = PublisherSettings::from_lookup(env(&[
        (
            "CALLBACK_URL",
            "https://abc.execute-api.eu-west-1.amazonaws.com/main",
        ),
        ("QUEUE_URL", "https://sqs/q"),
    ]))
    .unwrap_err();
    assert!(error.to_string().contains("DLQ_URL"), "{error}");
    let error = PublisherSettings::from_lookup(env(&[
        (
            "CALLBACK_URL",
            "https://abc.execute-api.eu-west-1.amazonaws.com/main",
        ),
        ("DLQ_URL", "https://sqs/q"),
    ]))
    .unwrap_err();
    assert!(error.to_string().contains("QUEUE_URL"), "{error}");
    let error = PublisherSettings::from_lookup(env(&[
        ("CALLBACK_URL", "not a url"),
        ("DLQ_URL", "https://sqs/q"),
        ("QUEUE_URL", "https://sqs/q"),
    ]))
    .unwrap_err();
    assert!(error.to_string().contains("CALLBACK_URL"), "{error}");

    let settings = PublisherSettings::from_lookup(env(&[
        (
            "CALLBACK_URL",
            "https://abc.execute-api.eu-west-1.amazonaws.com/main/",
        ),
        (
            "DLQ_URL",
            "https://sqs.eu-west-1.amazonaws.com/123456789012/dlq",
        ),
        (
            "QUEUE_URL",
            "https://sqs.eu-west-1.amazonaws.com/123456789012/envelopes",
        ),
        ("FANOUT_CONCURRENCY", "8"),
        ("FANOUT_SHARD_SIZE", "500"),
    ]))
    .unwrap();
    assert_eq!(
        settings.callback_url,
        "https://abc.execute-api.eu-west-1.amazonaws.com/main"
    );
    assert_eq!(settings.publisher.fanout_concurrency, 8);
    assert_eq!(settings.publisher.page_size, 500);
}

/// A connection whose token expired an hour ago is not posted to: it is closed, and the
/// message's EMF document counts it.
#[tokio::test]
async fn a_connection_whose_token_expired_is_closed_not_posted_to() {
    let expired = OffsetDateTime::now_utc().unix_timestamp() - 3_600;
    let h = harness_with_token_expiry(Some(expired)).await;
    let response = h.handle(&sqs_event()).await;
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"batchItemFailures": []})
    );
    assert!(h.poster.delivered().is_empty());
    assert_eq!(h.poster.closed(), [CONNECTION]);
    let documents = h.emf_documents();
    let message = documents
        .iter()
        .find(|d| d["id"] == "m-1")
        .expect("the message's document");
    assert_eq!(message["ExpiredTokens"], 1.0);
    assert_eq!(message["Delivered"], 0.0);
}
