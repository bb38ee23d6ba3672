//! The publisher's usage counts (`docs/design.md`, "Usage"): the receipt's counts, once
//! per unit of work, whatever the queue delivers again.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use switchboard_model::TenantId;
use time::OffsetDateTime;

use super::tests::{connect_many, rig_with, test_config, Rig};
use super::*;
use crate::pusher::PushError;
use crate::queue::InboundMessage;
use crate::receipts::{MemoryReceiptStore, ReceiptConfig, ReceiptKey, ReceiptStore};
use crate::testkit::{run_to_completion, ScriptedPusher};
use crate::usage::{Bucket, Counts, MemoryUsageStore, Usage, UsageConfig, UsageError, UsageStore};

fn inbound(id: &str, body: String) -> InboundMessage {
    InboundMessage {
        message_id: id.to_string(),
        body,
        receive_count: 1,
    }
}

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

fn counted(rig: Rig, usage: Usage, receipts: Arc<MemoryReceiptStore>) -> Rig {
    let publisher = rig
        .publisher
        .clone()
        .with_receipts(Receipts::new(receipts, &ReceiptConfig::default()))
        .with_usage(Some(usage));
    Rig { publisher, ..rig }
}

#[tokio::test]
async fn usage_counts_what_the_receipt_counts_once_per_unit_of_work() {
    let config = UsageConfig::default();
    let store = Arc::new(MemoryUsageStore::new(1_000, 1_000, config.retention));
    let receipts = Arc::new(MemoryReceiptStore::new(1_000));
    let rig = rig_with(
        ScriptedPusher::new(),
        PublisherConfig {
            shard_size: 10,
            ..test_config()
        },
    );
    let rig = counted(rig, Usage::new(store.clone(), &config), receipts.clone());
    connect_many(&rig, "acme", 25).await;
    rig.pusher.always_fail("acme-00003", PushError::Gone);
    rig.pusher.always_fail("acme-00017", PushError::Gone);
    let message = inbound(
        "q-1",
        json!({"id":"m-1","target":{"type":"tenant","tenant":"acme"},"data":"hello"}).to_string(),
    );
    let first = rig
        .publisher
        .handle_batch(std::slice::from_ref(&message))
        .await;
    assert_eq!(first.reports[0].outcome, Outcome::Delivered);
    let continuation = rig.work.drain();
    assert_eq!(continuation.len(), 1);
    let page = continuation[0].1.clone();
    // The page twice in one batch, then again later; the message itself again.
    rig.publisher
        .handle_batch(&[inbound("w-1", page.clone()), inbound("w-1", page.clone())])
        .await;
    let again = rig
        .publisher
        .handle_batch(&[inbound("w-1", page), message])
        .await;
    assert!(again
        .reports
        .iter()
        .all(|r| r.outcome == Outcome::Duplicate));
    let rest: Vec<InboundMessage> = rig
        .work
        .drain()
        .into_iter()
        .map(|(_, body)| inbound("w-2", body))
        .collect();
    run_to_completion(&rig.publisher, &rig.work, rest, 10).await;

    let receipt = receipts
        .get(&ReceiptKey::new(Some(acme()), "m-1"))
        .await
        .unwrap()
        .unwrap();
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
    let frames = rig.pusher.delivered();
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
    let rig = counted(
        rig_with(ScriptedPusher::new(), test_config()),
        usage.clone(),
        Arc::new(MemoryReceiptStore::new(10)),
    );
    connect_many(&rig, "acme", 3).await;
    let outcome = rig
        .publisher
        .handle_batch(&[inbound(
            "q-1",
            json!({"id":"m-1","target":{"type":"tenant","tenant":"acme"},"data":1}).to_string(),
        )])
        .await;
    assert!(outcome.failed_message_ids.is_empty());
    assert_eq!(outcome.reports[0].outcome, Outcome::Delivered);
    assert_eq!(rig.pusher.delivered().len(), 3);
    assert_eq!(usage.errors(), 1, "one write per unit, counted");
}
