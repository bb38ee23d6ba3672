//! Web Push surfaces through `serve` (docs/design.md: Web Push): devices registered and
//! removed over the socket and over HTTP, bad subscriptions refused with the field named and
//! nothing stored, push off (404 / 400 / `push_unavailable`), the VAPID key endpoint, and
//! the start-up refusals of half-set keys. Delivery (frames vs pushes) is push_delivery.rs.

use std::time::Duration;

use serde_json::{json, Value};
use switchboard_core::devices::DeviceId;

use super::harness::{assert_refused, serve_refused, token, Backend, Client, TestServer, LISTEN};

/// RFC 8291 §5's application server key pair (a matched pair, base64url).
const VAPID_PUBLIC: &str =
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
const VAPID_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
/// RFC 8291 §5's user agent keys: a valid `p256dh` (65 bytes) and `auth` (16 bytes).
const P256DH: &str =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

const VAPID: [(&str, &str); 3] = [
    ("VAPID_PUBLIC_KEY", VAPID_PUBLIC),
    ("VAPID_PRIVATE_KEY", VAPID_PRIVATE),
    ("VAPID_SUBJECT", "mailto:ops@example.com"),
];

async fn with_push(backend: Backend) -> TestServer {
    TestServer::start_with(backend, &[], &VAPID).await
}

fn subscription(endpoint: &str) -> Value {
    json!({"endpoint": endpoint, "expirationTime": null, "keys": {"p256dh": P256DH, "auth": AUTH}})
}

fn id_of(endpoint: &str) -> String {
    DeviceId::of_endpoint(endpoint).to_string()
}

