//! The push API through its router, with real signed tokens.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::*;
use crate::auth::AuthConfig;
use crate::devices::{DeviceStore, MemoryDeviceStore};
use crate::webpush::{Notification, PushConfig, PushSender, SendError, VapidKeys};

const SECRET: &[u8] = b"push-api-test-secret-of-32-bytes!!";
/// RFC 8291 §5's application server keys and user agent keys.
pub(crate) const VAPID_PUBLIC: &str =
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
const VAPID_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
pub(crate) const P256DH: &str =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
pub(crate) const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

/// A sender that is never asked to send (registering sends nothing).
struct NoSends;

#[async_trait]
impl PushSender for NoSends {
    async fn send(&self, _: &Device, _: &Notification) -> Result<(), SendError> {
        Err(SendError::Fatal("no sends in these tests".into()))
    }
}

/// Push on, in memory, at most `max_devices` per user.
pub(crate) fn web_push(max_devices: usize) -> (WebPush, Arc<MemoryDeviceStore>) {
    let devices = Arc::new(MemoryDeviceStore::new(1_000));
    let config = PushConfig {
        vapid: Some(
            VapidKeys::parse(VAPID_PUBLIC, VAPID_PRIVATE, "mailto:ops@example.com").unwrap(),
        ),
        max_devices_per_user: max_devices,
        device_ttl: Duration::from_secs(60 * 86_400),
        concurrency_per_service: 50,
        timeout: Duration::from_secs(10),
        endpoint_policy: crate::devices::EndpointPolicy::Public,
    };
    let push = WebPush {
        devices: devices.clone(),
        sender: Arc::new(NoSends),
        config,
    };
    (push, devices)
}

pub(crate) fn subscription(endpoint: &str) -> Value {
    json!({"endpoint": endpoint, "keys": {"p256dh": P256DH, "auth": AUTH}})
}

struct Api {
    base: String,
    client: reqwest::Client,
}

async fn serve(push: Option<WebPush>) -> Api {
    let verifier = Arc::new(
        Verifier::new(AuthConfig::with_hs256_secret(SECRET))
            .await
            .unwrap(),
    );
    let router = PushApi { verifier, push }.router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Api {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
    }
}

fn token(tenant: &str, user: &str) -> String {
    crate::testkit::token(SECRET, tenant, user, &[], Duration::from_secs(300))
}

