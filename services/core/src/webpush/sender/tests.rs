//! The sender against the fake push service (`testkit::push_service`).

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use switchboard_model::{TenantId, UserId};
use time::OffsetDateTime;

use super::*;
use crate::devices::{DeviceId, Subscription};
use crate::testkit::push_service::{Answer, PushService};
use crate::webpush::{Urgency, VapidKeyPair};

fn config(policy: EndpointPolicy, concurrency: usize, timeout: Duration) -> PushConfig {
    let pair = VapidKeyPair::generate().unwrap();
    PushConfig {
        vapid: Some(
            VapidKeys::parse(
                &pair.public_key,
                &pair.private_key,
                "mailto:ops@example.com",
            )
            .unwrap(),
        ),
        max_devices_per_user: 10,
        device_ttl: Duration::from_secs(86_400),
        concurrency_per_service: concurrency,
        timeout,
        endpoint_policy: policy,
    }
}

/// A sender trusting `service`'s certificate (through a file, as `SSL_CERT_FILE`).
fn sender(service: &PushService, config: &PushConfig) -> WebPushSender {
    let path = std::env::temp_dir().join(format!("push-cert-{}.pem", uuid::Uuid::new_v4()));
    std::fs::write(&path, service.cert_pem()).unwrap();
    let sender = WebPushSender::with_cert_file(config, path.to_str()).unwrap();
    let _ = std::fs::remove_file(path);
    sender
}

