//! The publisher's usage counts (docs/design.md: Usage): the receipt's counts, once
//! per unit of work, whatever the queue delivers again.

use async_trait::async_trait;

use super::*;
use crate::usage::{Bucket, Counts, MemoryUsageStore, Usage, UsageConfig, UsageError, UsageStore};

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

async fn total(store: &dyn UsageStore, tenant: &TenantId) -> Counts {
    let now = OffsetDateTime::now_utc();
    let hour = time::Duration::hours(1);
    let mut total = Counts::default();
    for minute in store
        .minutes(Some(tenant), now - hour, now + hour)
        .await
        .unwrap()
    {
        total.add(&minute.counts);
    }
    total
}

/// The rig with receipts (its own store) and `usage` on.
fn counted(rig: Rig, usage: Usage) -> Rig {
    let rig = rig.with_receipts(None);
    let publisher = rig.publisher.clone().with_usage(Some(usage));
    Rig { publisher, ..rig }
}

#[tokio::test]
async fn usage_counts_what_the_receipt_counts_once_per_unit_of_work() {
    let config = UsageConfig::default();
    let store = Arc::new(MemoryUsageStore::new(1_000, 1_000, config.retention));
    let rig = counted(
        rig_with(ScriptedPoster::new(), paged(10)),
        Usage::new(store.clone(), &config),
    );
    connect_many(&rig, "acme", 25).await;
    rig.poster.always_fail("acme-00003", PostError::Gone);
    rig.poster.always_fail("acme-00017", PostError::Gone);
    let published = message(
        "q-1",
        json!({"id":"m-1","target":{"type":"tenant","tenant":"acme"},"data":"hello"}).to_string(),
    );
    let first = rig
        .publisher
        .handle_batch(std::slice::from_ref(&published))
        .await;
    assert_eq!(first.reports[0].outcome, Outcome::Delivered);
    let continuation = rig.work.drain();
    assert_eq!(continuation.len(), 1);
    let page = continuation[0].1.clone();
    // The page twice in one batch, then again later; the message itself again.
    rig.publisher
        .handle_batch(&[message("w-1", page.clone()), message("w-1", page.clone())])
        .await;
    let again = rig
        .publisher
        .handle_batch(&[message("w-1", page), published])
        .await;
    assert!(again
        .reports
        .iter()
        .all(|r| r.outcome == Outcome::Duplicate));
    let rest: Vec<InboundMessage> = rig
        .work
        .drain()
        .into_iter()
        .map(|(_, body)| message("w-2", body))
        .collect();
    run_to_completion(&rig.publisher, &rig.work, rest, 10).await;

    let receipt = rig.receipt(&ReceiptKey::new(Some(acme()), "m-1")).await;
    assert_eq!(
        (receipt.matched, receipt.delivered, receipt.gone),
        (25, 23, 2)
    );
    let usage = total(store.as_ref(), &acme()).await;
    assert_eq!(
        (usage.matched, usage.delivered, usage.gone),
        (25, 23, 2),
        "usage equals the receipt"
    );
    let frames = rig.poster.delivered();
    assert_eq!(frames.len(), 23);
    let bytes: usize = frames.iter().map(|(_, frame)| frame.len()).sum();
    assert_eq!(usage.bytes_sent, bytes as u64);
}

struct Down;

#[async_trait]
impl UsageStore for Down {
    async fn add(
        &self,
        _: Option<&TenantId>,
        _: OffsetDateTime,
        _: &Counts,
    ) -> Result<(), UsageError> {
        Err(UsageError::Unavailable("down".into()))
    }
    async fn minutes(
        &self,
        _: Option<&TenantId>,
        _: OffsetDateTime,
        _: OffsetDateTime,
    ) -> Result<Vec<Bucket>, UsageError> {
        Err(UsageError::Unavailable("down".into()))
    }
    async fn add_live(&self, _: &TenantId, _: i64) -> Result<i64, UsageError> {
        Err(UsageError::Unavailable("down".into()))
    }
}

#[tokio::test]
async fn a_usage_store_failure_never_fails_delivery() {
    let usage = Usage::new(Arc::new(Down), &UsageConfig::default());
    let rig = counted(rig(), usage.clone());
    connect_many(&rig, "acme", 3).await;
    let outcome = rig
        .publish(
            "q-1",
            json!({"id":"m-1","target":{"type":"tenant","tenant":"acme"},"data":1}).to_string(),
        )
        .await;
    assert!(outcome.failed_message_ids.is_empty());
    assert_eq!(outcome.reports[0].outcome, Outcome::Delivered);
    assert_eq!(rig.poster.delivered().len(), 3);
    assert_eq!(usage.errors(), 1, "one write per unit, counted");
}