impl Api {
    async fn post(&self, token: Option<&str>, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}/v1/push/subscriptions", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn delete(&self, token: &str, id: &str) -> (u16, Value) {
        let response = self
            .client
            .delete(format!("{}/v1/push/subscriptions/{id}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get_key(&self) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}/v1/push/vapid-public-key", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }
}

async fn devices_of(store: &MemoryDeviceStore, tenant: &str, user: &str) -> Vec<Device> {
    store
        .list_users(
            &switchboard_model::TenantId::parse(tenant).unwrap(),
            &[switchboard_model::UserId::parse(user).unwrap()],
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_subscription_becomes_a_device_of_the_callers_tenant_and_user() {
    let (push, store) = web_push(10);
    let api = serve(Some(push)).await;
    let endpoint = "https://push.example.net/send/1";
    let before = OffsetDateTime::now_utc().unix_timestamp();
    let (status, body) = api
        .post(
            Some(&token("acme", "alice")),
            subscription(endpoint).to_string(),
        )
        .await;
    let id = DeviceId::of_endpoint(endpoint);
    assert_eq!((status, body), (201, json!({"id": id})));
    let stored = devices_of(&store, "acme", "alice").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, id);
    assert_eq!(stored[0].subscription.endpoint, endpoint);
    let ttl = 60 * 86_400;
    assert!((before + ttl..=before + ttl + 5).contains(&stored[0].expires_at));
    assert!(devices_of(&store, "globex", "alice").await.is_empty());

    // Again: the same device, renewed.
    let (status, body) = api
        .post(
            Some(&token("acme", "alice")),
            subscription(endpoint).to_string(),
        )
        .await;
    assert_eq!((status, body), (201, json!({"id": id})));
    assert_eq!(devices_of(&store, "acme", "alice").await.len(), 1);
}

#[tokio::test]
async fn a_user_keeps_at_most_the_configured_devices_the_oldest_goes() {
    let (push, store) = web_push(2);
    let api = serve(Some(push)).await;
    let alice = token("acme", "alice");
    for n in 1..=3 {
        let endpoint = format!("https://push.example.net/send/{n}");
        assert_eq!(
            api.post(Some(&alice), subscription(&endpoint).to_string())
                .await
                .0,
            201
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut kept: Vec<String> = devices_of(&store, "acme", "alice")
        .await
        .into_iter()
        .map(|d| d.subscription.endpoint)
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        [
            "https://push.example.net/send/2",
            "https://push.example.net/send/3"
        ]
    );
}

#[tokio::test]
async fn bad_requests_name_the_field_and_store_nothing() {
    let (push, store) = web_push(10);
    let api = serve(Some(push)).await;
    let alice = token("acme", "alice");
    let cases = [
        (subscription("http://push.example.net/x").to_string(), "endpoint: "),
        (subscription("https://10.1.2.3/x").to_string(), "endpoint: "),
        (
            json!({"endpoint": "https://push.example.net/x", "keys": {"p256dh": P256DH, "auth": "AAAA"}})
                .to_string(),
            "keys.auth: ",
        ),
        ("[]".to_string(), "subscription: "),
        ("{".to_string(), "body: "),
    ];
    for (body, field) in cases {
        let (status, answer) = api.post(Some(&alice), body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"], "invalid_request");
        assert!(
            answer["message"].as_str().unwrap().starts_with(field),
            "{body}: {answer}"
        );
    }
    assert!(devices_of(&store, "acme", "alice").await.is_empty());
    // Unauthenticated: 401 before the body is read.
    let (status, _) = api
        .post(None, subscription("https://push.example.net/x").to_string())
        .await;
    assert_eq!(status, 401);
    let (status, _) = api
        .post(
            Some("not.a.token"),
            subscription("https://push.example.net/x").to_string(),
        )
        .await;
    assert_eq!(status, 401);
    // Over the bound: 413.
    let huge = subscription(&format!(
        "https://push.example.net/{}",
        "a".repeat(MAX_SUBSCRIPTION_BYTES)
    ));
    assert_eq!(api.post(Some(&alice), huge.to_string()).await.0, 413);
    assert!(devices_of(&store, "acme", "alice").await.is_empty());
}

#[tokio::test]
async fn delete_removes_only_the_callers_own_device() {
    let (push, store) = web_push(10);
    let api = serve(Some(push)).await;
    let endpoint = "https://push.example.net/send/1";
    let alice = token("acme", "alice");
    api.post(Some(&alice), subscription(endpoint).to_string())
        .await;
    let id = DeviceId::of_endpoint(endpoint).to_string();
    for other in [token("acme", "bob"), token("globex", "alice")] {
        let (status, body) = api.delete(&other, &id).await;
        assert_eq!(status, 404, "{body}");
    }
    assert_eq!(devices_of(&store, "acme", "alice").await.len(), 1);
    assert_eq!(api.delete(&alice, &id).await.0, 204);
    assert_eq!(api.delete(&alice, &id).await.0, 404);
    assert_eq!(api.delete(&alice, "no%2Fsuch").await.0, 404);
    assert!(devices_of(&store, "acme", "alice").await.is_empty());
}

#[tokio::test]
async fn the_vapid_key_is_public_and_push_off_is_404() {
    let (push, _) = web_push(10);
    let on = serve(Some(push)).await;
    assert_eq!(
        on.get_key().await,
        (200, json!({"publicKey": VAPID_PUBLIC}))
    );

    let off = serve(None).await;
    let not_configured = |(status, body): (u16, Value)| {
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["message"], NOT_CONFIGURED, "{body}");
    };
    not_configured(off.get_key().await);
    let alice = token("acme", "alice");
    not_configured(
        off.post(
            Some(&alice),
            subscription("https://push.example.net/x").to_string(),
        )
        .await,
    );
    not_configured(off.delete(&alice, "abc").await);
}
