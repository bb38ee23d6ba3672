//! Posting: `410` cleanup and its grace period, in-process retries, fatal `413`s, the
//! concurrency bound, the rate limit, and connections whose token expired.

use super::*;

#[tokio::test]
async fn gone_connections_are_removed_and_counted() {
    let rig = rig();
    rig.populate().await;
    rig.poster.always_fail("acme-alice-2", PostError::Gone);
    let outcome = rig
        .publish(
            "s",
            json!({"target":{"type":"tenant","tenant":"acme"},"data":1}),
        )
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
    rig.poster.script(
        "acme-bob-1",
        vec![
            Err(PostError::Throttled),
            Err(PostError::Throttled),
            Err(PostError::Throttled),
        ],
    );
    let started = std::time::Instant::now();
    let outcome = rig
        .publish(
            "s",
            json!({"target":{"type":"users","tenant":"acme","users":["bob"]},"data":1}),
        )
        .await;
    assert!(outcome.failed_message_ids.is_empty());
    let report = &outcome.reports[0];
    assert_eq!((report.delivered, report.retries), (1, 3));
    assert_eq!(rig.poster.attempts(), 4);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn timeouts_and_5xx_are_retried() {
    let rig = rig();
    rig.populate().await;
    rig.poster.script(
        "acme-bob-1",
        vec![
            Err(PostError::Timeout),
            Err(PostError::Transient("502".into())),
        ],
    );
    let outcome = rig
        .publish(
            "s",
            json!({"target":{"type":"users","tenant":"acme","users":["bob"]},"data":1}),
        )
        .await;
    assert!(outcome.failed_message_ids.is_empty());
    assert_eq!(outcome.reports[0].retries, 2);
    assert_eq!(rig.poster.delivered_to(), vec!["acme-bob-1"]);
}

#[tokio::test]
async fn concurrency_never_exceeds_the_bound() {
    let rig = rig_with(
        ScriptedPoster::with_latency(Duration::from_millis(5)),
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
        .publish(
            "s",
            json!({"target":{"type":"tenant","tenant":"acme"},"data":1}),
        )
        .await;
    assert_eq!(outcome.reports[0].delivered, 100);
    assert_eq!(
        rig.poster.max_in_flight(),
        7,
        "bounded, and the bound is used"
    );
}

#[tokio::test]
async fn a_410_within_the_grace_period_keeps_the_roster_item() {
    let rig = rig_with(
        ScriptedPoster::new(),
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
    rig.poster.always_fail("young", PostError::Gone);
    rig.poster.always_fail("old", PostError::Gone);
    let outcome = rig
        .publish(
            "s",
            json!({"target":{"type":"users","tenant":"acme","users":["alice"]},"data":1}),
        )
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
    rig.poster
        .always_fail("acme-bob-1", PostError::PayloadTooLarge);
    let outcome = rig
        .publish(
            "s",
            json!({"target":{"type":"tenant","tenant":"acme"},"data":1}),
        )
        .await;
    let report = &outcome.reports[0];
    assert!(outcome.failed_message_ids.is_empty());
    assert_eq!(report.outcome, Outcome::DeadLettered);
    assert_eq!((report.delivered, report.failed, report.retries), (2, 1, 0));
    assert_eq!(rig.poster.attempts(), 3, "no retry of the 413");
    assert!(rig.work.enqueued().is_empty(), "no retry item");
    let letters = rig.dlq.letters();
    assert_eq!(letters.len(), 1);
    assert!(letters[0].body.contains("acme-bob-1"));
    assert!(!letters[0].body.contains("acme-alice-1"));
}

#[tokio::test]
async fn the_rate_limit_spaces_posts_across_messages() {
    let rig = rig_with(
        ScriptedPoster::new(),
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
    assert_eq!(rig.poster.delivered().len(), 60);
    assert!(
        started.elapsed() >= Duration::from_millis(1_300),
        "{:?}",
        started.elapsed()
    );
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
        assert_eq!(rig.poster.delivered_to(), ["bob-1", "carol-1", "dave-1"]);
        assert_eq!(rig.poster.closed(), ["alice-1"]);
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
        target_type: switchboard_model::TargetKind::Users.into(),
        tenant: Some(TenantId::parse("acme").unwrap()),
        frame: r#"{"id":"m-1","data":1}"#.into(),
        expires_at: None,
        attempt: 2,
        hops: 1,
        push: None,
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
    assert_eq!(rig.poster.closed(), ["alice-1"]);
}

#[tokio::test]
async fn the_leeway_comes_from_the_config() {
    let rig = rig_with(
        ScriptedPoster::new(),
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

#[tokio::test]
async fn posts_waiting_for_the_rate_limit_take_tokens_in_turn() {
    // 40 posts wait at once (as `fanout_concurrency` of them do) on a bucket of 200/s with
    // a burst of 20: each gets its token in the order it asked, one waiter at a time
    // sleeping on the bucket rather than all of them waking at each token.
    let limiter = super::super::fanout::Limiter::new(std::num::NonZeroU32::new(200).unwrap());
    let granted = std::sync::Mutex::new(Vec::new());
    futures::future::join_all((0..40).map(|i| {
        let (limiter, granted) = (&limiter, &granted);
        async move {
            limiter.until_ready().await;
            granted.lock().unwrap().push(i);
        }
    }))
    .await;
    let granted = granted.into_inner().unwrap();
    assert_eq!(granted, (0..40).collect::<Vec<_>>());
}
