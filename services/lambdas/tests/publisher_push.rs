#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Lambda publisher with Web Push (issue 22, "Done when": the Lambda publisher test):
//! the real handler with real-shaped SQS events, the real `ApiGatewayPoster` against a fake
//! management endpoint, the real `SqsQueue` against a fake SQS endpoint (the rig is in
//! `support/`), and the real `WebPushSender` against a fake push service over HTTPS on
//! 127.0.0.1 (`switchboard_core::testkit::push_service`, its self-signed certificate
//! trusted through `SSL_CERT_FILE`, as the push client reads it).
//!
//! 10 users in a `users` target, 6 with a live connection, all 10 with a device: exactly 6
//! posts and 4 pushes, nobody reached twice; the receipt and the message's EMF document say
//! delivered 6, pushed 4.

#[allow(dead_code)]
mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use support::{config, rig_with_push, Rig, DLQ};
use switchboard_core::devices::{
    Device, DeviceId, DeviceStore, EndpointPolicy, MemoryDeviceStore, Subscription,
};
use switchboard_core::receipts::ReceiptStatus;
use switchboard_core::roster::{ConnectionRecord, RosterStore};
use switchboard_core::testkit::push_service::PushService;
use switchboard_core::webpush::{PushConfig, WebPush, WebPushSender};
use switchboard_model::{TenantId, UserId};
use time::OffsetDateTime;

const TENANT: &str = "acme";
const USERS: usize = 10;
const ONLINE: usize = 6;

/// A user agent's key pair from RFC 8291's example (section 5): a valid P-256 point and a
/// 16-byte auth secret, so the sender can encrypt for it.
const P256DH: &str =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

fn user(i: usize) -> String {
    format!("user-{i}")
}

fn connection(i: usize) -> String {
    format!("conn-{i}")
}

/// The fake push service and a file holding its certificate (what `SSL_CERT_FILE` names
/// for the Lambda's push client).
async fn push_service() -> (PushService, tempfile_path::Path) {
    let service = PushService::start().await;
    let path = tempfile_path::Path::new("publisher-push-ca.pem");
    std::fs::write(path.as_ref(), service.cert_pem()).unwrap();
    (service, path)
}

/// A temporary file path removed on drop.
mod tempfile_path {
    pub struct Path(std::path::PathBuf);

    impl Path {
        pub fn new(name: &str) -> Self {
            Self(std::env::temp_dir().join(format!("{}-{name}", std::process::id())))
        }
    }

