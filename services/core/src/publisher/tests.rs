use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_model::{TenantId, UserId, MAX_FRAME_BYTES};
use time::OffsetDateTime;

use super::*;
use crate::pusher::PushError;
use crate::queue::InboundMessage;
use crate::roster::PageScope;
use crate::roster::{ConnectionRecord, MemoryRosterStore, RosterStore};
use crate::testkit::{run_to_completion, RecordingQueue, ScriptedPusher};

pub(super) struct Rig {
    pub(super) roster: Arc<MemoryRosterStore>,
    pub(super) pusher: Arc<ScriptedPusher>,
    pub(super) dlq: Arc<RecordingQueue>,
    pub(super) work: Arc<RecordingQueue>,
    pub(super) publisher: Publisher,
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(10),
    }
}

pub(super) fn rig_with(pusher: ScriptedPusher, config: PublisherConfig) -> Rig {
    let roster = Arc::new(MemoryRosterStore::new());
    let pusher = Arc::new(pusher);
    let dlq = Arc::new(RecordingQueue::new());
    let work = Arc::new(RecordingQueue::new());
    let publisher = Publisher::new(
        PublisherPorts {
            roster: roster.clone(),
            pusher: pusher.clone(),
            dead_letters: dlq.clone(),
            work_queue: work.clone(),
        },
        config,
    );
    Rig {
        roster,
        pusher,
        dlq,
        work,
        publisher,
    }
}

/// Fast retries, no `410` grace (fixtures connect "now").
pub(super) fn test_config() -> PublisherConfig {
    PublisherConfig {
        retry: fast_retry(),
        gone_grace: Duration::ZERO,
        retry_item_delay: Duration::ZERO,
        ..PublisherConfig::default()
    }
}

fn rig() -> Rig {
    rig_with(ScriptedPusher::new(), test_config())
}

impl Rig {
    /// Runs `batch`, then every work item it leads to.
    async fn run(&self, batch: Vec<InboundMessage>) -> Vec<MessageReport> {
        run_to_completion(&self.publisher, &self.work, batch, 1_000).await
    }

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
        let reports = rig
            .run(vec![message(
                "sqs-1",
                json!({"id":"m-1","target":target,"data":{"n":1}}),
            )])
            .await;
        assert_eq!(rig.pusher.delivered_to(), expected, "target {target}");
        let matched: usize = reports.iter().map(|r| r.matched).sum();
        let delivered: usize = reports.iter().map(|r| r.delivered).sum();
        assert_eq!((matched, delivered), (expected.len(), expected.len()));
        assert!(reports.iter().all(|r| r.id == "m-1"));
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
async fn persistent_5xx_is_retried_for_that_connection_only_then_dead_lettered() {
    let rig = rig();
    rig.populate().await;
    rig.pusher
        .always_fail("globex-carol-1", PushError::Transient("500".into()));
    let outcome = rig
        .publisher
        .handle_batch(&[
            message("ok-1", json!({"target":{"type":"tenant","tenant":"acme"},"data":1})),
            message("bad-1", json!({"id":"bad","target":{"type":"users","tenant":"globex","users":["alice","carol"]},"data":2})),
            message("ok-2", json!({"target":{"type":"users","tenant":"globex","users":["alice"]},"data":3})),
        ])
        .await;
    assert!(
        outcome.failed_message_ids.is_empty(),
        "the message is done: its failing connection continues on its own"
    );
    let bad = outcome
        .reports
        .iter()
        .find(|r| r.message_id == "bad-1")
        .unwrap();
    assert_eq!((bad.delivered, bad.failed, bad.retries), (1, 1, 4));
    assert_eq!((bad.outcome, bad.deferred), (Outcome::Deferred, 1));
    let retry_items = rig.work.drain();
    assert_eq!(retry_items.len(), 1);
    let Some(Ok(item)) = WorkItem::from_body(&retry_items[0].1) else {
        panic!("not a work item: {}", retry_items[0].1)
    };
    assert_eq!(item.attempt, 2);
    assert_eq!(
        item.work,
        Work::Connections {
            connections: vec![Recipient {
                tenant: TenantId::parse("globex").unwrap(),
                connection_id: switchboard_model::ConnectionId::parse("globex-carol-1").unwrap(),
                connected_at: item_connected_at(&item),
                token_expires_at: None,
            }]
        }
    );
    // Attempts 2..=5 re-send to that connection only, then it is dead-lettered.
    let before = rig.pusher.delivered().len();
    let reports = rig
        .run(vec![InboundMessage {
            message_id: "retry".into(),
            body: retry_items[0].1.clone(),
            receive_count: 1,
        }])
        .await;
    assert_eq!(reports.len(), 4, "attempts 2, 3, 4 and 5");
    assert_eq!(rig.pusher.delivered().len(), before, "nobody else re-sent");
    // First run: acme 3, globex alice 1 + carol 5, alice 1; then 4 retry items × 5 tries.
    assert_eq!(rig.pusher.attempts(), 10 + 4 * 5);
    let letters = rig.dlq.letters();
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].error.contains("after 5 attempts"),
        "{}",
        letters[0].error
    );
    assert!(letters[0].body.contains("globex-carol-1"));
    assert!(!letters[0].body.contains("globex-alice-1"));
    // The failing connection is not removed: only 410 removes.
    assert_eq!(rig.roster.list_all().await.unwrap().len(), 5);
}

