//! Web Push from the publisher: who gets a send and who a post (never both for
//! `offline`), device pages of a tenant, retries, pruning, receipts and idempotence.

use std::collections::BTreeSet;

use super::*;
use crate::devices::{Device, DeviceId, DeviceStore, MemoryDeviceStore, Subscription};
use crate::receipts::ReceiptStatus;
use crate::testkit::ScriptedSender;
use crate::webpush::{PushConfig, SendError, WebPush};

struct PushRig {
    rig: Rig,
    devices: Arc<MemoryDeviceStore>,
    sender: Arc<ScriptedSender>,
}

fn endpoint(user: &str) -> String {
    format!("https://push.example/send/{user}")
}

/// A rig with receipts and Web Push (the memory device store, a scripted sender).
fn push_rig(config: PublisherConfig) -> PushRig {
    push_rig_with(config, ScriptedSender::new())
}

fn push_rig_with(config: PublisherConfig, sender: ScriptedSender) -> PushRig {
    let rig = rig_with(ScriptedPoster::new(), config).with_receipts(None);
    let devices = Arc::new(MemoryDeviceStore::new(10_000));
    let sender = Arc::new(sender);
    let push = WebPush {
        devices: devices.clone(),
        sender: sender.clone(),
        config: PushConfig {
            vapid: None,
            max_devices_per_user: 10,
            device_ttl: Duration::from_secs(86_400),
            concurrency_per_service: 50,
            timeout: Duration::from_secs(10),
            endpoint_policy: Default::default(),
        },
    };
    let publisher = rig.publisher.clone().with_push(Some(push));
    PushRig {
        rig: Rig { publisher, ..rig },
        devices,
        sender,
    }
}

impl PushRig {
    async fn register(&self, tenant: &str, user: &str) {
        let subscription: Subscription = serde_json::from_value(json!({
            "endpoint": endpoint(user),
            "keys": {"p256dh": "B".repeat(87), "auth": "A".repeat(22)},
        }))
        .unwrap();
        let device = Device {
            tenant: TenantId::parse(tenant).unwrap(),
            user: UserId::parse(user).unwrap(),
            id: DeviceId::of_endpoint(&subscription.endpoint),
            subscription,
            registered_at: OffsetDateTime::now_utc(),
            expires_at: OffsetDateTime::now_utc().unix_timestamp() + 86_400,
        };
        self.devices.put(&device, 10).await.unwrap();
    }

    /// Users `u0`..`u{users}` with a device each, the first `online` connected.
    async fn users(&self, users: usize, online: usize) {
        for i in 0..users {
            let user = format!("u{i:04}");
            self.register("acme", &user).await;
            if i < online {
                self.rig.connect("acme", &user, &format!("c-{user}")).await;
            }
        }
    }

    async fn receipt(&self, id: &str) -> Receipt {
        let key = ReceiptKey::new(Some(TenantId::parse("acme").unwrap()), id);
        self.rig.receipt(&key).await
    }

    /// Publishes `m-1` with `{"title":"t"}` to `u0000`..`u0009` and runs it to the end.
    async fn publish_to_ten(&self) -> Vec<MessageReport> {
        let body = to_users("m-1", 10, json!({"title": "t"}));
        self.rig.run(vec![message("q-1", body)]).await
    }

    fn posted_users(&self) -> BTreeSet<String> {
        self.rig
            .poster
            .delivered_to()
            .into_iter()
            .map(|c| c.trim_start_matches("c-").to_string())
            .collect()
    }
}

fn to_users(id: &str, users: usize, push: Value) -> Value {
    let users: Vec<String> = (0..users).map(|i| format!("u{i:04}")).collect();
    json!({"id": id, "target": {"type": "users", "tenant": "acme", "users": users},
           "data": {"n": 1}, "push": push})
}

#[test]
fn the_envelope_limit_is_the_encryption_limit() {
    assert_eq!(
        switchboard_model::push::MAX_NOTIFICATION_BYTES,
        crate::webpush::MAX_PLAINTEXT_BYTES
    );
}

