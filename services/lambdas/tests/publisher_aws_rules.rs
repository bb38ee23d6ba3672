#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Lambda publisher as AWS really behaves (issue 20, "Done when"): the real handler with
//! real-shaped SQS events, the real `ApiGatewayPoster` against a fake management endpoint
//! and the real `SqsQueue` against a fake SQS endpoint (the rig is in `support/`).
//!
//! - A chain far longer than Lambda's recursive loop detection allows (~16 hops) completes;
//!   one past the publisher's own hop bound is dead-lettered with its reason.
//! - A redelivered broadcast message and a page whose retry item the queue refuses re-send
//!   nothing already sent (posts counted per connection); receipts stay exact.
//! - A management endpoint that answers in 4.9 s never pushes an invocation past its
//!   deadline: the function returns with at least a second to spare, the rest continues.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{config, rig, rig_with_post_timeout, tenant_message, work_items, Rig, DLQ, QUEUE};
use switchboard_core::publisher::{PublisherConfig, Work, WorkItem, POST_ATTEMPT_TIMEOUT};
use switchboard_core::receipts::ReceiptStatus;
use tokio::time::Instant;

fn no_failures() -> Value {
    json!({"batchItemFailures": []})
}

/// The work items among the bodies the publisher was handed (published messages skipped).
fn handed_work_items(rig: &Rig) -> Vec<WorkItem> {
    rig.handed
        .iter()
        .filter_map(|body| WorkItem::from_body(body).map(Result::unwrap))
        .collect()
}

fn names(item: &WorkItem) -> Vec<String> {
    match &item.work {
        Work::Connections { connections } => connections
            .iter()
            .map(|c| c.connection_id.to_string())
            .collect(),
        _ => panic!("not connections: {item:?}"),
    }
}

async fn connect_many(rig: &Rig, tenant: &str, count: usize) {
    for i in 0..count {
        rig.connect(
            tenant,
            &format!("{tenant}-{i:03}"),
            time::Duration::minutes(5),
        )
        .await;
    }
}