fn item_connected_at(item: &WorkItem) -> OffsetDateTime {
    match &item.work {
        Work::Connections { connections } => connections[0].connected_at,
        Work::Page { .. } => panic!("a page"),
    }
}

#[tokio::test]
async fn concurrency_never_exceeds_the_bound() {
    let rig = rig_with(
        ScriptedPusher::with_latency(Duration::from_millis(5)),
        PublisherConfig {
            fanout_concurrency: 7,
            ..test_config()
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
            ..test_config()
        },
    );
    rig.populate().await;
    rig.run(vec![InboundMessage {
        message_id: "m".into(),
        body: "plain text hello".into(),
        receive_count: 1,
    }])
    .await;
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

fn sharded(shard_size: usize) -> PublisherConfig {
    PublisherConfig {
        shard_size,
        ..test_config()
    }
}

pub(super) async fn connect_many(rig: &Rig, tenant: &str, count: usize) {
    for i in 0..count {
        rig.connect(tenant, &format!("u{}", i % 7), &format!("{tenant}-{i:05}"))
            .await;
    }
}

#[tokio::test]
async fn a_tenant_is_delivered_one_page_per_work_item_continuation_first() {
    let rig = rig_with(ScriptedPusher::new(), sharded(10));
    connect_many(&rig, "acme", 25).await;
    connect_many(&rig, "globex", 5).await;
    let outcome = rig
        .publisher
        .handle_batch(&[message(
            "s",
            json!({"id":"m","target":{"type":"tenant","tenant":"acme"},"data":1}),
        )])
        .await;
    assert_eq!(outcome.reports[0].matched, 10);
    assert_eq!(rig.pusher.delivered().len(), 10, "one page only");
    let continuation = rig.work.drain();
    assert_eq!(continuation.len(), 1);
    let Some(Ok(item)) = WorkItem::from_body(&continuation[0].1) else {
        panic!("not a work item")
    };
    assert!(matches!(item.work, Work::Page { start: Some(_), .. }));
    let reports = rig
        .run(vec![InboundMessage {
            message_id: "c".into(),
            body: continuation[0].1.clone(),
            receive_count: 1,
        }])
        .await;
    assert_eq!(
        reports.iter().map(|r| r.matched).collect::<Vec<_>>(),
        [10, 5]
    );
    let to = rig.pusher.delivered_to();
    assert_eq!(to.len(), 25);
    assert!(to.iter().all(|c| c.starts_with("acme-")));
    let unique: std::collections::BTreeSet<_> = to.iter().collect();
    assert_eq!(unique.len(), 25, "each once");
}

#[tokio::test]
async fn a_continuation_that_cannot_be_enqueued_posts_nothing_and_is_redelivered() {
    let rig = rig_with(ScriptedPusher::new(), sharded(10));
    connect_many(&rig, "acme", 25).await;
    rig.work
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let outcome = rig
        .publisher
        .handle_batch(&[message(
            "s",
            json!({"target":{"type":"tenant","tenant":"acme"},"data":1}),
        )])
        .await;
    assert_eq!(outcome.failed_message_ids, ["s"]);
    assert!(rig.pusher.delivered().is_empty());
}

#[tokio::test]
async fn a_broadcast_starts_one_chain_per_segment() {
    let rig = rig_with(
        ScriptedPusher::new(),
        PublisherConfig {
            scan_segments: 3,
            ..sharded(4)
        },
    );
    connect_many(&rig, "acme", 20).await;
    connect_many(&rig, "globex", 20).await;
    rig.publisher
        .handle_batch(&[message(
            "s",
            json!({"target":{"type":"broadcast"},"data":1}),
        )])
        .await;
    let items: Vec<WorkItem> = rig
        .work
        .enqueued()
        .iter()
        .filter_map(|(_, body)| WorkItem::from_body(body).and_then(Result::ok))
        .collect();
    let segments: Vec<u32> = items
        .iter()
        .filter_map(|item| match &item.work {
            Work::Page {
                scope: PageScope::Segment { segment, .. },
                start: None,
            } => Some(*segment),
            _ => None,
        })
        .collect();
    assert_eq!(segments, [1, 2], "segment 0 runs in place");
    rig.run(vec![]).await;
    rig.run(
        rig.work
            .drain()
            .into_iter()
            .map(|(_, body)| InboundMessage {
                message_id: "w".into(),
                body,
                receive_count: 1,
            })
            .collect(),
    )
    .await;
    assert_eq!(rig.pusher.delivered().len(), 40);
}

#[tokio::test]
async fn a_deadline_too_short_for_the_page_continues_the_rest_as_a_remainder() {
    let rig = rig_with(
        ScriptedPusher::with_latency(Duration::from_millis(40)),
        PublisherConfig {
            fanout_concurrency: 2,
            deadline_margin: Duration::from_millis(50),
            ..sharded(100)
        },
    );
    connect_many(&rig, "acme", 60).await;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(250);
    let outcome = rig
        .publisher
        .handle_batch_until(
            &[message(
                "s",
                json!({"target":{"type":"tenant","tenant":"acme"},"data":1}),
            )],
            Some(deadline),
        )
        .await;
    assert!(
        tokio::time::Instant::now() < deadline,
        "returned before the deadline"
    );
    assert!(outcome.failed_message_ids.is_empty(), "a page succeeds");
    let report = &outcome.reports[0];
    let posted = rig.pusher.delivered().len();
    assert!(posted > 0 && posted < 60, "{posted}");
    assert_eq!(report.deferred, 60 - posted);
    assert_eq!(report.outcome, Outcome::Deferred);
    // The remainder names exactly the unposted connections.
    rig.run(
        rig.work
            .drain()
            .into_iter()
            .map(|(_, body)| InboundMessage {
                message_id: "r".into(),
                body,
                receive_count: 1,
            })
            .collect(),
    )
    .await;
    let to = rig.pusher.delivered_to();
    let unique: std::collections::BTreeSet<_> = to.iter().collect();
    assert_eq!((to.len(), unique.len()), (60, 60));
}

#[tokio::test]
async fn a_users_message_out_of_time_is_redelivered_whole() {
    let rig = rig_with(
        ScriptedPusher::new(),
        PublisherConfig {
            deadline_margin: Duration::from_secs(5),
            ..test_config()
        },
    );
    rig.populate().await;
    let outcome = rig
        .publisher
        .handle_batch_until(
            &[message(
                "s",
                json!({"target":{"type":"users","tenant":"acme","users":["alice"]},"data":1}),
            )],
            Some(tokio::time::Instant::now() + Duration::from_secs(1)),
        )
        .await;
    assert_eq!(outcome.failed_message_ids, ["s"]);
    assert!(rig.pusher.delivered().is_empty());
    assert!(rig.work.enqueued().is_empty());
}

#[tokio::test]
async fn a_410_within_the_grace_period_keeps_the_roster_item() {
    let rig = rig_with(
        ScriptedPusher::new(),
        PublisherConfig {
            gone_grace: Duration::from_secs(30),
            ..test_config()
        },
    );
    let five_seconds_ago = OffsetDateTime::now_utc() - time::Duration::seconds(5);
    let young =
        ConnectionRecord::from_raw("young", "acme", "alice", vec![], five_seconds_ago, 7_500)
            .unwrap();
    let old_time = OffsetDateTime::now_utc() - time::Duration::seconds(60);
    let old = ConnectionRecord::from_raw("old", "acme", "alice", vec![], old_time, 7_500).unwrap();
    rig.roster.put(&young).await.unwrap();
    rig.roster.put(&old).await.unwrap();
    rig.pusher.always_fail("young", PushError::Gone);
    rig.pusher.always_fail("old", PushError::Gone);
    let outcome = rig
        .publisher
        .handle_batch(&[message(
            "s",
            json!({"target":{"type":"users","tenant":"acme","users":["alice"]},"data":1}),
        )])
        .await;
    assert_eq!(outcome.reports[0].gone, 2);
    let left: Vec<String> = rig
        .roster
        .list_all()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.connection_id.to_string())
        .collect();
    assert_eq!(
        left,
        ["young"],
        "only the connection past the grace is removed"
    );
}