#[tokio::test]
async fn ten_users_six_online_get_six_posts_and_four_sends_and_nobody_both() {
    let push = push_rig(test_config());
    push.users(10, 6).await;
    let body = to_users("m-1", 10, json!({"title": "New", "url": "/inbox"}));
    let reports = push.rig.run(vec![message("q-1", body)]).await;

    let posted = push.posted_users();
    let sent: BTreeSet<String> = push.sender.sent_users().into_iter().collect();
    assert_eq!(posted.len(), 6);
    assert_eq!(sent.len(), 4);
    assert!(
        posted.is_disjoint(&sent),
        "nobody both: {posted:?} {sent:?}"
    );
    assert_eq!(push.sender.sent().len(), 4, "one send per offline device");
    assert_eq!(
        (reports[0].delivered, reports[0].deferred_sends),
        (6, 4),
        "the message posts and hands the sends on"
    );
    assert_eq!((reports[1].work_item, reports[1].pushed), (true, 4));

    let (_, notification) = &push.sender.sent()[0];
    let payload: Value = serde_json::from_str(&notification.payload).unwrap();
    assert_eq!(
        payload,
        json!({"id": "m-1", "tenant": "acme", "title": "New", "url": "/inbox"})
    );
    assert_eq!(notification.topic.as_deref(), Some("m-1"));
    assert_eq!(notification.ttl_secs, 86_400);

    let receipt = push.receipt("m-1").await;
    assert_eq!((receipt.delivered, receipt.pushed), (6, 4));
    assert_eq!(receipt.status(), ReceiptStatus::Delivered);
    assert_eq!(receipt.to_json()["pushed"], 4);
}

#[tokio::test]
async fn always_pushes_to_every_user_and_posts_to_the_online_ones() {
    let push = push_rig(test_config());
    push.users(10, 6).await;
    let body = to_users("m-1", 10, json!({"body": "b", "when": "always", "ttl": 60}));
    push.rig.run(vec![message("q-1", body)]).await;
    assert_eq!(push.posted_users().len(), 6);
    assert_eq!(push.sender.sent_users().len(), 10);
    assert_eq!(push.sender.sent()[0].1.ttl_secs, 60);
    assert_eq!(push.receipt("m-1").await.pushed, 10);
}

#[tokio::test]
async fn a_gone_device_is_pruned_and_counted() {
    let push = push_rig(test_config());
    push.users(10, 6).await;
    push.sender.always_fail(&endpoint("u0007"), SendError::Gone);
    push.publish_to_ten().await;
    assert_eq!(push.sender.sent().len(), 3);
    let users: Vec<UserId> = (0..10)
        .map(|i| UserId::parse(format!("u{i:04}")).unwrap())
        .collect();
    let acme = TenantId::parse("acme").unwrap();
    let left = push.devices.list_users(&acme, &users).await.unwrap();
    assert_eq!(left.len(), 9);
    assert!(left.iter().all(|d| d.user.as_str() != "u0007"));
    let receipt = push.receipt("m-1").await;
    assert_eq!((receipt.pushed, receipt.devices_pruned), (3, 1));
    assert_eq!(receipt.to_json()["devicesPruned"], 1);
}

#[tokio::test]
async fn a_throttled_send_is_retried_then_handed_to_a_retry_item() {
    let push = push_rig(test_config());
    push.users(10, 6).await;
    // Every in-process attempt of the first unit is throttled; the retry item's succeeds.
    let attempts = fast_retry().max_attempts as usize;
    push.sender.script(
        &endpoint("u0008"),
        vec![Err(SendError::Throttled); attempts],
    );
    let reports = push.publish_to_ten().await;
    assert_eq!(
        reports.len(),
        3,
        "the message, its sends, then one retry item"
    );
    assert_eq!((reports[1].pushed, reports[1].deferred_sends), (3, 1));
    assert_eq!((reports[2].work_item, reports[2].pushed), (true, 1));
    assert_eq!(push.sender.attempts(), 4 + attempts);
    assert_eq!(push.sender.sent_users().len(), 4);
    let receipt = push.receipt("m-1").await;
    assert_eq!(
        (receipt.pushed, receipt.push_failed, receipt.pending),
        (4, 0, 0)
    );
    assert_eq!(receipt.status(), ReceiptStatus::Delivered);
}

