use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_model::{TenantId, UserId};
use time::OffsetDateTime;

use super::*;
use crate::pusher::PushError;
use crate::queue::InboundMessage;
use crate::roster::{ConnectionRecord, MemoryRosterStore, RosterStore};
use crate::testkit::{RecordingQueue, ScriptedPusher};

struct Rig {
    roster: Arc<MemoryRosterStore>,
    pusher: Arc<ScriptedPusher>,
    dlq: Arc<RecordingQueue>,
    publisher: Publisher,
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(10),
    }
}

fn rig_with(pusher: ScriptedPusher, config: PublisherConfig) -> Rig {
    let roster = Arc::new(MemoryRosterStore::new());
    let pusher = Arc::new(pusher);
    let dlq = Arc::new(RecordingQueue::new());
    let publisher = Publisher::new(roster.clone(), pusher.clone(), dlq.clone(), config);
    Rig {
        roster,
        pusher,
        dlq,
        publisher,
    }
}

fn rig() -> Rig {
    rig_with(
        ScriptedPusher::new(),
        PublisherConfig {
            retry: fast_retry(),
            ..PublisherConfig::default()
        },
    )
}

impl Rig {
    async fn connect(&self, tenant: &str, user: &str, connection: &str) {
        let record = ConnectionRecord::from_raw(
            connection,
            tenant,
            user,
            vec![],
            OffsetDateTime::now_utc(),
            7_500,
        )
        .unwrap();
        self.roster.put(&record).await.unwrap();
    }

    async fn populate(&self) {
        self.connect("acme", "alice", "acme-alice-1").await;
        self.connect("acme", "alice", "acme-alice-2").await;
        self.connect("acme", "bob", "acme-bob-1").await;
        self.connect("globex", "alice", "globex-alice-1").await;
        self.connect("globex", "carol", "globex-carol-1").await;
    }
}

fn message(id: &str, body: Value) -> InboundMessage {
    InboundMessage {
        message_id: id.to_string(),
        body: body.to_string(),
        receive_count: 1,
    }
}

#[tokio::test]
async fn each_target_reaches_exactly_its_connections() {
    let cases = [
        (
            json!({"type":"users","tenant":"acme","users":["alice"]}),
            vec!["acme-alice-1", "acme-alice-2"],
        ),
        (
            json!({"type":"users","tenant":"globex","users":["alice","carol"]}),
            vec!["globex-alice-1", "globex-carol-1"],
        ),
        (
            json!({"type":"tenant","tenant":"acme"}),
            vec!["acme-alice-1", "acme-alice-2", "acme-bob-1"],
        ),
        (
            json!({"type":"connections","tenant":"acme","connectionIds":["acme-bob-1","globex-carol-1"]}),
            vec!["acme-bob-1"],
        ),
        (
            json!({"type":"broadcast"}),
            vec![
                "acme-alice-1",
                "acme-alice-2",
                "acme-bob-1",
                "globex-alice-1",
                "globex-carol-1",
            ],
        ),
    ];
    for (target, expected) in cases {
        let rig = rig();
        rig.populate().await;
        let outcome = rig
            .publisher
            .handle_batch(&[message(
                "sqs-1",
                json!({"id":"m-1","target":target,"data":{"n":1}}),
            )])
            .await;
        assert!(outcome.failed_message_ids.is_empty());
        assert_eq!(rig.pusher.delivered_to(), expected, "target {target}");
        let report = &outcome.reports[0];
        assert_eq!(
            (report.matched, report.delivered),
            (expected.len(), expected.len())
        );
        for (_, frame) in rig.pusher.delivered() {
            assert_eq!(
                serde_json::from_str::<Value>(&frame).unwrap(),
                json!({"id":"m-1","data":{"n":1}})
            );
        }
    }
}

#[tokio::test]
async fn id_defaults_to_the_queue_message_id() {
    let rig = rig();
    rig.populate().await;
    rig.publisher
        .handle_batch(&[message(
            "sqs-77",
            json!({"target":{"type":"users","tenant":"acme","users":["bob"]},"data":1}),
        )])
        .await;
    let frames = rig.pusher.delivered();
    assert_eq!(
        serde_json::from_str::<Value>(&frames[0].1).unwrap(),
        json!({"id":"sqs-77","data":1})
    );
}

