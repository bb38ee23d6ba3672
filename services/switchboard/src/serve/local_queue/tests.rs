use super::*;

fn queue(config: QueueConfig) -> LocalQueue {
    LocalQueue::new(config, Arc::new(Metrics::new()))
}

fn envelope(kind: &str, tenant: &str, n: u32) -> String {
    let named = match kind {
        "users" => r#","users":["u"]"#,
        "connections" => r#","connectionIds":["c"]"#,
        _ => "",
    };
    format!(r#"{{"id":"m{n}","target":{{"type":"{kind}","tenant":"{tenant}"{named}}},"data":{n}}}"#)
}

fn ids(batch: &[Queued]) -> Vec<String> {
    batch.iter().map(|t| envelope_id(&t.message.body)).collect()
}

async fn next(queue: &LocalQueue) -> Vec<Queued> {
    let (_tx, mut rx) = watch::channel(false);
    match tokio::time::timeout(Duration::from_secs(60), queue.next_batch(&mut rx)).await {
        Ok(Some(batch)) => batch,
        other => panic!("no batch: {:?}", other.map(|b| b.map(|b| ids(&b)))),
    }
}

fn failing(batch: &[Queued]) -> BatchOutcome {
    BatchOutcome {
        failed_message_ids: batch.iter().map(|t| t.message.message_id.clone()).collect(),
        reports: Vec::new(),
    }
}

#[tokio::test(start_paused = true)]
async fn one_message_per_group_at_a_time_in_accepted_order() {
    let queue = queue(QueueConfig::default());
    for n in 0..3 {
        queue
            .enqueue("", &envelope("tenant", "acme", n))
            .await
            .unwrap();
    }
    queue
        .enqueue("", &envelope("tenant", "other", 9))
        .await
        .unwrap();
    queue
        .enqueue("", &envelope("users", "acme", 7))
        .await
        .unwrap();

    // Each group contributes its oldest message only.
    let first = next(&queue).await;
    assert_eq!(ids(&first), ["m0", "m9", "m7"]);
    assert_eq!(queue.depth(), 5);
    // While they are in flight, acme's tenant stream has nothing to hand out.
    let (_tx, mut rx) = watch::channel(false);
    let waited = tokio::time::timeout(Duration::from_secs(30), queue.next_batch(&mut rx)).await;
    assert!(
        waited.is_err(),
        "a busy group's next message was handed out"
    );

    queue.settle(first, &BatchOutcome::default());
    assert_eq!(ids(&next(&queue).await), ["m1"]);
}

#[tokio::test(start_paused = true)]
async fn failed_messages_come_back_after_the_visibility_timeout_then_die() {
    let config = QueueConfig {
        visibility_timeout: Duration::from_secs(5),
        max_receives: 3,
        ..QueueConfig::default()
    };
    let queue = queue(config);
    queue
        .enqueue("", &envelope("users", "acme", 1))
        .await
        .unwrap();
    let start = Instant::now();
    for receive in 1..=3u32 {
        let batch = next(&queue).await;
        assert_eq!(batch[0].message.receive_count, receive);
        let expected = Duration::from_secs(5) * (receive - 1);
        assert_eq!(
            start.elapsed(),
            expected,
            "receive {receive} came at the wrong time"
        );
        let outcome = failing(&batch);
        queue.settle(batch, &outcome);
    }
    assert_eq!(queue.depth(), 0);
    let dead = queue.dead_letters_page(None, 10, None);
    assert_eq!(dead.items.len(), 1);
    assert_eq!(dead.items[0].receive_count, 3);
    assert!(
        dead.items[0].error.contains("after 3 receives"),
        "{}",
        dead.items[0].error
    );

    // Redrive puts it back with a fresh receive count.
    assert_eq!(queue.redrive(None), 1);
    let again = next(&queue).await;
    assert_eq!(again[0].message.receive_count, 1);
    assert_eq!(envelope_id(&again[0].message.body), "m1");
}

#[tokio::test(start_paused = true)]
async fn a_failed_message_releases_its_group() {
    let queue = queue(QueueConfig::default());
    queue
        .enqueue("", &envelope("tenant", "acme", 1))
        .await
        .unwrap();
    queue
        .enqueue("", &envelope("tenant", "acme", 2))
        .await
        .unwrap();
    let first = next(&queue).await;
    let outcome = failing(&first);
    queue.settle(first, &outcome);
    // The next message of the group goes on; the failed one waits for its redelivery.
    assert_eq!(ids(&next(&queue).await), ["m2"]);
    assert_eq!(queue.depth(), 2);
}

#[tokio::test(start_paused = true)]
async fn capacity_refuses_publishes_but_not_work_items() {
    let queue = queue(QueueConfig {
        capacity: 2,
        share_percent: 100,
        ..QueueConfig::default()
    });
    queue
        .enqueue("", &envelope("users", "acme", 1))
        .await
        .unwrap();
    queue
        .enqueue("", &envelope("users", "acme", 2))
        .await
        .unwrap();
    let refused = queue.enqueue("", &envelope("users", "acme", 3)).await;
    assert!(
        matches!(refused, Err(QueueError::Full { .. })),
        "{refused:?}"
    );
    queue
        .enqueue_delayed("", &envelope("users", "acme", 4), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(queue.depth(), 3);
}

/// Tenant A has 1,000 messages waiting, then B publishes one: the batches up to the one
/// that hands out B's.
async fn batches_until_b(fairness: bool) -> usize {
    let queue = queue(QueueConfig {
        fairness,
        share_percent: 100,
        ..QueueConfig::default()
    });
    for n in 0..1000 {
        queue
            .enqueue("", &envelope("connections", "a", n))
            .await
            .unwrap();
    }
    queue
        .enqueue("", &envelope("connections", "b", 1000))
        .await
        .unwrap();
    for batches in 1.. {
        let batch = next(&queue).await;
        if ids(&batch).contains(&"m1000".to_string()) {
            return batches;
        }
        queue.settle(batch, &BatchOutcome::default());
    }
    unreachable!()
}

#[tokio::test(start_paused = true)]
async fn a_quiet_tenant_is_served_in_the_first_batch_behind_a_backlog() {
    assert_eq!(batches_until_b(true).await, 1);
    assert_eq!(batches_until_b(false).await, 101, "FIFO: after A's 1,000");
}

#[tokio::test(start_paused = true)]
async fn a_tenant_at_its_share_is_refused_while_others_are_accepted() {
    let queue = queue(QueueConfig {
        capacity: 8,
        share_percent: 25,
        ..QueueConfig::default()
    });
    assert_eq!(queue.config.tenant_share(), 2);
    for n in 0..2 {
        queue
            .enqueue("", &envelope("tenant", "a", n))
            .await
            .unwrap();
    }
    let refused = queue.enqueue("", &envelope("tenant", "a", 2)).await;
    match refused {
        Err(QueueError::Full { reason, .. }) => assert!(reason.contains("tenant a"), "{reason}"),
        other => panic!("{other:?}"),
    }
    queue
        .enqueue("", &envelope("tenant", "b", 3))
        .await
        .unwrap();
    let broadcast = r#"{"target":{"type":"broadcast"},"data":1}"#;
    queue.enqueue("", broadcast).await.unwrap();
    queue.enqueue("", broadcast).await.unwrap();
    assert!(
        queue.enqueue("", broadcast).await.is_err(),
        "`*` has a share too"
    );
    // The publisher's work items are never refused.
    queue
        .enqueue_delayed("", &envelope("tenant", "a", 4), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(queue.depth(), 6);

    // Once A's messages are delivered, A publishes again.
    while queue.depth() > 0 {
        let batch = next(&queue).await;
        queue.settle(batch, &BatchOutcome::default());
    }
    queue
        .enqueue("", &envelope("tenant", "a", 5))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_message_that_dies_in_the_queue_keeps_its_tenant() {
    let queue = queue(QueueConfig {
        max_receives: 1,
        ..QueueConfig::default()
    });
    queue
        .enqueue("", &envelope("tenant", "a", 1))
        .await
        .unwrap();
    queue
        .enqueue("", &envelope("tenant", "b", 2))
        .await
        .unwrap();
    let batch = next(&queue).await;
    let outcome = failing(&batch);
    queue.settle(batch, &outcome);
    let b = TenantId::parse("b").unwrap();
    let page = queue.dead_letters_page(None, 10, Some(&b));
    assert_eq!(page.items.len(), 1);
    assert_eq!(envelope_id(&page.items[0].body), "m2");
    assert_eq!(queue.redrive(Some(&b)), 1);
    assert_eq!(queue.dead_letters_page(None, 10, None).items.len(), 1);
    assert_eq!(queue.depth(), 1);
}