#[tokio::test]
async fn a_refused_send_fails_for_good_without_a_retry() {
    let push = push_rig(test_config());
    push.users(10, 6).await;
    push.sender
        .always_fail(&endpoint("u0009"), SendError::PayloadTooLarge);
    let reports = push.publish_to_ten().await;
    assert_eq!(reports.len(), 2, "the message and its sends: no retry item");
    assert_eq!(push.sender.attempts(), 4, "413 is not retried");
    let receipt = push.receipt("m-1").await;
    assert_eq!((receipt.pushed, receipt.push_failed), (3, 1));
    assert_eq!(
        receipt.status(),
        ReceiptStatus::Delivered,
        "a push is best-effort"
    );
}

#[tokio::test]
async fn a_tenant_of_a_thousand_users_gets_600_posts_and_400_sends_over_pages() {
    let push = push_rig(paged(100));
    push.users(1_000, 600).await;
    let body = json!({"id": "m-1", "target": {"type": "tenant", "tenant": "acme"},
                      "data": 1, "push": {"title": "t"}});
    let reports = push.rig.run(vec![message("q-1", body)]).await;
    let posted = push.posted_users();
    let sent: BTreeSet<String> = push.sender.sent_users().into_iter().collect();
    assert_eq!(posted.len(), 600);
    assert_eq!(push.sender.sent().len(), 400);
    assert!(posted.is_disjoint(&sent));
    let sending_units = reports.iter().filter(|r| r.pushed > 0).count();
    assert!(
        sending_units >= 4,
        "400 sends from pages of 100 devices: {sending_units}"
    );
    let receipt = push.receipt("m-1").await;
    assert_eq!(
        (
            receipt.matched,
            receipt.delivered,
            receipt.pushed,
            receipt.pending
        ),
        (600, 600, 400, 0)
    );
    assert_eq!(receipt.status(), ReceiptStatus::Delivered);
}

#[tokio::test]
async fn a_message_or_item_delivered_again_sends_nothing_again() {
    let push = push_rig(paged(3));
    push.users(10, 6).await;
    let body = json!({"id": "m-1", "target": {"type": "tenant", "tenant": "acme"},
                      "data": 1, "push": {"title": "t"}});
    push.rig.publish("q-1", body.clone()).await;
    let items = push.rig.work.drain();
    let mut all = items.clone();
    all.extend(items);
    let again: Vec<InboundMessage> = all
        .into_iter()
        .enumerate()
        .map(|(i, (_, body))| message(&format!("w-{i}"), body))
        .collect();
    push.rig.run(again).await;
    push.rig.publish("q-1", body).await;
    let users = to_users("m-2", 10, json!({"title": "t"}));
    push.rig.run(vec![message("q-2", users.clone())]).await;
    push.rig.run(vec![message("q-2", users)]).await;
    assert_eq!(push.sender.attempts(), 8, "4 for each message, once");
    assert_eq!(push.receipt("m-1").await.pushed, 4);
    assert_eq!(push.receipt("m-2").await.pushed, 4);
}

#[tokio::test]
async fn a_message_that_reached_nobody_is_unmatched() {
    let push = push_rig(test_config());
    push.rig.connect("acme", "someone-else", "c-else").await;
    let with_push = to_users("m-1", 3, json!({"title": "t"}));
    let without = json!({"id": "m-2", "target": {"type": "users", "tenant": "acme",
                         "users": ["u0000"]}, "data": 1});
    push.rig
        .run(vec![message("q-1", with_push), message("q-2", without)])
        .await;
    for id in ["m-1", "m-2"] {
        let receipt = push.receipt(id).await;
        assert_eq!(receipt.status(), ReceiptStatus::Unmatched, "{id}");
        assert_eq!(receipt.to_json()["status"], "unmatched");
    }
}

#[tokio::test]
async fn with_push_off_a_push_is_ignored_and_the_frames_go_out() {
    let rig = rig().with_receipts(None);
    rig.connect("acme", "u0000", "c-u0000").await;
    rig.run(vec![message(
        "q-1",
        to_users("m-1", 2, json!({"title": "t"})),
    )])
    .await;
    assert_eq!(rig.poster.delivered().len(), 1);
}

