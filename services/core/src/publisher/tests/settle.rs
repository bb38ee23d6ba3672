//! Settling leftovers: retry items for failing posts (then the dead letters), remainder
//! items when the deadline comes near, and redelivery when nothing was posted yet.

use super::*;

#[tokio::test]
async fn persistent_5xx_is_retried_for_that_connection_only_then_dead_lettered() {
    let rig = rig();
    rig.populate().await;
    rig.poster
        .always_fail("globex-carol-1", PostError::Transient("500".into()));
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
    let before = rig.poster.delivered().len();
    let reports = rig
        .run(vec![InboundMessage {
            message_id: "retry".into(),
            body: retry_items[0].1.clone(),
            receive_count: 1,
        }])
        .await;
    assert_eq!(reports.len(), 4, "attempts 2, 3, 4 and 5");
    assert_eq!(rig.poster.delivered().len(), before, "nobody else re-sent");
    // First run: acme 3, globex alice 1 + carol 5, alice 1; then 4 retry items × 5 tries.
    assert_eq!(rig.poster.attempts(), 10 + 4 * 5);
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
        other => panic!("not a connections item: {other:?}"),
    }
}

#[tokio::test]
async fn a_continuation_that_cannot_be_enqueued_posts_nothing_and_is_redelivered() {
    let rig = rig_with(ScriptedPoster::new(), paged(10));
    connect_many(&rig, "acme", 25).await;
    rig.work
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let outcome = rig
        .publish(
            "s",
            json!({"target":{"type":"tenant","tenant":"acme"},"data":1}),
        )
        .await;
    assert_eq!(outcome.failed_message_ids, ["s"]);
    assert!(rig.poster.delivered().is_empty());
}

#[tokio::test]
async fn a_deadline_too_short_for_the_page_continues_the_rest_as_a_remainder() {
    let rig = rig_with(
        ScriptedPoster::with_latency(Duration::from_millis(40)),
        PublisherConfig {
            fanout_concurrency: 2,
            deadline_margin: Duration::from_millis(50),
            ..paged(100)
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
    let posted = rig.poster.delivered().len();
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
    let to = rig.poster.delivered_to();
    let unique: std::collections::BTreeSet<_> = to.iter().collect();
    assert_eq!((to.len(), unique.len()), (60, 60));
}

#[tokio::test]
async fn a_users_message_out_of_time_is_redelivered_whole() {
    let rig = rig_with(
        ScriptedPoster::new(),
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
    assert!(rig.poster.delivered().is_empty());
    assert!(rig.work.enqueued().is_empty());
}