#[tokio::test]
async fn a_413_is_dead_lettered_at_once_without_retries() {
    let rig = rig();
    rig.populate().await;
    rig.pusher
        .always_fail("acme-bob-1", PushError::PayloadTooLarge);
    let outcome = rig
        .publisher
        .handle_batch(&[message(
            "s",
            json!({"target":{"type":"tenant","tenant":"acme"},"data":1}),
        )])
        .await;
    let report = &outcome.reports[0];
    assert!(outcome.failed_message_ids.is_empty());
    assert_eq!(report.outcome, Outcome::DeadLettered);
    assert_eq!((report.delivered, report.failed, report.retries), (2, 1, 0));
    assert_eq!(rig.pusher.attempts(), 3, "no retry of the 413");
    assert!(rig.work.enqueued().is_empty(), "no retry item");
    let letters = rig.dlq.letters();
    assert_eq!(letters.len(), 1);
    assert!(letters[0].body.contains("acme-bob-1"));
    assert!(!letters[0].body.contains("acme-alice-1"));
}

#[tokio::test]
async fn the_rate_limit_spaces_posts_across_messages() {
    let rig = rig_with(
        ScriptedPusher::new(),
        PublisherConfig {
            fanout_rate: 40,
            ..test_config()
        },
    );
    connect_many(&rig, "acme", 30).await;
    connect_many(&rig, "globex", 30).await;
    let started = std::time::Instant::now();
    rig.publisher
        .handle_batch(&[
            message(
                "a",
                json!({"target":{"type":"tenant","tenant":"acme"},"data":1}),
            ),
            message(
                "b",
                json!({"target":{"type":"tenant","tenant":"globex"},"data":1}),
            ),
        ])
        .await;
    // 60 posts at 40/s with a burst of 4 (a tenth of a second): at least 1.4 s.
    assert_eq!(rig.pusher.delivered().len(), 60);
    assert!(
        started.elapsed() >= Duration::from_millis(1_300),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn malformed_work_items_are_dead_lettered() {
    let rig = rig();
    let outcome = rig
        .publisher
        .handle_batch(&[message("w", json!({"shard":{"id":"x","attempt":1}}))])
        .await;
    assert!(outcome.failed_message_ids.is_empty());
    assert_eq!(outcome.reports[0].outcome, Outcome::DeadLettered);
    assert!(rig.dlq.letters()[0].error.contains("invalid work item"));
}

mod sharding_property {
    use proptest::prelude::*;

    use crate::roster::{MemoryRosterStore, RosterStore};
    use crate::testkit::{check_sharded_fanout, spread_records};

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
        /// Every matching connection exactly once, nobody else, one page per item.
        #[test]
        fn every_work_item_to_completion_delivers_each_connection_once(
            size in 0usize..5_000,
            tenants in 1usize..6,
            shard_size in 1usize..1_500,
            segments in 1u32..9,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let roster = std::sync::Arc::new(MemoryRosterStore::new());
                let records = spread_records(size, tenants);
                for record in &records {
                    roster.put(record).await.unwrap();
                }
                check_sharded_fanout(roster, &records, shard_size, segments).await;
            });
        }
    }
}

