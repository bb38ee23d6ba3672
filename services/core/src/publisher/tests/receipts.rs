//! The publisher's receipt bookkeeping, on the memory stores and a scripted poster.

use async_trait::async_trait;

use super::*;
use crate::receipts::{Created, Progress, ReceiptError, ReceiptStatus, Seed};
use crate::testkit::spread_records;

fn rig(config: PublisherConfig) -> Rig {
    rig_with(ScriptedPoster::new(), config).with_receipts(None)
}

/// Fewer, faster retries than [`test_config`].
pub(super) fn config() -> PublisherConfig {
    PublisherConfig {
        retry: RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        },
        ..test_config()
    }
}

pub(super) fn acme(id: &str) -> ReceiptKey {
    ReceiptKey::new(Some(TenantId::parse("acme").unwrap()), id)
}

fn counts(r: &Receipt) -> (i64, i64, i64, i64) {
    (r.matched, r.delivered, r.gone, r.failed)
}

#[tokio::test]
async fn a_message_with_a_gone_connection_is_delivered_with_its_counts() {
    let rig = rig(config());
    rig.connect("acme", "alice", "c-alice-1").await;
    rig.connect("acme", "alice", "c-alice-2").await;
    rig.connect("acme", "bob", "c-bob-1").await;
    rig.connect("acme", "carol", "c-carol-1").await;
    rig.poster.always_fail("c-carol-1", PostError::Gone);
    // Sent straight to the queue: the publisher creates the receipt.
    let body = json!({"id":"m-1","target":{"type":"users","tenant":"acme","users":["alice","bob","carol"]},"data":1});
    rig.publish("q-1", body).await;
    let receipt = rig.receipt(&acme("m-1")).await;
    assert_eq!(receipt.status(), ReceiptStatus::Delivered);
    assert_eq!(counts(&receipt), (4, 3, 1, 0));
    assert_eq!(
        receipt.to_json()["target"]["users"],
        json!(["alice", "bob", "carol"])
    );
}

#[tokio::test]
async fn a_receipt_created_by_the_publish_api_is_updated_in_place() {
    let rig = rig(config());
    rig.connect("acme", "alice", "c-alice-1").await;
    let target = switchboard_model::Target::Users {
        tenant: TenantId::parse("acme").unwrap(),
        users: vec![switchboard_model::UserId::parse("alice").unwrap()],
    };
    let accepted = OffsetDateTime::now_utc() - time::Duration::seconds(5);
    let queued = Receipt::queued(acme("m-2"), &target, accepted, Duration::from_secs(60));
    assert_eq!(rig.receipts.create(&queued).await.unwrap(), Created::New);
    let body =
        json!({"id":"m-2","target":{"type":"users","tenant":"acme","users":["alice"]},"data":1});
    rig.publish("q-2", body).await;
    let receipt = rig.receipt(&acme("m-2")).await;
    assert_eq!(receipt.status(), ReceiptStatus::Delivered);
    assert_eq!(counts(&receipt), (1, 1, 0, 0));
    assert_eq!(
        receipt.accepted_at.unix_timestamp(),
        accepted.unix_timestamp()
    );
    assert!(receipt.updated_at > receipt.accepted_at);
}

#[tokio::test]
async fn persistent_failures_are_partial_then_dead() {
    let rig = rig(config());
    rig.connect("acme", "alice", "c-ok").await;
    rig.connect("acme", "alice", "c-broken").await;
    rig.poster
        .always_fail("c-broken", PostError::Transient("503".into()));
    let body =
        json!({"id":"m-3","target":{"type":"users","tenant":"acme","users":["alice"]},"data":1});
    rig.publish("q-3", body).await;
    let first = rig.receipt(&acme("m-3")).await;
    assert_eq!(first.status(), ReceiptStatus::Partial, "{first:?}");
    assert_eq!(counts(&first), (2, 1, 0, 1));
    assert_eq!(first.pending, 1, "a retry item is outstanding");
    // The retry items, until the last attempt dead-letters the broken connection.
    let mut round = 0;
    loop {
        let items: Vec<InboundMessage> = rig
            .work
            .drain()
            .into_iter()
            .map(|(_, body)| InboundMessage {
                message_id: format!("retry-{round}"),
                body,
                receive_count: 1,
            })
            .collect();
        if items.is_empty() {
            break;
        }
        rig.publisher.handle_batch(&items).await;
        let now = rig.receipt(&acme("m-3")).await;
        if now.status() != ReceiptStatus::Dead {
            assert_eq!(now.status(), ReceiptStatus::Partial);
        }
        round += 1;
        assert!(round < 20, "retries never end");
    }
    assert_eq!(rig.dlq.letters().len(), 1);
    let last = rig.receipt(&acme("m-3")).await;
    assert_eq!(last.status(), ReceiptStatus::Dead);
    assert_eq!(counts(&last), (2, 1, 0, 1));
    assert_eq!(last.pending, 0);
}