    impl AsRef<std::path::Path> for Path {
        fn as_ref(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl Drop for Path {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// Web Push as the Lambda builds it from its environment (`SSL_CERT_FILE` = `ca`), with
/// the fake service's loopback endpoints allowed and the devices in memory.
fn web_push(devices: Arc<MemoryDeviceStore>, ca: &tempfile_path::Path) -> WebPush {
    let keys = switchboard_core::webpush::VapidKeyPair::generate().unwrap();
    let env = [
        ("VAPID_PUBLIC_KEY", keys.public_key.clone()),
        ("VAPID_PRIVATE_KEY", keys.private_key.clone()),
        ("VAPID_SUBJECT", "mailto:ops@example.com".to_string()),
    ];
    let lookup = |name: &str| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
    let config = PushConfig {
        endpoint_policy: EndpointPolicy::AllowLoopback,
        ..PushConfig::from_lookup(lookup).unwrap()
    };
    assert!(config.vapid.is_some());
    WebPush {
        devices,
        sender: Arc::new(WebPushSender::with_cert_file(&config, ca.as_ref().to_str()).unwrap()),
        config,
    }
}

async fn register_devices(devices: &MemoryDeviceStore, service: &PushService) {
    let now = OffsetDateTime::now_utc();
    for i in 0..USERS {
        let subscription = Subscription::parse(
            &json!({"endpoint": service.endpoint(&user(i)), "keys": {"p256dh": P256DH, "auth": AUTH}}),
            EndpointPolicy::AllowLoopback,
        )
        .unwrap();
        let device = Device {
            tenant: TenantId::parse(TENANT).unwrap(),
            user: UserId::parse(user(i)).unwrap(),
            id: DeviceId::of_endpoint(&subscription.endpoint),
            subscription,
            registered_at: now,
            expires_at: now.unix_timestamp() + 86_400,
        };
        devices.put(&device, 10).await.unwrap();
    }
}

async fn connect_first_users(rig: &Rig) {
    for i in 0..ONLINE {
        let record = ConnectionRecord::from_raw(
            &connection(i),
            TENANT,
            &user(i),
            vec![],
            OffsetDateTime::now_utc() - time::Duration::minutes(5),
            7_500,
        )
        .unwrap();
        rig.roster.put(&record).await.unwrap();
    }
}

fn message() -> String {
    let users: Vec<String> = (0..USERS).map(user).collect();
    json!({
        "id": "m-push",
        "target": {"type": "users", "tenant": TENANT, "users": users},
        "data": {"hello": "world"},
        "push": {"title": "New message", "body": "hello"}
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_online_users_get_the_frame_and_the_four_others_a_push_nobody_both() {
    let (service, ca) = push_service().await;
    let devices = Arc::new(MemoryDeviceStore::new(1_000));
    register_devices(&devices, &service).await;
    let mut rig = rig_with_push(config(), web_push(devices, &ca)).await;
    connect_first_users(&rig).await;

    let response = rig.invoke(&[message()], None).await;
    assert_eq!(response, json!({"batchItemFailures": []}));
    // Anything the publisher left for later (retry items) runs too.
    rig.drain_queue().await;

    let posts = rig.gateway.posts();
    let posted: BTreeSet<String> = posts.keys().cloned().collect();
    assert_eq!(
        posted,
        (0..ONLINE).map(connection).collect::<BTreeSet<_>>(),
        "{posts:?}"
    );
    assert!(
        posts.values().all(|&n| n == 1),
        "each posted once: {posts:?}"
    );

    let requests = service
        .wait_for_requests(USERS - ONLINE, Duration::from_secs(10))
        .await;
    // The invocations are over: every send they made has been answered.
    assert_eq!(service.request_count(), USERS - ONLINE, "no other push");
    let mut pushed: Vec<String> = requests.iter().map(|r| r.path.clone()).collect();
    pushed.sort();
    assert_eq!(
        pushed,
        (ONLINE..USERS).map(user).collect::<Vec<_>>(),
        "one push to each offline user's device, none to an online one"
    );
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(request.header("content-encoding"), Some("aes128gcm"));
        assert!(request
            .header("authorization")
            .is_some_and(|v| v.starts_with("vapid t=")));
    }
    // Nobody reached twice: the posted users and the pushed users do not meet, and
    // together they are the target's users.
    let posted_users: BTreeSet<String> = (0..ONLINE).map(user).collect();
    let pushed_users: BTreeSet<String> = pushed.iter().cloned().collect();
    assert!(posted_users.is_disjoint(&pushed_users));
    assert_eq!(posted_users.len() + pushed_users.len(), USERS);
    assert!(rig.sqs.take(DLQ).is_empty(), "nothing dead-lettered");

    let receipt = rig.receipt(TENANT, "m-push").await;
    assert_eq!(receipt.status(), ReceiptStatus::Delivered, "{receipt:?}");
    assert_eq!((receipt.delivered, receipt.pushed), (6, 4), "{receipt:?}");

    let documents: Vec<Value> = rig
        .emf_documents()
        .into_iter()
        .filter(|d| d["id"] == "m-push")
        .collect();
    let delivered: f64 = documents
        .iter()
        .map(|d| d["Delivered"].as_f64().unwrap())
        .sum();
    let pushed: f64 = documents
        .iter()
        .map(|d| d["Pushed"].as_f64().unwrap_or(0.0))
        .sum();
    assert_eq!((delivered, pushed), (6.0, 4.0), "{documents:?}");
}