mod history {
    use super::*;
    use crate::history::{Cursor, HistoryConfig, HistoryStore, MemoryHistoryStore, Stream};

    fn with_history(rig: Rig) -> (Rig, Arc<MemoryHistoryStore>) {
        let store = Arc::new(MemoryHistoryStore::new(100));
        let publisher = rig
            .publisher
            .clone()
            .with_history(store.clone(), &HistoryConfig::default());
        (Rig { publisher, ..rig }, store)
    }

    async fn stream_ids(store: &MemoryHistoryStore, stream: Stream) -> Vec<String> {
        store
            .read_after(&stream, &Cursor::floor_at(0), 100)
            .await
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.id)
            .collect()
    }

    #[tokio::test]
    async fn messages_are_recorded_once_per_stream_and_frames_carry_the_cursor() {
        let (rig, store) = with_history(rig());
        rig.populate().await;
        rig.run(vec![
            message("1", json!({"id":"to-users","target":{"type":"users","tenant":"acme","users":["alice","bob","alice"]},"data":1})),
            message("2", json!({"id":"to-acme","target":{"type":"tenant","tenant":"acme"},"data":2})),
            message("3", json!({"id":"to-all","target":{"type":"broadcast"},"data":3})),
            message("4", json!({"id":"to-conn","target":{"type":"connections","tenant":"acme","connectionIds":["acme-bob-1"]},"data":4})),
        ])
        .await;
        let acme = TenantId::parse("acme").unwrap();
        let user = |u: &str| Stream::User(acme.clone(), UserId::parse(u).unwrap());
        assert_eq!(stream_ids(&store, user("alice")).await, ["to-users"]);
        assert_eq!(stream_ids(&store, user("bob")).await, ["to-users"]);
        assert_eq!(
            stream_ids(&store, Stream::Tenant(acme.clone())).await,
            ["to-acme"]
        );
        assert_eq!(stream_ids(&store, Stream::Global).await, ["to-all"]);
        for (connection, frame) in rig.pusher.delivered() {
            let frame: Value = serde_json::from_str(&frame).unwrap();
            let keys: Vec<&String> = frame.as_object().unwrap().keys().collect();
            if frame["id"] == "to-conn" {
                assert_eq!(keys, ["data", "id"], "connections targets are not recorded");
            } else {
                let cursor = frame["cursor"].as_str().unwrap();
                assert!(Cursor::parse(cursor).is_ok(), "{connection}: {frame}");
            }
        }
        // Every recipient of one message got the same cursor (pages included).
        let all: std::collections::BTreeSet<String> = rig
            .pusher
            .delivered()
            .iter()
            .filter(|(_, f)| f.contains("\"to-all\""))
            .map(|(_, f)| f.clone())
            .collect();
        assert_eq!(all.len(), 1);
    }

    #[tokio::test]
    async fn nothing_is_recorded_with_history_off() {
        let store = Arc::new(MemoryHistoryStore::new(100));
        let rig = rig();
        let publisher = rig.publisher.clone().with_history(
            store.clone(),
            &HistoryConfig {
                ttl: Duration::ZERO,
                ..HistoryConfig::default()
            },
        );
        let rig = Rig { publisher, ..rig };
        rig.populate().await;
        rig.run(vec![message(
            "1",
            json!({"target":{"type":"broadcast"},"data":1}),
        )])
        .await;
        assert!(stream_ids(&store, Stream::Global).await.is_empty());
        assert!(!rig.pusher.delivered()[0].1.contains("cursor"));
    }

    /// A tenant's `historyTtlSecs` sets its entries' `expiresAt` (what both stores keep
    /// them by); a broadcast keeps `HISTORY_TTL_SECS`.
    #[tokio::test]
    async fn a_tenants_history_ttl_sets_its_entries_expiry() {
        let (rig, store) = with_history(rig());
        let tenants = crate::tenants::Tenants::from_table(
            crate::tenants::SettingsTable::parse(r#"{"tenants":{"acme":{"historyTtlSecs":60}}}"#)
                .unwrap(),
        );
        let publisher = rig.publisher.clone().with_history_ttls(tenants);
        let rig = Rig { publisher, ..rig };
        rig.populate().await;
        rig.run(vec![
            message(
                "1",
                json!({"id":"to-acme","target":{"type":"tenant","tenant":"acme"},"data":1}),
            ),
            message(
                "2",
                json!({"id":"to-all","target":{"type":"broadcast"},"data":2}),
            ),
        ])
        .await;
        let kept = |stream: Stream| {
            let store = store.clone();
            async move {
                let read = store
                    .read_after(&stream, &Cursor::floor_at(0), 10)
                    .await
                    .unwrap();
                read.entries[0].expires_at - time::OffsetDateTime::now_utc().unix_timestamp()
            }
        };
        let acme = kept(Stream::Tenant(TenantId::parse("acme").unwrap())).await;
        assert!((58..=60).contains(&acme), "{acme}");
        let all = kept(Stream::Global).await;
        assert!((298..=300).contains(&all), "{all}");
    }

    struct FailingHistory;

    #[async_trait::async_trait]
    impl HistoryStore for FailingHistory {
        async fn append(
            &self,
            _: &crate::history::HistoryEntry,
            _: &[Stream],
        ) -> Result<(), crate::history::HistoryError> {
            Err(crate::history::HistoryError::Unavailable("down".into()))
        }
        async fn read_after(
            &self,
            _: &Stream,
            _: &str,
            _: usize,
        ) -> Result<crate::history::StreamRead, crate::history::HistoryError> {
            Err(crate::history::HistoryError::Unavailable("down".into()))
        }
    }

    #[tokio::test]
    async fn a_message_that_cannot_be_recorded_is_redelivered_before_any_post() {
        let rig = rig();
        let publisher = rig
            .publisher
            .clone()
            .with_history(Arc::new(FailingHistory), &HistoryConfig::default());
        let rig = Rig { publisher, ..rig };
        rig.populate().await;
        let outcome = rig
            .publisher
            .handle_batch(&[message(
                "m",
                json!({"target":{"type":"tenant","tenant":"acme"},"data":1}),
            )])
            .await;
        assert_eq!(outcome.failed_message_ids, ["m"]);
        assert!(rig.pusher.delivered().is_empty());
    }

    #[tokio::test]
    async fn the_frame_limit_counts_the_cursor() {
        let (rig, store) = with_history(rig());
        rig.populate().await;
        // Fits without a cursor, not with one.
        let overhead = r#"{"id":"m","data":""}"#.len();
        let data = "x".repeat(MAX_FRAME_BYTES - overhead);
        let outcome = rig
            .publisher
            .handle_batch(&[message(
                "m",
                json!({"id":"m","target":{"type":"tenant","tenant":"acme"},"data":data}),
            )])
            .await;
        assert_eq!(outcome.reports[0].outcome, Outcome::DeadLettered);
        assert!(
            stream_ids(&store, Stream::Tenant(TenantId::parse("acme").unwrap()))
                .await
                .is_empty()
        );
    }
}

