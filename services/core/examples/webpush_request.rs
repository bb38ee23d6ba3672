//! Sends one notification through the real [`WebPushSender`] to the fake push service
//! (`testkit::push_service`) and prints the request the push service received, as JSON:
//! `{"endpoint","vapidPublicKey","subject","payload","headers":{…},"body"}` (body base64url).
//! `scripts/webpush-check.py` generates the subscription's key pair, runs this, and
//! decrypts and verifies the request with implementations nobody here wrote.
//!
//! ```text
//! cargo run -q -p switchboard-core --features testkit --example webpush_request -- <p256dh> <auth>
//! ```

use std::error::Error;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::json;
use switchboard_core::devices::{Device, DeviceId, EndpointPolicy, Subscription};
use switchboard_core::testkit::push_service::PushService;
use switchboard_core::webpush::{
    Notification, PushConfig, PushSender, Urgency, VapidKeyPair, VapidKeys, WebPushSender,
};
use switchboard_model::{TenantId, UserId};

const SUBJECT: &str = "mailto:ops@example.com";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [p256dh, auth] = args.as_slice() else {
        return Err("usage: webpush_request <p256dh> <auth>".into());
    };
    let service = PushService::start().await;
    let endpoint = service.endpoint("wpush/v2/check-device");
    let pair = VapidKeyPair::generate()?;
    let config = PushConfig {
        vapid: Some(VapidKeys::parse(
            &pair.public_key,
            &pair.private_key,
            SUBJECT,
        )?),
        endpoint_policy: EndpointPolicy::AllowLoopback,
        ..PushConfig::from_lookup(|_| None)?
    };
    let cert = std::env::temp_dir().join(format!("webpush-check-{}.pem", std::process::id()));
    std::fs::write(&cert, service.cert_pem())?;
    let sender = WebPushSender::with_cert_file(&config, cert.to_str());
    let _ = std::fs::remove_file(&cert);
    let sender = sender?;

    let subscription = json!({"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}});
    let now = time::OffsetDateTime::now_utc();
    let device = Device {
        tenant: TenantId::parse("acme")?,
        user: UserId::parse("alice")?,
        id: DeviceId::of_endpoint(&endpoint),
        subscription: Subscription::parse(&subscription, EndpointPolicy::AllowLoopback)?,
        registered_at: now,
        expires_at: now.unix_timestamp() + 86_400,
    };
    let payload =
        json!({"id": "m-check", "tenant": "acme", "title": "Checked", "body": "by Python"})
            .to_string();
    let notification = Notification {
        payload: payload.clone(),
        ttl_secs: 60,
        urgency: Urgency::High,
        topic: Some("m-check".into()),
    };
    sender.send(&device, &notification).await?;
    let request = service
        .requests()
        .pop()
        .ok_or("the push service received nothing")?;
    let headers: serde_json::Map<String, serde_json::Value> = request
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), json!(value)))
        .collect();
    let captured = json!({
        "endpoint": endpoint,
        "vapidPublicKey": pair.public_key,
        "subject": SUBJECT,
        "payload": payload,
        "headers": headers,
        "body": URL_SAFE_NO_PAD.encode(&request.body),
    });
    println!("{captured}");
    Ok(())
}
