//! Intake: each target reaches exactly its connections; ids, malformed and oversized
//! bodies, expiry, legacy raw bodies and malformed work items.

use super::*;

#[tokio::test]
async fn each_target_reaches_exactly_its_connections() {
    let cases = [
        (
            json!({"type":"users","tenant":"acme","users":["alice"]}),
            vec!["acme-alice-1", "acme-alice-2"],
        ),
        (
            json!({"type":"users","tenant":"globex","users":["alice","carol"]}),
            vec!["globex-alice-1", "globex-carol-1"],
        ),
        (
            json!({"type":"tenant","tenant":"acme"}),
            vec!["acme-alice-1", "acme-alice-2", "acme-bob-1"],
        ),
        (
            json!({"type":"connections","tenant":"acme","connectionIds":["acme-bob-1","globex-carol-1"]}),
            vec!["acme-bob-1"],
        ),
        (
            json!({"type":"broadcast"}),
            vec![
                "acme-alice-1",
                "acme-alice-2",
                "acme-bob-1",
                "globex-alice-1",
                "globex-carol-1",
            ],
        ),
    ];
    for (target, expected) in cases {
        let rig = rig();
        rig.populate().await;
        let reports = rig
            .run(vec![message(
                "sqs-1",
                json!({"id":"m-1","target":target,"data":{"n":1}}),
            )])
            .await;
        assert_eq!(rig.poster.delivered_to(), expected, "target {target}");
        let matched: usize = reports.iter().map(|r| r.matched).sum();
        let delivered: usize = reports.iter().map(|r| r.delivered).sum();
        assert_eq!((matched, delivered), (expected.len(), expected.len()));
        assert!(reports.iter().all(|r| r.id == "m-1"));
        for (_, frame) in rig.poster.delivered() {
            assert_eq!(
                serde_json::from_str::<Value>(&frame).unwrap(),
                json!({"id":"m-1","data":{"n":1}})
            );
        }
    }
}

#[tokio::test]
async fn id_defaults_to_the_queue_message_id() {
    let rig = rig();
    rig.populate().await;
    rig.publish(
        "sqs-77",
        json!({"target":{"type":"users","tenant":"acme","users":["bob"]},"data":1}),
    )
    .await;
    let frames = rig.poster.delivered();
    assert_eq!(
        serde_json::from_str::<Value>(&frames[0].1).unwrap(),
        json!({"id":"sqs-77","data":1})
    );
}

#[tokio::test]
async fn malformed_bodies_reach_the_dead_letters_and_are_acknowledged() {
    let rig = rig();
    rig.populate().await;
    let bodies = [
        "not json".to_string(),
        json!({"target":{"type":"users","tenant":"acme","users":[]},"data":1}).to_string(),
        json!({"message":"legacy-shaped but legacy is off"}).to_string(),
    ];
    let batch: Vec<InboundMessage> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| InboundMessage {
            message_id: format!("m{i}"),
            body: body.clone(),
            receive_count: 1,
        })
        .collect();
    let outcome = rig.publisher.handle_batch(&batch).await;
    assert!(outcome.failed_message_ids.is_empty(), "not retried");
    let letters = rig.dlq.letters();
    assert_eq!(letters.len(), 3);
    assert!(letters
        .iter()
        .any(|l| l.message_id == "m1" && l.error.contains("target.users")));
    assert!(letters.iter().all(|l| bodies.contains(&l.body)));
    assert!(rig.poster.delivered().is_empty());
}

#[tokio::test]
async fn malformed_body_is_kept_for_redelivery_when_the_dead_letter_queue_fails() {
    let rig = rig();
    rig.dlq
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let outcome = rig.publish("m", json!({"nope":1})).await;
    assert_eq!(outcome.failed_message_ids, vec!["m".to_string()]);
}

#[tokio::test]
async fn oversized_frames_are_dead_lettered() {
    let rig = rig();
    rig.populate().await;
    let big = "x".repeat(MAX_FRAME_BYTES);
    let outcome = rig
        .publish(
            "m",
            json!({"target":{"type":"tenant","tenant":"acme"},"data":big}),
        )
        .await;
    assert!(outcome.failed_message_ids.is_empty());
    assert_eq!(outcome.reports[0].outcome, Outcome::DeadLettered);
    assert_eq!(rig.dlq.letters().len(), 1);
    assert!(rig.poster.delivered().is_empty());
}

#[tokio::test]
async fn expired_messages_are_dropped_and_counted() {
    let rig = rig();
    rig.populate().await;
    let outcome = rig.publish("m",
            json!({"target":{"type":"tenant","tenant":"acme"},"data":1,"expiresAt":"2001-01-01T00:00:00Z"})).await;
    assert!(outcome.failed_message_ids.is_empty());
    assert_eq!(outcome.reports[0].outcome, Outcome::Expired);
    assert!(rig.poster.delivered().is_empty());
    assert!(rig.dlq.letters().is_empty());
}

#[tokio::test]
async fn legacy_body_goes_verbatim_to_everyone_when_enabled() {
    let rig = rig_with(
        ScriptedPoster::new(),
        PublisherConfig {
            legacy_broadcast: true,
            ..test_config()
        },
    );
    rig.populate().await;
    rig.run(vec![InboundMessage {
        message_id: "m".into(),
        body: "plain text hello".into(),
        receive_count: 1,
    }])
    .await;
    let delivered = rig.poster.delivered();
    assert_eq!(delivered.len(), 5);
    assert!(delivered
        .iter()
        .all(|(_, frame)| frame == "plain text hello"));
    // An envelope-shaped but invalid body is still a malformed envelope, not legacy.
    let outcome = rig
        .publish("bad", json!({"target":{"type":"users"},"data":1}))
        .await;
    assert_eq!(outcome.reports[0].outcome, Outcome::DeadLettered);
}

#[tokio::test]
async fn same_user_id_in_two_tenants_never_crosses() {
    let rig = rig();
    rig.populate().await;
    rig.publish(
        "m",
        json!({"target":{"type":"users","tenant":"globex","users":["alice"]},"data":1}),
    )
    .await;
    assert_eq!(rig.poster.delivered_to(), vec!["globex-alice-1"]);
    let _ = UserId::parse("alice").unwrap();
}

#[tokio::test]
async fn malformed_work_items_are_dead_lettered() {
    let rig = rig();
    let outcome = rig
        .publish("w", json!({"shard":{"id":"x","attempt":1}}))
        .await;
    assert!(outcome.failed_message_ids.is_empty());
    assert_eq!(outcome.reports[0].outcome, Outcome::DeadLettered);
    assert!(rig.dlq.letters()[0].error.contains("invalid work item"));
}