#[tokio::test]
async fn gone_connections_are_removed_and_counted() {
    let rig = rig();
    rig.populate().await;
    rig.pusher.always_fail("acme-alice-2", PushError::Gone);
    let outcome = rig
        .publisher
        .handle_batch(&[message(
            "s",
            json!({"target":{"type":"tenant","tenant":"acme"},"data":1}),
        )])
        .await;
    let report = &outcome.reports[0];
    assert_eq!((report.delivered, report.gone, report.failed), (2, 1, 0));
    assert!(
        outcome.failed_message_ids.is_empty(),
        "gone is not a failure"
    );
    let acme = TenantId::parse("acme").unwrap();
    let left: Vec<String> = rig
        .roster
        .list_tenant(&acme)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.connection_id.to_string())
        .collect();
    assert_eq!(left.len(), 2);
    assert!(!left.contains(&"acme-alice-2".to_string()));
    // Nothing else was removed.
    assert_eq!(rig.roster.list_all().await.unwrap().len(), 4);
}

#[tokio::test]
async fn throttling_burst_is_retried_with_backoff_and_delivered() {
    let rig = rig();
    rig.populate().await;
    rig.pusher.script(
        "acme-bob-1",
        vec![
            Err(PushError::Throttled),
            Err(PushError::Throttled),
            Err(PushError::Throttled),
        ],
    );
    let started = std::time::Instant::now();
    let outcome = rig
        .publisher
        .handle_batch(&[message(
            "s",
            json!({"target":{"type":"users","tenant":"acme","users":["bob"]},"data":1}),
        )])
        .await;
    assert!(outcome.failed_message_ids.is_empty());
    let report = &outcome.reports[0];
    assert_eq!((report.delivered, report.retries), (1, 3));
    assert_eq!(rig.pusher.attempts(), 4);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn timeouts_and_5xx_are_retried() {
    let rig = rig();
    rig.populate().await;
    rig.pusher.script(
        "acme-bob-1",
        vec![
            Err(PushError::Timeout),
            Err(PushError::Transient("502".into())),
        ],
    );
    let outcome = rig
        .publisher
        .handle_batch(&[message(
            "s",
            json!({"target":{"type":"users","tenant":"acme","users":["bob"]},"data":1}),
        )])
        .await;
    assert!(outcome.failed_message_ids.is_empty());
    assert_eq!(outcome.reports[0].retries, 2);
    assert_eq!(rig.pusher.delivered_to(), vec!["acme-bob-1"]);
}

#[tokio::test]
async fn persistent_5xx_fails_only_that_message() {
    let rig = rig();
    rig.populate().await;
    rig.pusher
        .always_fail("globex-carol-1", PushError::Transient("500".into()));
    let outcome = rig
        .publisher
        .handle_batch(&[
            message("ok-1", json!({"target":{"type":"tenant","tenant":"acme"},"data":1})),
            message("bad-1", json!({"target":{"type":"users","tenant":"globex","users":["alice","carol"]},"data":2})),
            message("ok-2", json!({"target":{"type":"users","tenant":"globex","users":["alice"]},"data":3})),
        ])
        .await;
    assert_eq!(outcome.failed_message_ids, vec!["bad-1".to_string()]);
    let bad = outcome
        .reports
        .iter()
        .find(|r| r.message_id == "bad-1")
        .unwrap();
    assert_eq!((bad.delivered, bad.failed, bad.retries), (1, 1, 4));
    assert_eq!(bad.outcome, Outcome::Retry);
    // The failing connection is not removed: only 410 removes.
    assert_eq!(rig.roster.list_all().await.unwrap().len(), 5);
}

#[tokio::test]
async fn concurrency_never_exceeds_the_bound() {
    let rig = rig_with(
        ScriptedPusher::with_latency(Duration::from_millis(5)),
        PublisherConfig {
            fanout_concurrency: 7,
            retry: fast_retry(),
            ..PublisherConfig::default()
        },
    );
    for i in 0..100 {
        rig.connect("acme", &format!("u{i}"), &format!("c{i}"))
            .await;
    }
    let outcome = rig
        .publisher
        .handle_batch(&[message(
            "s",
            json!({"target":{"type":"tenant","tenant":"acme"},"data":1}),
        )])
        .await;
    assert_eq!(outcome.reports[0].delivered, 100);
    assert_eq!(
        rig.pusher.max_in_flight(),
        7,
        "bounded, and the bound is used"
    );
}

#[tokio::test]
async fn malformed_bodies_reach_the_dead_letters_and_are_acknowledged() {
    let rig = rig();
    rig.populate().await;
    let bodies = [
        "not json".to_string(),
        json!({"target":{"type":"users","tenant":"acme","users":[]},"data":1}).to_string(),
        json!({"message":"legacy-shaped but legacy is off"}).to_string(),
    ];
    let batch: Vec<InboundMessage> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| InboundMessage {
            message_id: format!("m{i}"),
            body: body.clone(),
            receive_count: 1,
        })
        .collect();
    let outcome = rig.publisher.handle_batch(&batch).await;
    assert!(outcome.failed_message_ids.is_empty(), "not retried");
    let letters = rig.dlq.letters();
    assert_eq!(letters.len(), 3);
    assert!(letters
        .iter()
        .any(|l| l.message_id == "m1" && l.error.contains("target.users")));
    assert!(letters.iter().all(|l| bodies.contains(&l.body)));
    assert!(rig.pusher.delivered().is_empty());
}