/// Connects `connection` with a token that expires `exp_in_secs` from now (negative: in
/// the past).
async fn connect_with_token(rig: &Rig, user: &str, connection: &str, exp_in_secs: i64) {
    let now = OffsetDateTime::now_utc();
    let record = ConnectionRecord::from_raw(connection, "acme", user, vec![], now, 7_500)
        .unwrap()
        .with_token_expiry(Some(now.unix_timestamp() + exp_in_secs));
    rig.roster.put(&record).await.unwrap();
}

#[tokio::test]
async fn connections_with_expired_tokens_are_skipped_closed_and_removed() {
    for target in [
        json!({"type":"users","tenant":"acme","users":["alice","bob","carol","dave"]}),
        json!({"type":"tenant","tenant":"acme"}),
        json!({"type":"connections","tenant":"acme","connectionIds":["alice-1","bob-1","carol-1","dave-1"]}),
    ] {
        let rig = rig();
        connect_with_token(&rig, "alice", "alice-1", -120).await;
        connect_with_token(&rig, "bob", "bob-1", 3_600).await;
        // Expired 10 s ago: within the 30 s leeway, still served.
        connect_with_token(&rig, "carol", "carol-1", -10).await;
        // An older writer's record without `tokenExpiresAt` stays valid.
        rig.connect("acme", "dave", "dave-1").await;
        let reports = rig
            .run(vec![message("m-1", json!({"target": target, "data": 1}))])
            .await;
        let report = &reports[0];
        assert_eq!(
            (report.matched, report.delivered, report.expired_tokens),
            (4, 3, 1),
            "{target}"
        );
        assert_eq!(report.outcome, Outcome::Delivered);
        assert_eq!(rig.pusher.delivered_to(), ["bob-1", "carol-1", "dave-1"]);
        assert_eq!(rig.pusher.closed(), ["alice-1"]);
        let left = rig
            .roster
            .list_tenant(&TenantId::parse("acme").unwrap())
            .await
            .unwrap();
        assert!(left.iter().all(|r| r.connection_id.as_str() != "alice-1"));
        assert_eq!(left.len(), 3);
    }
}