#[tokio::test]
async fn no_send_starts_within_the_deadline_margin_the_rest_goes_to_a_remainder() {
    let push = push_rig(test_config());
    push.users(4, 0).await;
    let body = to_users("m-1", 4, json!({"title": "t"}));
    let first = push.rig.publish("q-1", body).await;
    assert_eq!(first.reports[0].deferred_sends, 4);
    let sends = push.rig.work.drain();
    assert_eq!(sends.len(), 1);
    let deadline = tokio::time::Instant::now() + DEADLINE_MARGIN / 2;
    let outcome = push
        .rig
        .publisher
        .handle_batch_until(&[message("w-1", &sends[0].1)], Some(deadline))
        .await;
    assert!(
        outcome.failed_message_ids.is_empty(),
        "{:?}",
        outcome.reports
    );
    assert_eq!(
        push.sender.attempts(),
        0,
        "no send starts within the margin"
    );
    assert_eq!(outcome.reports[0].deferred_sends, 4);
    let remainder = push.rig.work.drain();
    assert_eq!(remainder.len(), 1);
    assert!(remainder[0].1.contains("\"sends\""), "{}", remainder[0].1);
    assert_ne!(remainder[0].1, sends[0].1, "one hop further");
    push.rig.run(vec![message("w-2", &remainder[0].1)]).await;
    assert_eq!(push.sender.sent().len(), 4);
    let receipt = push.receipt("m-1").await;
    assert_eq!((receipt.pushed, receipt.pending), (4, 0));
    assert_eq!(receipt.status(), ReceiptStatus::Delivered);
}

#[tokio::test]
async fn a_user_whose_only_connection_has_an_expired_token_gets_a_push() {
    let push = push_rig(test_config());
    push.register("acme", "u0000").await;
    let mut record = crate::testkit::record("acme", "u0000", "c-u0000");
    record.token_expires_at = Some(OffsetDateTime::now_utc().unix_timestamp() - 3_600);
    push.rig.roster.put(&record).await.unwrap();
    push.rig
        .run(vec![message(
            "q-1",
            to_users("m-1", 1, json!({"title": "t"})),
        )])
        .await;
    assert!(
        push.rig.poster.delivered().is_empty(),
        "closed, not posted to"
    );
    assert_eq!(push.sender.sent_users(), vec!["u0000".to_string()]);
}

#[tokio::test]
async fn usage_counts_the_sends_as_pushed() {
    use crate::usage::{MemoryUsageStore, Usage, UsageConfig, UsageStore};
    let push = push_rig(paged(3));
    let config = UsageConfig::default();
    let store = Arc::new(MemoryUsageStore::new(1_000, 1_000, config.retention));
    let publisher = push
        .rig
        .publisher
        .clone()
        .with_usage(Some(Usage::new(store.clone(), &config)));
    let push = PushRig {
        rig: Rig {
            publisher,
            ..push.rig
        },
        ..push
    };
    push.users(10, 6).await;
    let users = to_users("m-1", 10, json!({"title": "t"}));
    let tenant = json!({"id": "m-2", "target": {"type": "tenant", "tenant": "acme"},
                        "data": 1, "push": {"title": "t"}});
    push.rig
        .run(vec![message("q-1", users), message("q-2", tenant)])
        .await;
    let now = OffsetDateTime::now_utc();
    let hour = time::Duration::hours(1);
    let minutes = store
        .minutes(
            Some(&TenantId::parse("acme").unwrap()),
            now - hour,
            now + hour,
        )
        .await
        .unwrap();
    let pushed: u64 = minutes.iter().map(|m| m.counts.pushed).sum();
    let delivered: u64 = minutes.iter().map(|m| m.counts.delivered).sum();
    assert_eq!((delivered, pushed), (12, 8));
}

#[tokio::test]
async fn a_slow_push_service_never_holds_the_message_that_pushes() {
    let slow = ScriptedSender::with_latency(Duration::from_secs(30));
    let push = push_rig_with(test_config(), slow);
    push.users(10, 6).await;
    let body = to_users("m-1", 10, json!({"title": "t"}));
    let handled = tokio::time::timeout(Duration::from_secs(5), push.rig.publish("q-1", body))
        .await
        .expect("the message's unit ends without waiting for a send");
    assert_eq!(handled.reports[0].delivered, 6);
    assert_eq!(
        push.sender.attempts(),
        0,
        "its sends are in a work item of their own"
    );
}