#[tokio::test]
async fn malformed_body_is_kept_for_redelivery_when_the_dead_letter_queue_fails() {
    let rig = rig();
    rig.dlq
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let outcome = rig
        .publisher
        .handle_batch(&[message("m", json!({"nope":1}))])
        .await;
    assert_eq!(outcome.failed_message_ids, vec!["m".to_string()]);
}

#[tokio::test]
async fn oversized_frames_are_dead_lettered() {
    let rig = rig();
    rig.populate().await;
    let big = "x".repeat(MAX_FRAME_BYTES);
    let outcome = rig
        .publisher
        .handle_batch(&[message(
            "m",
            json!({"target":{"type":"tenant","tenant":"acme"},"data":big}),
        )])
        .await;
    assert!(outcome.failed_message_ids.is_empty());
    assert_eq!(outcome.reports[0].outcome, Outcome::DeadLettered);
    assert_eq!(rig.dlq.letters().len(), 1);
    assert!(rig.pusher.delivered().is_empty());
}

#[tokio::test]
async fn expired_messages_are_dropped_and_counted() {
    let rig = rig();
    rig.populate().await;
    let outcome = rig
        .publisher
        .handle_batch(&[message(
            "m",
            json!({"target":{"type":"tenant","tenant":"acme"},"data":1,"expiresAt":"2001-01-01T00:00:00Z"}),
        )])
        .await;
    assert!(outcome.failed_message_ids.is_empty());
    assert_eq!(outcome.reports[0].outcome, Outcome::Expired);
    assert!(rig.pusher.delivered().is_empty());
    assert!(rig.dlq.letters().is_empty());
}

#[tokio::test]
async fn legacy_body_goes_verbatim_to_everyone_when_enabled() {
    let rig = rig_with(
        ScriptedPusher::new(),
        PublisherConfig {
            legacy_broadcast: true,
            retry: fast_retry(),
            ..PublisherConfig::default()
        },
    );
    rig.populate().await;
    let outcome = rig
        .publisher
        .handle_batch(&[InboundMessage {
            message_id: "m".into(),
            body: "plain text hello".into(),
            receive_count: 1,
        }])
        .await;
    assert!(outcome.failed_message_ids.is_empty());
    let delivered = rig.pusher.delivered();
    assert_eq!(delivered.len(), 5);
    assert!(delivered
        .iter()
        .all(|(_, frame)| frame == "plain text hello"));
    // An envelope-shaped but invalid body is still a malformed envelope, not legacy.
    let outcome = rig
        .publisher
        .handle_batch(&[message("bad", json!({"target":{"type":"users"},"data":1}))])
        .await;
    assert_eq!(outcome.reports[0].outcome, Outcome::DeadLettered);
}

#[tokio::test]
async fn same_user_id_in_two_tenants_never_crosses() {
    let rig = rig();
    rig.populate().await;
    rig.publisher
        .handle_batch(&[message(
            "m",
            json!({"target":{"type":"users","tenant":"globex","users":["alice"]},"data":1}),
        )])
        .await;
    assert_eq!(rig.pusher.delivered_to(), vec!["globex-alice-1"]);
    let _ = UserId::parse("alice").unwrap();
}
