//! One page per batch when the rate is limited (`handback.rs`; docs/design.md: Fan-out at
//! any size): the other page items of a batch go back to the queue unrun, so an idle
//! publisher takes them instead of this one posting them at its own rate.

use std::sync::atomic::Ordering;

use super::*;

/// Pages of 5, with a rate limit high enough not to slow the test.
fn limited() -> PublisherConfig {
    PublisherConfig {
        fanout_rate: 100_000,
        ..paged(5)
    }
}

/// The first page item of `tenant`'s chain for message `m-<tenant>`.
fn first_page(tenant: &str) -> InboundMessage {
    let tenant_id = TenantId::parse(tenant).unwrap();
    let item = WorkItem {
        id: format!("m-{tenant}"),
        target_type: switchboard_model::TargetKind::Tenant.into(),
        tenant: Some(tenant_id.clone()),
        frame: format!(r#"{{"id":"m-{tenant}","data":1}}"#),
        expires_at: None,
        attempt: 1,
        hops: 1,
        push: None,
        work: Work::Page {
            scope: PageScope::Tenant(tenant_id),
            start: None,
        },
    };
    message(&format!("q-{tenant}"), item.to_body())
}

/// Three tenants of `each` connections and a batch of their three first pages.
async fn three_chains(rig: &Rig, each: usize) -> Vec<InboundMessage> {
    for tenant in ["acme", "globex", "initech"] {
        connect_many(rig, tenant, each).await;
    }
    ["acme", "globex", "initech"]
        .into_iter()
        .map(first_page)
        .collect()
}

#[tokio::test]
async fn a_rate_limited_publisher_runs_one_page_of_a_batch_and_hands_back_the_others() {
    let rig = rig_with(ScriptedPoster::new(), limited());
    let batch = three_chains(&rig, 12).await;
    let outcome = rig.publisher.handle_batch(&batch).await;

    // Only the first page ran here: its 5 posts, its report, its continuation.
    assert_eq!(outcome.reports.len(), 1, "{:?}", outcome.reports);
    assert_eq!(outcome.reports[0].message_id, "q-acme");
    assert!(
        outcome.failed_message_ids.is_empty(),
        "handed back, not redelivered"
    );
    assert_eq!(rig.poster.delivered().len(), 5);
    let enqueued: Vec<String> = rig.work.enqueued().into_iter().map(|(_, b)| b).collect();
    assert_eq!(enqueued.len(), 3, "{enqueued:?}");
    // The others went back exactly as they came (same unit in the work log, same hop).
    assert!(enqueued.contains(&batch[1].body));
    assert!(enqueued.contains(&batch[2].body));

    // Whoever takes them delivers every connection once.
    let handed = rig
        .work
        .drain()
        .into_iter()
        .map(|(_, body)| message("again", body))
        .collect();
    rig.run(handed).await;
    let posts = posts_per_connection(&rig);
    assert_eq!(posts.len(), 36);
    assert!(posts.values().all(|&n| n == 1), "{posts:?}");
}

#[tokio::test]
async fn a_handed_back_page_another_publisher_takes_runs_there() {
    // Two publishers of one queue, as two Lambda invocations: the second one posts the
    // pages the first handed back.
    let first = rig_with(ScriptedPoster::new(), limited());
    let batch = three_chains(&first, 5).await;
    let second_poster = Arc::new(ScriptedPoster::new());
    let second = Publisher::new(
        PublisherPorts {
            roster: first.roster.clone(),
            poster: second_poster.clone(),
            dead_letters: first.dlq.clone(),
            work_queue: first.work.clone(),
        },
        limited(),
    );
    first.publisher.handle_batch(&batch).await;
    let handed: Vec<InboundMessage> = first
        .work
        .drain()
        .into_iter()
        .map(|(_, body)| message("again", body))
        .collect();
    assert_eq!(handed.len(), 2, "two pages handed back, no continuation");
    // The second publisher takes one batch of both: it runs one and hands the other back.
    let outcome = second.handle_batch(&handed).await;
    assert_eq!(outcome.reports.len(), 1);
    assert_eq!(first.poster.delivered().len(), 5);
    assert_eq!(second_poster.delivered().len(), 5);
    assert_eq!(first.work.enqueued().len(), 1);
}

#[tokio::test]
async fn without_a_rate_limit_a_batch_runs_all_its_pages() {
    let rig = rig_with(ScriptedPoster::new(), paged(5));
    let batch = three_chains(&rig, 12).await;
    let outcome = rig.publisher.handle_batch(&batch).await;
    assert_eq!(outcome.reports.len(), 3);
    assert_eq!(rig.poster.delivered().len(), 15);
    assert_eq!(rig.work.enqueued().len(), 3, "three continuations");
}

#[tokio::test]
async fn a_page_the_queue_will_not_take_back_runs_here() {
    let rig = rig_with(ScriptedPoster::new(), limited());
    // Pages of their whole tenant: nothing to continue, so a failing queue is only seen by
    // the hand-back.
    let batch = three_chains(&rig, 5).await;
    rig.work.fail.store(true, Ordering::SeqCst);
    let outcome = rig.publisher.handle_batch(&batch).await;
    assert_eq!(outcome.reports.len(), 3);
    assert!(outcome
        .reports
        .iter()
        .all(|r| r.outcome == Outcome::Delivered));
    assert_eq!(posts_per_connection(&rig).len(), 15);
}

#[tokio::test]
async fn messages_and_retry_items_beside_a_page_still_run_in_the_batch() {
    let rig = rig_with(ScriptedPoster::new(), limited());
    // Pages of their whole tenant (4 + 1 connections): no continuation.
    let mut batch = three_chains(&rig, 4).await;
    rig.connect("acme", "alice", "acme-alice-1").await;
    batch.push(message(
        "q-users",
        json!({"id":"u-1","target":{"type":"users","tenant":"acme","users":["alice"]},"data":1}),
    ));
    let Some(Ok(page)) = WorkItem::from_body(&batch[0].body) else {
        panic!("not a work item")
    };
    let record = crate::testkit::record("acme", "alice", "acme-alice-1");
    let retry = page.next_hop(
        Work::Connections {
            connections: vec![Recipient::from(record)],
        },
        2,
    );
    batch.push(message("q-retry", retry.to_body()));
    let outcome = rig.publisher.handle_batch(&batch).await;
    let ran: Vec<&str> = outcome
        .reports
        .iter()
        .map(|r| r.message_id.as_str())
        .collect();
    assert_eq!(ran, ["q-acme", "q-users", "q-retry"]);
    assert_eq!(rig.work.enqueued().len(), 2, "two pages handed back");
}