/// Lambda's recursive loop detection would stop this chain after about 16 hops; infra sets
/// `RecursiveLoop: Allow` on the publisher (and only on it), and the hop count carried by
/// every work item is the guard instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_40_hop_chain_delivers_to_every_connection_exactly_once() {
    let mut rig = rig(PublisherConfig {
        page_size: 1,
        ..config()
    })
    .await;
    connect_many(&rig, "acme", 40).await;

    let response = rig.invoke(&[tenant_message("long", "acme")], None).await;
    assert_eq!(response, no_failures());
    rig.drain_queue().await;

    let posts = rig.gateway.posts();
    assert_eq!(posts.len(), 40, "{posts:?}");
    assert!(posts.values().all(|&n| n == 1), "each exactly once");
    let items = handed_work_items(&rig);
    assert_eq!(items.len(), 39, "one page a hop");
    assert_eq!(items.iter().map(|i| i.hops).max(), Some(39));
    assert_eq!(rig.invocations, 40);
    assert!(rig.sqs.take(DLQ).is_empty(), "nothing dead-lettered");
    let receipt = rig.receipt("acme", "long").await;
    assert_eq!(receipt.status(), ReceiptStatus::Delivered, "{receipt:?}");
    assert_eq!(
        (receipt.matched, receipt.delivered, receipt.pending),
        (40, 40, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_past_the_hop_bound_is_dead_lettered_with_its_reason() {
    let mut rig = rig(PublisherConfig {
        page_size: 1,
        max_connections: 3,
        ..config()
    })
    .await;
    // 2 × ⌈3 / 1⌉ + 2 × 5 + 10
    assert_eq!(rig.publisher.config().max_hops(), 26);
    connect_many(&rig, "acme", 40).await;

    let response = rig.invoke(&[tenant_message("runaway", "acme")], None).await;
    assert_eq!(response, no_failures());
    rig.drain_queue().await;

    let posts = rig.gateway.posts();
    assert_eq!(posts.len(), 27, "pages of hops 0 to 26");
    assert!(posts.values().all(|&n| n == 1));
    let dead = rig.sqs.take(DLQ);
    assert_eq!(dead.len(), 1);
    assert_eq!(work_items(&dead)[0].hops, 27);
    let reason = dead[0].error.as_deref().unwrap_or_default();
    assert!(
        reason.contains("runaway chain: hop 27 is past the bound of 26"),
        "{reason}"
    );
    let runaways: Vec<Value> = rig
        .emf_documents()
        .into_iter()
        .filter(|doc| doc["RunawayChains"] != json!(0.0))
        .collect();
    assert_eq!(runaways.len(), 1, "{runaways:?}");
    assert_eq!(runaways[0]["RunawayChains"], json!(1.0));
    assert_eq!(runaways[0]["outcome"], "dead_lettered");
    let receipt = rig.receipt("acme", "runaway").await;
    assert_eq!(receipt.status(), ReceiptStatus::Dead, "{receipt:?}");
    assert_eq!(
        (receipt.matched, receipt.delivered, receipt.pending),
        (27, 27, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_broadcast_message_sends_nothing_again() {
    let mut rig = rig(PublisherConfig {
        page_size: 5,
        scan_segments: 4,
        ..config()
    })
    .await;
    connect_many(&rig, "acme", 15).await;
    connect_many(&rig, "globex", 15).await;
    let body = json!({"id": "b-1", "target": {"type": "broadcast"}, "data": 1}).to_string();
    let event = support::event(&[body]);

    assert_eq!(rig.invoke_event(&event, None).await, no_failures());
    rig.drain_queue().await;
    let posts = rig.gateway.posts();
    assert_eq!(posts.len(), 30);
    assert!(posts.values().all(|&n| n == 1), "{posts:?}");
    let segments = handed_work_items(&rig)
        .into_iter()
        .filter(|item| item.hops == 1 && matches!(item.work, Work::Page { start: None, .. }))
        .count();
    assert_eq!(segments, 3, "segments 1 to 3 ran as chains of their own");

    // The same SQS record again: same message id, received a second time.
    let mut again = event.clone();
    again.records[0]
        .attributes
        .insert("ApproximateReceiveCount".into(), "2".into());
    assert_eq!(rig.invoke_event(&again, None).await, no_failures());
    assert!(rig.sqs.take(QUEUE).is_empty(), "no segment enqueued again");
    assert_eq!(rig.gateway.posts(), posts, "nobody posted to again");
    let last = rig.emf_documents().pop().unwrap();
    assert_eq!(last["outcome"], "duplicate");
    assert_eq!(last["Duplicates"], json!(1.0));
    let receipt = rig.receipt_of(None, "b-1").await;
    assert_eq!(receipt.status(), ReceiptStatus::Delivered, "{receipt:?}");
    assert_eq!(
        (receipt.matched, receipt.delivered, receipt.pending),
        (30, 30, 0)
    );
}

/// A tenant of ten steady connections and one whose first three posts answer 500: with
/// three attempts per post, the page leaves `flaky-1` to a delayed retry item.
async fn flaky_tenant() -> Rig {
    let rig = rig(config()).await;
    connect_many(&rig, "acme", 10).await;
    rig.connect("acme", "flaky-1", time::Duration::minutes(5))
        .await;
    *rig.gateway.flaky_failures.lock().unwrap() = 3;
    rig
}

fn everyone_else_once(rig: &Rig) {
    let posts = rig.gateway.posts();
    assert_eq!(posts.len(), 11);
    assert!(
        posts
            .iter()
            .filter(|(id, _)| id.as_str() != "flaky-1")
            .all(|(_, &n)| n == 1),
        "nobody else was ever re-sent: {posts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_item_the_queue_refuses_at_first_is_enqueued_on_the_second_try() {
    let mut rig = flaky_tenant().await;
    // Every attempt of one SDK call (its own retries of the 500 included) is refused.
    rig.sqs.refuse_delayed_calls(1);

    let response = rig.invoke(&[tenant_message("m-1", "acme")], None).await;
    assert_eq!(response, no_failures(), "the page is never redelivered");
    let (calls, attempts) = rig.sqs.refused();
    assert_eq!(calls, 1, "{attempts} attempt(s) of one call refused");
    assert_eq!(rig.emf_documents()[0]["outcome"], "deferred");
    let queued = rig.sqs.take(QUEUE);
    assert_eq!(queued.len(), 1, "the retry item, enqueued once");
    assert!(queued[0].delay_seconds >= 5, "delayed");
    let retry = &work_items(&queued)[0];
    assert_eq!((names(retry), retry.attempt), (vec!["flaky-1".into()], 2));
    assert_eq!(rig.gateway.posts()["flaky-1"], 3);

    rig.sqs.requeue(queued);
    rig.drain_queue().await;
    assert_eq!(
        rig.gateway.delivered()["flaky-1"],
        1,
        "delivered by the retry"
    );
    assert_eq!(rig.gateway.posts()["flaky-1"], 4);
    everyone_else_once(&rig);
    assert!(rig.sqs.take(DLQ).is_empty());
    let receipt = rig.receipt("acme", "m-1").await;
    assert_eq!(receipt.status(), ReceiptStatus::Delivered, "{receipt:?}");
    assert_eq!(
        (
            receipt.matched,
            receipt.delivered,
            receipt.failed,
            receipt.pending
        ),
        (11, 11, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_item_the_queue_keeps_refusing_is_dead_lettered_and_nothing_is_re_sent() {
    let mut rig = flaky_tenant().await;
    rig.sqs.refuse_delayed_calls(usize::MAX);

    let response = rig.invoke(&[tenant_message("m-2", "acme")], None).await;
    assert_eq!(response, no_failures(), "the page is never redelivered");
    assert_eq!(rig.sqs.refused().0, 2, "the first try and one more");
    assert!(rig.sqs.take(QUEUE).is_empty());
    let dead = rig.sqs.take(DLQ);
    assert_eq!(dead.len(), 1);
    let retry = &work_items(&dead)[0];
    assert_eq!((names(retry), retry.attempt), (vec!["flaky-1".into()], 2));
    let reason = dead[0].error.as_deref().unwrap_or_default();
    assert!(
        reason.contains("1 retry item(s) for 1 connection(s) not enqueued"),
        "{reason}"
    );
    assert_eq!(rig.emf_documents()[0]["outcome"], "dead_lettered");
    assert_eq!(
        rig.gateway.posts()["flaky-1"],
        3,
        "the in-process attempts only"
    );
    everyone_else_once(&rig);
    let receipt = rig.receipt("acme", "m-2").await;
    assert_eq!(receipt.status(), ReceiptStatus::Dead, "{receipt:?}");
    assert_eq!(
        (
            receipt.matched,
            receipt.delivered,
            receipt.failed,
            receipt.pending
        ),
        (11, 10, 1, 0)
    );
}

/// The real margin (`DEADLINE_MARGIN`, 10 s: a post attempt of 5 s, settling, a second to
/// spare) against posts that each take 4.9 s, eight at a time: with 20 s left the
/// publisher starts three rounds, then hands the rest to a remainder item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_management_endpoint_answering_in_4_9_s_never_pushes_past_the_deadline() {
    let mut rig = rig_with_post_timeout(
        PublisherConfig {
            page_size: 100,
            fanout_concurrency: 8,
            ..config()
        },
        // Half a second over the real attempt timeout: a 4.9 s answer on a loaded CI
        // machine must not time out and be posted twice (the margin itself is the real one).
        POST_ATTEMPT_TIMEOUT + Duration::from_millis(500),
    )
    .await;
    rig.gateway.set_latency(Duration::from_millis(4_900));
    connect_many(&rig, "acme", 40).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    let response = rig
        .invoke(&[tenant_message("slow", "acme")], Some(deadline))
        .await;
    let spare = deadline.saturating_duration_since(Instant::now());
    assert!(spare >= Duration::from_secs(1), "returned {spare:?} early");
    assert_eq!(response, no_failures());
    let posted = rig.gateway.total();
    assert!(posted > 0 && posted < 40, "{posted}");
    let remainder = rig.sqs.take(QUEUE);
    let left: usize = work_items(&remainder).iter().map(|i| names(i).len()).sum();
    assert_eq!(posted + left, 40, "the rest, exactly, continued");
    let first = &rig.emf_documents()[0];
    assert_eq!(first["outcome"], "deferred");
    assert_eq!(first["Deferred"], json!(left as f64));

    // Each invocation of the rest gets a fresh 20 s and must keep its own deadline.
    rig.sqs.requeue(remainder);
    rig.drain_queue_with(Some(Duration::from_secs(20))).await;
    let posts = rig.gateway.posts();
    assert_eq!(posts.len(), 40);
    assert!(posts.values().all(|&n| n == 1), "nobody twice: {posts:?}");
    assert_eq!(rig.gateway.delivered(), posts, "every post answered 200");
    let receipt = rig.receipt("acme", "slow").await;
    assert_eq!(receipt.status(), ReceiptStatus::Delivered, "{receipt:?}");
    assert_eq!(
        (receipt.matched, receipt.delivered, receipt.pending),
        (40, 40, 0)
    );
}
