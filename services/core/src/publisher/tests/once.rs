//! Units of work run once (the work log), chains stop at the hop bound, and the deadline
//! holds after waits for the rate limiter (docs/design.md: Fan-out at any size).

use std::sync::atomic::Ordering;

use super::*;

fn rig(config: PublisherConfig) -> Rig {
    rig_with(ScriptedPoster::new(), config)
}

fn tenant_message() -> InboundMessage {
    message(
        "q-1",
        json!({"id":"m-1","target":{"type":"tenant","tenant":"acme"},"data":1}).to_string(),
    )
}

#[tokio::test]
async fn a_redelivered_broadcast_starts_nothing_again() {
    let rig = rig(PublisherConfig {
        scan_segments: 4,
        ..paged(5)
    });
    connect_many(&rig, "acme", 30).await;
    let broadcast = message(
        "q-b",
        json!({"id":"b-1","target":{"type":"broadcast"},"data":1}).to_string(),
    );
    run_to_completion(&rig.publisher, &rig.work, vec![broadcast.clone()], 100).await;
    let posts = posts_per_connection(&rig);
    assert_eq!(posts.len(), 30);
    assert!(posts.values().all(|&n| n == 1), "{posts:?}");

    // The same SQS message again (a duplicate, or a batch returned whole).
    let reports = run_to_completion(&rig.publisher, &rig.work, vec![broadcast], 100).await;
    assert_eq!(reports.len(), 1, "no segment was enqueued again");
    assert_eq!(reports[0].outcome, Outcome::Duplicate);
    assert_eq!(posts_per_connection(&rig), posts);
}

#[tokio::test]
async fn copies_of_a_page_run_once() {
    let rig = rig(paged(10));
    connect_many(&rig, "acme", 25).await;
    let first = rig.publisher.handle_batch(&[tenant_message()]).await;
    assert_eq!(first.reports[0].outcome, Outcome::Delivered);
    let continuation = rig.work.drain();
    assert_eq!(continuation.len(), 1);
    let body = continuation[0].1.clone();
    // Two copies in one batch (one claims, one finds the claim), then a third later.
    let copies = rig
        .publisher
        .handle_batch(&[message("w-1", body.clone()), message("w-1", body.clone())])
        .await;
    let mut outcomes: Vec<_> = copies.reports.iter().map(|r| r.outcome).collect();
    outcomes.sort_by_key(|o| o.as_str());
    assert_eq!(outcomes, [Outcome::Delivered, Outcome::Duplicate]);
    let again = rig.publish("w-1", body).await;
    assert_eq!(again.reports[0].outcome, Outcome::Duplicate);
    // The one continuation the page enqueued once.
    assert_eq!(rig.work.drain().len(), 1);
    assert_eq!(rig.poster.delivered().len(), 20);
}

#[tokio::test]
async fn a_unit_redelivered_for_a_retry_runs_again() {
    let rig = rig(PublisherConfig {
        deadline_margin: Duration::from_secs(5),
        ..paged(10)
    });
    connect_many(&rig, "acme", 3).await;
    let users = message(
        "q-2",
        json!({"id":"m-2","target":{"type":"users","tenant":"acme","users":["u1"]},"data":2})
            .to_string(),
    );
    // Out of time before any post: redelivered, its claim given back.
    let soon = tokio::time::Instant::now() + Duration::from_secs(1);
    let retry = rig
        .publisher
        .handle_batch_until(std::slice::from_ref(&users), Some(soon))
        .await;
    assert_eq!(retry.reports[0].outcome, Outcome::Retry);
    assert!(rig.poster.delivered().is_empty());
    let again = rig.publisher.handle_batch(&[users]).await;
    assert_eq!(again.reports[0].outcome, Outcome::Delivered);
    assert_eq!(again.reports[0].delivered, 1);
}

#[tokio::test]
async fn an_item_past_the_hop_bound_is_dead_lettered_as_a_runaway() {
    let rig = rig(PublisherConfig {
        max_connections: 3,
        ..paged(1)
    });
    let bound = rig.publisher.config().max_hops();
    assert_eq!(bound, 26);
    connect_many(&rig, "acme", 40).await;
    let reports = run_to_completion(&rig.publisher, &rig.work, vec![tenant_message()], 100).await;
    // Hops 0..=26 each delivered one page; hop 27 was stopped.
    assert_eq!(rig.poster.delivered().len(), 27);
    let runaway: Vec<_> = reports.iter().filter(|r| r.runaway).collect();
    assert_eq!(runaway.len(), 1);
    assert_eq!(runaway[0].hops, 27);
    assert_eq!(runaway[0].outcome, Outcome::DeadLettered);
    let letters = rig.dlq.letters();
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0]
            .error
            .contains("runaway chain: hop 27 is past the bound of 26"),
        "{}",
        letters[0].error
    );
}

#[tokio::test]
async fn a_long_chain_within_the_bound_completes() {
    let rig = rig(paged(1));
    connect_many(&rig, "acme", 40).await;
    let reports = run_to_completion(&rig.publisher, &rig.work, vec![tenant_message()], 100).await;
    assert_eq!(reports.len(), 40);
    assert_eq!(reports.iter().map(|r| r.hops).max(), Some(39));
    let posts = posts_per_connection(&rig);
    assert_eq!(posts.len(), 40);
    assert!(posts.values().all(|&n| n == 1));
    assert!(rig.dlq.letters().is_empty());
}

#[tokio::test]
async fn no_post_starts_after_a_limiter_wait_that_reached_the_margin() {
    let rig = rig(PublisherConfig {
        fanout_rate: 10,
        deadline_margin: Duration::from_millis(100),
        ..paged(100)
    });
    connect_many(&rig, "acme", 20).await;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(350);
    let outcome = rig
        .publisher
        .handle_batch_until(&[tenant_message()], Some(deadline))
        .await;
    assert!(tokio::time::Instant::now() < deadline, "returned in time");
    let posted = rig.poster.delivered().len();
    // 10 per second with a burst of 1: one at once, then one every 100 ms; the posts whose
    // wait ended inside the margin did not start.
    assert!((1..=4).contains(&posted), "{posted} posted");
    let report = &outcome.reports[0];
    assert_eq!(report.outcome, Outcome::Deferred);
    assert_eq!(report.deferred, 20 - posted);
}

#[tokio::test]
async fn a_retry_item_the_queue_refuses_is_dead_lettered_and_the_page_succeeds() {
    let rig = rig(paged(10));
    connect_many(&rig, "acme", 3).await;
    rig.poster.always_fail(
        "acme-00001",
        crate::poster::PostError::Transient("500".into()),
    );
    rig.work.fail.store(true, Ordering::SeqCst);
    let outcome = rig.publisher.handle_batch(&[tenant_message()]).await;
    let report = &outcome.reports[0];
    assert!(outcome.failed_message_ids.is_empty(), "{report:?}");
    assert_eq!(report.outcome, Outcome::DeadLettered);
    assert_eq!(report.delivered, 2);
    let letters = rig.dlq.letters();
    assert_eq!(letters.len(), 1);
    assert!(letters[0]
        .error
        .contains("retry item(s) for 1 connection(s) not enqueued"));
    let Some(Ok(item)) = WorkItem::from_body(&letters[0].body) else {
        panic!("a work item")
    };
    assert_eq!(item.attempt, 2);
    assert_eq!(item.tenant, Some(TenantId::parse("acme").unwrap()));
}
