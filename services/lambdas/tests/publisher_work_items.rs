#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Lambda publisher at any size: real-shaped SQS events (the fixture's record shape),
//! the real `ApiGatewayPoster` against a fake management endpoint, and the real `SqsQueue`
//! against a fake SQS endpoint that keeps what the publisher sends (continuations, retry
//! and remainder items, dead letters). Each "invocation" hands the publisher what the
//! previous ones sent to its queue, as the SQS trigger would. The rig is in `support/`.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use support::{config, rig, tenant_message, work_items, Sent, DLQ, QUEUE};
use switchboard_core::publisher::{PublisherConfig, Work};
use switchboard_core::receipts::ReceiptStatus;
use switchboard_core::roster::{ConnectionRecord, RosterStore};
use switchboard_model::TenantId;
use time::OffsetDateTime;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_3000_connection_tenant_goes_500_per_invocation_with_continuations() {
    let mut rig = rig(config()).await;
    for i in 0..3_000 {
        rig.connect("big", &format!("conn-{i:05}"), time::Duration::minutes(5))
            .await;
    }
    rig.connect("other", "other-1", time::Duration::minutes(5))
        .await;

    let response = rig.invoke(&[tenant_message("m-1", "big")], None).await;
    assert_eq!(response, json!({"batchItemFailures": []}));
    assert_eq!(rig.gateway.total(), 500, "one page in the first invocation");
    let continuation = rig.sqs.take(QUEUE);
    assert_eq!(continuation.len(), 1, "the continuation, enqueued");
    assert!(matches!(
        work_items(&continuation)[0].work,
        Work::Page { start: Some(_), .. }
    ));

    // Hand the continuation back, as the trigger would, and run the chain out.
    rig.sqs.requeue(continuation);
    let per_invocation = rig.drain_queue().await;
    assert!(
        per_invocation.iter().all(|&posts| posts <= 500),
        "{per_invocation:?}"
    );
    assert_eq!(per_invocation.len(), 5);
    let posts = rig.gateway.posts();
    assert_eq!(posts.len(), 3_000, "every connection of the tenant");
    assert!(posts.values().all(|&n| n == 1), "each exactly once");
    assert!(!posts.contains_key("other-1"), "nobody of another tenant");
    assert!(rig.sqs.take(DLQ).is_empty());
    let receipt = rig.receipt("big", "m-1").await;
    assert_eq!(receipt.status(), ReceiptStatus::Delivered);
    assert_eq!((receipt.matched, receipt.delivered), (3_000, 3_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_failure_resends_to_that_connection_only_then_dead_letters() {
    let mut rig = rig(config()).await;
    for i in 0..1_200 {
        rig.connect("acme", &format!("conn-{i:05}"), time::Duration::minutes(5))
            .await;
    }
    rig.connect("acme", "fail-1", time::Duration::minutes(5))
        .await;

    let response = rig.invoke(&[tenant_message("m-2", "acme")], None).await;
    assert_eq!(
        response,
        json!({"batchItemFailures": []}),
        "never the whole message"
    );
    assert_eq!(
        rig.receipt("acme", "m-2").await.status(),
        ReceiptStatus::Delivering,
        "pages outstanding"
    );
    let mut retries_seen = Vec::new();
    for _ in 0..20 {
        let sent = rig.sqs.take(QUEUE);
        if sent.is_empty() {
            break;
        }
        for item in work_items(&sent) {
            if let Work::Connections { connections } = &item.work {
                let names: Vec<String> = connections
                    .iter()
                    .map(|c| c.connection_id.to_string())
                    .collect();
                assert_eq!(
                    names,
                    ["fail-1"],
                    "a retry names just the failing connection"
                );
                retries_seen.push(item.attempt);
            }
        }
        assert!(
            sent.iter()
                .filter(|s| s.body.contains("\"connections\""))
                .all(|s| s.delay_seconds >= 5),
            "retry items are delayed"
        );
        let bodies: Vec<String> = sent.into_iter().map(|s| s.body).collect();
        for batch in bodies.chunks(10) {
            assert_eq!(
                rig.invoke(batch, None).await,
                json!({"batchItemFailures": []})
            );
        }
    }
    retries_seen.sort_unstable();
    assert_eq!(retries_seen, [2, 3, 4, 5]);
    let posts = rig.gateway.posts();
    assert_eq!(posts["fail-1"], 5 * 3, "5 attempts of 3 tries each");
    assert_eq!(posts.len(), 1_201);
    assert!(
        posts
            .iter()
            .filter(|(id, _)| id.as_str() != "fail-1")
            .all(|(_, &n)| n == 1),
        "nobody else was ever re-sent"
    );
    let dead = rig.sqs.take(DLQ);
    assert_eq!(dead.len(), 1);
    assert!(dead[0].body.contains("fail-1") && !dead[0].body.contains("conn-00000"));
    let receipt = rig.receipt("acme", "m-2").await;
    assert_eq!(receipt.status(), ReceiptStatus::Dead);
    assert_eq!(
        (receipt.matched, receipt.delivered, receipt.failed),
        (1_201, 1_200, 1)
    );
}

/// Receipts through the Lambda handler, the real poster and SQS adapters: a paged tenant
/// message of 2,500 connections counts every page; a `users` message with a gone
/// connection is `delivered` with it counted as gone; a failing one is `partial` while its
/// retries are pending, then `dead`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_count_every_page_and_follow_failures() {
    let mut rig = rig(PublisherConfig {
        page_size: 100,
        ..config()
    })
    .await;
    for i in 0..2_500 {
        rig.connect("big", &format!("conn-{i:05}"), time::Duration::minutes(5))
            .await;
    }
    let user = |id: &str, user: &str| {
        ConnectionRecord::from_raw(
            id,
            "acme",
            user,
            vec![],
            OffsetDateTime::now_utc() - time::Duration::minutes(5),
            7_500,
        )
        .unwrap()
    };
    for record in [
        user("alice-1", "alice"),
        user("alice-2", "alice"),
        user("bob-1", "bob"),
        user("gone-carol", "carol"),
        user("fail-dave", "dave"),
    ] {
        rig.roster.put(&record).await.unwrap();
    }
    let users = |id: &str, names: &[&str]| {
        json!({"id": id, "target": {"type": "users", "tenant": "acme", "users": names}, "data": 1})
            .to_string()
    };
    let response = rig
        .invoke(
            &[
                tenant_message("paged", "big"),
                users("to-three", &["alice", "bob", "carol"]),
                users("to-dave", &["dave", "bob"]),
            ],
            None,
        )
        .await;
    assert_eq!(response, json!({"batchItemFailures": []}));
    let three = rig.receipt("acme", "to-three").await;
    assert_eq!(three.status(), ReceiptStatus::Delivered);
    assert_eq!(
        (three.matched, three.delivered, three.gone, three.failed),
        (4, 3, 1, 0)
    );
    let dave = rig.receipt("acme", "to-dave").await;
    assert_eq!(dave.status(), ReceiptStatus::Partial);
    assert_eq!((dave.matched, dave.delivered, dave.failed), (2, 1, 1));
    assert_eq!(
        rig.receipt("big", "paged").await.status(),
        ReceiptStatus::Delivering
    );

    rig.drain_queue().await;
    let paged = rig.receipt("big", "paged").await;
    assert_eq!(paged.status(), ReceiptStatus::Delivered, "{paged:?}");
    assert_eq!((paged.matched, paged.delivered), (2_500, 2_500));
    let dave = rig.receipt("acme", "to-dave").await;
    assert_eq!(dave.status(), ReceiptStatus::Dead);
    assert_eq!(rig.sqs.take(DLQ).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_too_short_for_the_page_returns_in_time_and_continues_the_rest() {
    let mut rig = rig(PublisherConfig {
        fanout_concurrency: 8,
        deadline_margin: Duration::from_millis(300),
        ..config()
    })
    .await;
    *rig.gateway.latency.lock().unwrap() = Duration::from_millis(20);
    for i in 0..500 {
        rig.connect("acme", &format!("conn-{i:05}"), time::Duration::minutes(5))
            .await;
    }
    // 500 posts, 8 in flight, 20 ms each: 1.25 s; the invocation has 0.8 s.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(800);
    let response = rig
        .invoke(&[tenant_message("m-3", "acme")], Some(deadline))
        .await;
    assert!(
        tokio::time::Instant::now() < deadline,
        "returned before the deadline"
    );
    assert_eq!(response, json!({"batchItemFailures": []}));
    let posted = rig.gateway.total();
    assert!(posted > 0 && posted < 500, "{posted}");
    let remainder = work_items(&rig.sqs.take(QUEUE));
    let left: usize = remainder
        .iter()
        .map(|item| match &item.work {
            Work::Connections { connections } => connections.len(),
            other => panic!("no further page: the tenant fits one: {other:?}"),
        })
        .sum();
    assert_eq!(posted + left, 500, "the rest, exactly, continued");
    *rig.gateway.latency.lock().unwrap() = Duration::ZERO;
    rig.sqs.requeue(remainder.iter().map(|item| Sent {
        queue: QUEUE.into(),
        group: "acme".into(),
        body: item.to_body(),
        delay_seconds: 0,
        error: None,
    }));
    rig.drain_queue().await;
    let posts = rig.gateway.posts();
    assert_eq!(posts.len(), 500);
    assert!(posts.values().all(|&n| n == 1), "nobody twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_on_a_five_second_old_connection_keeps_its_item() {
    let mut rig = rig(config()).await;
    rig.connect("acme", "gone-young", time::Duration::seconds(5))
        .await;
    rig.connect("acme", "gone-old", time::Duration::minutes(5))
        .await;
    assert_eq!(
        rig.invoke(&[tenant_message("m-4", "acme")], None).await,
        json!({"batchItemFailures": []})
    );
    let left: Vec<String> = rig
        .roster
        .list_tenant(&TenantId::parse("acme").unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.connection_id.to_string())
        .collect();
    assert_eq!(left, ["gone-young"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_413_is_dead_lettered_at_once_without_retries() {
    let mut rig = rig(config()).await;
    rig.connect("acme", "big-1", time::Duration::minutes(5))
        .await;
    rig.connect("acme", "fine-1", time::Duration::minutes(5))
        .await;
    assert_eq!(
        rig.invoke(&[tenant_message("m-5", "acme")], None).await,
        json!({"batchItemFailures": []})
    );
    let posts: HashMap<String, usize> = rig.gateway.posts().into_iter().collect();
    assert_eq!(posts["big-1"], 1, "never retried");
    assert_eq!(posts["fine-1"], 1);
    assert!(rig.sqs.take(QUEUE).is_empty(), "no retry item");
    let dead = rig.sqs.take(DLQ);
    assert_eq!(dead.len(), 1);
    assert!(dead[0].body.contains("big-1") && !dead[0].body.contains("fine-1"));
    rig.gateway.clear();
    assert_eq!(rig.invocations, 1);
}