/// `POST /v1/push/subscriptions`: status and body.
async fn post_subscription(server: &TestServer, token: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.http("/v1/push/subscriptions"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `DELETE /v1/push/subscriptions/{id}`: status.
async fn delete_subscription(server: &TestServer, token: &str, id: &str) -> u16 {
    reqwest::Client::new()
        .delete(server.http(&format!("/v1/push/subscriptions/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn subscribe_over_socket_and_http(backend: Backend) {
    let server = with_push(backend).await;
    let alice = token("acme", "alice", &[]);
    let mut socket = Client::connect(&server, &alice).await;

    let phone = "https://push.example.net/send/phone";
    let reply = socket
        .request(
            &json!({"action": "push_subscribe", "subscription": subscription(phone)}).to_string(),
        )
        .await;
    assert_eq!(
        reply,
        json!({"type": "push_subscribed", "id": id_of(phone)})
    );
    // Registering the same browser again renews its device: same id.
    let again = socket
        .request(
            &json!({"action": "push_subscribe", "subscription": subscription(phone)}).to_string(),
        )
        .await;
    assert_eq!(again["id"], id_of(phone));

    let laptop = "https://push.example.net/send/laptop";
    let (status, body) = post_subscription(&server, &alice, &subscription(laptop)).await;
    assert_eq!((status, &body), (201, &json!({"id": id_of(laptop)})));

    // Another user (same tenant) and another tenant's user with the same name cannot
    // remove alice's device.
    for other in [token("acme", "bob", &[]), token("globex", "alice", &[])] {
        assert_eq!(
            delete_subscription(&server, &other, &id_of(laptop)).await,
            404
        );
    }
    // The socket's device removed over HTTP, the HTTP one over the socket.
    assert_eq!(
        delete_subscription(&server, &alice, &id_of(phone)).await,
        204
    );
    assert_eq!(
        delete_subscription(&server, &alice, &id_of(phone)).await,
        404
    );
    let unsubscribe = json!({"action": "push_unsubscribe", "id": id_of(laptop)}).to_string();
    assert_eq!(
        socket.request(&unsubscribe).await,
        json!({"type": "push_unsubscribed"})
    );
    assert_eq!(
        socket.request(&unsubscribe).await,
        json!({"type": "error", "error": "unknown_device"})
    );
    let bad_id = json!({"action": "push_unsubscribe", "id": "not/an/id"}).to_string();
    let reply = socket.request(&bad_id).await;
    assert_eq!(reply["error"], "bad_request", "{reply}");
    assert!(
        reply["message"].as_str().unwrap().starts_with("id: "),
        "{reply}"
    );

    // Without a token: 401, nothing stored.
    let response = reqwest::Client::new()
        .post(server.http("/v1/push/subscriptions"))
        .json(&subscription(phone))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(
        delete_subscription(&server, &alice, &id_of(phone)).await,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_over_socket_and_http_memory() {
    subscribe_over_socket_and_http(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_over_socket_and_http_dynamodb() {
    subscribe_over_socket_and_http(Backend::Dynamodb).await;
}

/// Each bad subscription is refused over HTTP (400 naming the field) and over the socket
/// (`bad_request`, the field named under `subscription.`), and no device of its endpoint
/// exists afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_subscriptions_are_refused_and_nothing_is_stored() {
    let server = with_push(Backend::Memory).await;
    let alice = token("acme", "alice", &[]);
    let mut socket = Client::connect(&server, &alice).await;
    let good = "https://push.example.net/send/ok";
    let with_keys = |p256dh: &str, auth: &str| json!({"endpoint": good, "keys": {"p256dh": p256dh, "auth": auth}});
    // A 64-byte point and a 15-byte secret.
    let p256dh_64 = base64_url(&[4u8; 64]);
    let auth_15 = base64_url(&[7u8; 15]);
    let cases: Vec<(Value, &str)> = vec![
        (
            subscription("http://push.example.net/send/plain"),
            "endpoint",
        ),
        (subscription("https://10.0.0.7/send/private"), "endpoint"),
        (subscription("https://192.168.1.1/send/private"), "endpoint"),
        (
            subscription("https://127.0.0.1:8443/send/loopback"),
            "endpoint",
        ),
        (subscription("https://[::1]/send/loopback"), "endpoint"),
        (
            subscription("https://169.254.169.254/latest/meta-data"),
            "endpoint",
        ),
        (with_keys(&p256dh_64, AUTH), "keys.p256dh"),
        (with_keys(P256DH, &auth_15), "keys.auth"),
        (json!({"endpoint": good}), "keys"),
        (
            json!({"endpoint": good, "keys": {"p256dh": P256DH, "auth": AUTH}, "extra": 1}),
            "extra",
        ),
    ];
    for (body, field) in cases {
        let endpoint = body["endpoint"].as_str().unwrap().to_string();
        let (status, answer) = post_subscription(&server, &alice, &body).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["error"], "invalid_request", "{answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}: ")),
            "{body} → {message}"
        );

        let reply = socket
            .request(&json!({"action": "push_subscribe", "subscription": body}).to_string())
            .await;
        assert_eq!(reply["type"], "error", "{reply}");
        assert_eq!(reply["error"], "bad_request", "{reply}");
        let message = reply["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("subscription.{field}: ")),
            "{body} → {message}"
        );
        assert_eq!(
            delete_subscription(&server, &alice, &id_of(&endpoint)).await,
            404,
            "a device was stored for {body}"
        );
    }
    let reply = socket.request(r#"{"action":"push_subscribe"}"#).await;
    assert_eq!(reply["error"], "bad_request", "{reply}");

    // A body that is not JSON, and one over the bound.
    let response = reqwest::Client::new()
        .post(server.http("/v1/push/subscriptions"))
        .bearer_auth(&alice)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let huge = subscription(&format!("https://push.example.net/{}", "a".repeat(20_000)));
    assert_eq!(post_subscription(&server, &alice, &huge).await.0, 413);

    // `push` is for users and tenant targets: a broadcast with it is refused (the envelope
    // is checked before the caller's right to broadcast).
    let (status, body) = server
        .publish(
            &token("acme", "pub", &["publisher"]),
            &json!({"target": {"type": "broadcast"}, "data": {}, "push": {"title": "hi"}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().starts_with("push: "),
        "{body}"
    );
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vapid_public_key_is_served_without_a_token() {
    let server = with_push(Backend::Memory).await;
    let response = reqwest::get(server.http("/v1/push/vapid-public-key"))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"publicKey": VAPID_PUBLIC}));
}

/// Without VAPID keys: the push endpoints answer 404, the socket actions
/// `push_unavailable`, and a publish with `push` 400 naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_off_refuses_every_surface() {
    let server = TestServer::start(Backend::Memory).await;
    let alice = token("acme", "alice", &[]);
    let response = reqwest::get(server.http("/v1/push/vapid-public-key"))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "push is not configured", "{body}");
    let endpoint = "https://push.example.net/send/phone";
    let (status, body) = post_subscription(&server, &alice, &subscription(endpoint)).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (404, Some("push is not configured"))
    );
    assert_eq!(
        delete_subscription(&server, &alice, &id_of(endpoint)).await,
        404
    );

    let mut socket = Client::connect(&server, &alice).await;
    let reply = socket
        .request(
            &json!({"action": "push_subscribe", "subscription": subscription(endpoint)})
                .to_string(),
        )
        .await;
    assert_eq!(reply, json!({"type": "error", "error": "push_unavailable"}));
    let reply = socket
        .request(&json!({"action": "push_unsubscribe", "id": id_of(endpoint)}).to_string())
        .await;
    assert_eq!(reply, json!({"type": "error", "error": "push_unavailable"}));

    let (status, body) = server
        .publish(
            &token("acme", "pub", &["publisher"]),
            &json!({"target": {"type": "users", "tenant": "acme", "users": ["alice"]},
                    "data": {"n": 1}, "push": {"title": "hello"}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("push: ") && message.contains("Web Push is not configured"),
        "{message}"
    );
    // Nothing was enqueued: the socket gets no frame.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), socket.next_json())
            .await
            .is_err(),
        "a refused publish was delivered"
    );
}

/// Half-set or mismatched VAPID keys stop `serve` at start (exit 78) naming the variable.
#[test]
fn half_set_or_mismatched_vapid_keys_are_refused_at_start() {
    let secret = ("JWT_HS256_SECRET", super::harness::SECRET);
    let cases: [(Vec<(&str, &str)>, &str); 4] = [
        (vec![secret, VAPID[0]], "VAPID_PRIVATE_KEY"),
        (vec![secret, VAPID[0], VAPID[1]], "VAPID_SUBJECT"),
        (vec![secret, VAPID[1], VAPID[2]], "VAPID_PUBLIC_KEY"),
        (
            vec![secret, ("VAPID_PUBLIC_KEY", P256DH), VAPID[1], VAPID[2]],
            "VAPID_PUBLIC_KEY",
        ),
    ];
    for (envs, setting) in cases {
        let (status, stderr) = serve_refused(&LISTEN, &envs);
        assert_refused(status, &stderr, setting);
        assert!(
            !stderr.contains(VAPID_PRIVATE),
            "the private key is echoed: {stderr}"
        );
    }
}