/// A device at `endpoint` with a real P-256 key and a random auth secret.
fn device(endpoint: &str) -> Device {
    let p256dh = VapidKeyPair::generate().unwrap().public_key;
    let auth = URL_SAFE_NO_PAD.encode(&uuid::Uuid::new_v4().as_bytes()[..]);
    let value = serde_json::json!({"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}});
    Device {
        tenant: TenantId::parse("acme").unwrap(),
        user: UserId::parse("alice").unwrap(),
        id: DeviceId::of_endpoint(endpoint),
        subscription: Subscription::parse(&value, EndpointPolicy::AllowLoopback).unwrap(),
        registered_at: OffsetDateTime::now_utc(),
        expires_at: OffsetDateTime::now_utc().unix_timestamp() + 86_400,
    }
}

fn notification() -> Notification {
    Notification {
        payload: r#"{"id":"m1","title":"Hi"}"#.into(),
        ttl_secs: 3_600,
        urgency: Urgency::High,
        topic: Some("m1".into()),
    }
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn posts_an_encrypted_vapid_signed_notification() {
    let service = PushService::start().await;
    let config = config(EndpointPolicy::AllowLoopback, 50, 10 * SECOND);
    let sender = sender(&service, &config);
    sender
        .send(&device(&service.endpoint("d1")), &notification())
        .await
        .unwrap();
    let requests = service.wait_for_requests(1, 5 * SECOND).await;
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "d1");
    assert_eq!(request.header("ttl"), Some("3600"));
    assert_eq!(request.header("urgency"), Some("high"));
    assert_eq!(request.header("topic"), Some("m1"));
    assert_eq!(request.header("content-encoding"), Some("aes128gcm"));
    assert_eq!(
        request.header("content-type"),
        Some("application/octet-stream")
    );
    let vapid = config.vapid.as_ref().unwrap();
    assert_eq!(
        request.header("authorization"),
        Some(vapid.authorization(&service.origin()).unwrap().as_str())
    );
    // header (86) + payload + delimiter (1) + tag (16)
    assert_eq!(request.body.len(), 86 + notification().payload.len() + 17);
}

#[tokio::test]
async fn maps_each_answer_of_the_push_service() {
    let service = PushService::start().await;
    let sender = sender(
        &service,
        &config(EndpointPolicy::AllowLoopback, 50, 10 * SECOND),
    );
    let cases = [
        (200, Ok(())),
        (201, Ok(())),
        (202, Ok(())),
        (404, Err(SendError::Gone)),
        (410, Err(SendError::Gone)),
        (413, Err(SendError::PayloadTooLarge)),
        (429, Err(SendError::Throttled)),
        (
            400,
            Err(SendError::Fatal("push service answered 400".into())),
        ),
        (
            403,
            Err(SendError::Fatal("push service answered 403".into())),
        ),
        (
            500,
            Err(SendError::Transient("push service answered 500".into())),
        ),
        (
            503,
            Err(SendError::Transient("push service answered 503".into())),
        ),
    ];
    for (status, expected) in cases {
        let path = format!("s{status}");
        service.answer(&path, Answer::status(status));
        let result = sender
            .send(&device(&service.endpoint(&path)), &notification())
            .await;
        assert_eq!(result, expected, "answer {status}");
    }
}

#[tokio::test]
async fn keeps_at_most_the_concurrency_per_push_service_in_flight() {
    let service = PushService::start().await;
    service.set_delay(Duration::from_millis(200));
    let sender = sender(
        &service,
        &config(EndpointPolicy::AllowLoopback, 3, 10 * SECOND),
    );
    let devices: Vec<Device> = (0..12)
        .map(|i| device(&service.endpoint(&format!("d{i}"))))
        .collect();
    let notification = notification();
    let sends = devices.iter().map(|d| sender.send(d, &notification));
    let results = futures::future::join_all(sends).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(service.request_count(), 12);
    assert_eq!(service.max_in_flight(), 3);
}

#[tokio::test]
async fn a_push_service_slower_than_the_timeout_is_a_timeout() {
    let service = PushService::start().await;
    service.answer("slow", Answer::delayed(201, 5 * SECOND));
    let sender = sender(&service, &config(EndpointPolicy::AllowLoopback, 50, SECOND));
    let started = std::time::Instant::now();
    let result = sender
        .send(&device(&service.endpoint("slow")), &notification())
        .await;
    assert_eq!(result, Err(SendError::Timeout));
    assert!(started.elapsed() < 4 * SECOND, "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let service = PushService::start().await;
    let sender = sender(
        &service,
        &config(EndpointPolicy::AllowLoopback, 50, 5 * SECOND),
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let result = sender
        .send(
            &device(&format!("https://127.0.0.1:{port}/d")),
            &notification(),
        )
        .await;
    assert!(matches!(result, Err(SendError::Transient(_))), "{result:?}");
}

#[tokio::test]
async fn the_public_policy_never_connects_to_loopback_by_address_or_by_name() {
    let service = PushService::start().await;
    let sender = sender(&service, &config(EndpointPolicy::Public, 50, 5 * SECOND));
    let by_address = service.endpoint("d");
    let by_name = format!("https://localhost:{}/d", service.addr().port());
    for endpoint in [by_address, by_name] {
        let result = sender.send(&device(&endpoint), &notification()).await;
        assert!(
            matches!(result, Err(SendError::Fatal(_))),
            "{endpoint}: {result:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(service.request_count(), 0);
}

#[test]
fn the_address_check_refuses_every_non_public_range() {
    for ip in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::",
        "ff02::1",
        "::ffff:10.0.0.1",
    ] {
        let ip: IpAddr = ip.parse().unwrap();
        assert!(allowed(ip, EndpointPolicy::Public).is_err(), "{ip}");
    }
    assert!(allowed("127.0.0.1".parse().unwrap(), EndpointPolicy::AllowLoopback).is_ok());
    assert!(allowed("10.0.0.1".parse().unwrap(), EndpointPolicy::AllowLoopback).is_err());
    assert!(allowed("8.8.8.8".parse().unwrap(), EndpointPolicy::Public).is_ok());
}

#[test]
fn an_unreadable_or_empty_certificate_file_is_refused_naming_the_variable() {
    let config = config(EndpointPolicy::Public, 50, SECOND);
    let missing = WebPushSender::with_cert_file(&config, Some("/nonexistent/ca.pem"));
    assert!(missing
        .err()
        .unwrap()
        .to_string()
        .starts_with("SSL_CERT_FILE"));
    let path = std::env::temp_dir().join(format!("empty-{}.pem", uuid::Uuid::new_v4()));
    std::fs::write(&path, "not a certificate").unwrap();
    let empty = WebPushSender::with_cert_file(&config, path.to_str());
    let _ = std::fs::remove_file(&path);
    assert!(empty
        .err()
        .unwrap()
        .to_string()
        .starts_with("SSL_CERT_FILE"));
}