#[tokio::test]
async fn a_retry_item_skips_a_token_that_expired_since() {
    let rig = rig();
    let now = OffsetDateTime::now_utc();
    let item = WorkItem {
        id: "m-1".into(),
        target_type: TargetKind::Users,
        tenant: Some(TenantId::parse("acme").unwrap()),
        frame: r#"{"id":"m-1","data":1}"#.into(),
        expires_at: None,
        attempt: 2,
        hops: 1,
        work: Work::Connections {
            connections: vec![Recipient {
                tenant: TenantId::parse("acme").unwrap(),
                connection_id: switchboard_model::ConnectionId::parse("alice-1").unwrap(),
                connected_at: now,
                token_expires_at: Some(now.unix_timestamp() - 3_600),
            }],
        },
    };
    let body = item.to_body();
    assert!(body.contains("tokenExpiresAt"), "{body}");
    let reports = rig
        .run(vec![InboundMessage {
            message_id: "w-1".into(),
            body,
            receive_count: 1,
        }])
        .await;
    assert_eq!((reports[0].delivered, reports[0].expired_tokens), (0, 1));
    assert_eq!(rig.pusher.closed(), ["alice-1"]);
}

#[tokio::test]
async fn the_leeway_comes_from_the_config() {
    let rig = rig_with(
        ScriptedPusher::new(),
        PublisherConfig {
            token_leeway_secs: 0,
            ..test_config()
        },
    );
    connect_with_token(&rig, "carol", "carol-1", -10).await;
    let reports = rig
        .run(vec![message(
            "m-1",
            json!({"target": {"type":"tenant","tenant":"acme"}, "data": 1}),
        )])
        .await;
    assert_eq!((reports[0].delivered, reports[0].expired_tokens), (0, 1));
}