#[tokio::test]
async fn a_retry_that_gets_through_is_delivered() {
    let rig = rig(config());
    rig.connect("acme", "alice", "c-flaky").await;
    let flaky = Err(PostError::Transient("503".into()));
    rig.poster
        .script("c-flaky", vec![flaky.clone(), flaky, Ok(())]);
    let body =
        json!({"id":"m-4","target":{"type":"users","tenant":"acme","users":["alice"]},"data":1});
    rig.publish("q-4", body).await;
    assert_eq!(
        rig.receipt(&acme("m-4")).await.status(),
        ReceiptStatus::Partial
    );
    run_to_completion(&rig.publisher, &rig.work, rig_items(&rig), 100).await;
    let receipt = rig.receipt(&acme("m-4")).await;
    assert_eq!(receipt.status(), ReceiptStatus::Delivered, "{receipt:?}");
    assert_eq!(counts(&receipt), (1, 1, 0, 0));
}

pub(super) fn rig_items(rig: &Rig) -> Vec<InboundMessage> {
    rig.work
        .drain()
        .into_iter()
        .enumerate()
        .map(|(n, (_, body))| InboundMessage {
            message_id: format!("item-{n}"),
            body,
            receive_count: 1,
        })
        .collect()
}

#[tokio::test]
async fn an_expired_message_is_expired() {
    let rig = rig(config());
    rig.connect("acme", "alice", "c-alice-1").await;
    let body = json!({"id":"m-5","target":{"type":"tenant","tenant":"acme"},"data":1,"expiresAt":"2020-01-01T00:00:00Z"});
    rig.publish("q-5", body).await;
    let receipt = rig.receipt(&acme("m-5")).await;
    assert_eq!(receipt.status(), ReceiptStatus::Expired);
    assert!(rig.poster.delivered().is_empty());
}

#[tokio::test]
async fn a_paged_tenant_message_and_a_broadcast_count_every_page() {
    let rig = rig(PublisherConfig {
        page_size: 100,
        scan_segments: 4,
        ..config()
    });
    for record in spread_records(2_500, 1) {
        rig.roster.put(&record).await.unwrap();
    }
    let tenant = json!({"id":"big","target":{"type":"tenant","tenant":"tenant-0"},"data":1});
    let broadcast = json!({"id":"all","target":{"type":"broadcast"},"data":1});
    rig.publisher
        .handle_batch(&[message("q-6", tenant), message("q-7", broadcast)])
        .await;
    let key = ReceiptKey::new(Some(TenantId::parse("tenant-0").unwrap()), "big");
    let started = rig.receipt(&key).await;
    assert_eq!(started.status(), ReceiptStatus::Delivering);
    assert_eq!(started.matched, 100, "one page read so far");
    run_to_completion(&rig.publisher, &rig.work, rig_items(&rig), 1_000).await;
    let done = rig.receipt(&key).await;
    assert_eq!(done.status(), ReceiptStatus::Delivered, "{done:?}");
    assert_eq!(counts(&done), (2_500, 2_500, 0, 0));
    assert_eq!(done.pending, 0);
    let all = rig.receipt(&ReceiptKey::new(None, "all")).await;
    assert_eq!(all.status(), ReceiptStatus::Delivered, "{all:?}");
    assert_eq!(counts(&all), (2_500, 2_500, 0, 0));
    assert_eq!(rig.poster.delivered().len(), 5_000);
}

/// A receipt store that always fails.
struct Broken;

#[async_trait]
impl ReceiptStore for Broken {
    async fn create(&self, _: &Receipt) -> Result<Created, ReceiptError> {
        Err(ReceiptError::Unavailable("down".into()))
    }
    async fn get(&self, _: &ReceiptKey) -> Result<Option<Receipt>, ReceiptError> {
        Err(ReceiptError::Unavailable("down".into()))
    }
    async fn record(
        &self,
        _: &ReceiptKey,
        _: &Seed,
        _: &Progress,
    ) -> Result<Receipt, ReceiptError> {
        Err(ReceiptError::Unavailable("down".into()))
    }
    async fn delete_if_queued(&self, _: &ReceiptKey) -> Result<bool, ReceiptError> {
        Err(ReceiptError::Unavailable("down".into()))
    }
}

#[tokio::test]
async fn a_failing_receipt_store_never_changes_delivery() {
    let rig = rig_with(ScriptedPoster::new(), paged(2)).with_receipts(Some(Arc::new(Broken)));
    for n in 0..5 {
        rig.connect("acme", "alice", &format!("c-{n}")).await;
    }
    let body = json!({"id":"m-8","target":{"type":"tenant","tenant":"acme"},"data":1});
    let reports =
        run_to_completion(&rig.publisher, &rig.work, vec![message("q-8", body)], 100).await;
    assert_eq!(rig.poster.delivered().len(), 5, "each connection once");
    assert!(reports.iter().all(|r| r.outcome == Outcome::Delivered));
    assert!(reports.iter().all(|r| r.receipt_errors > 0));
}
