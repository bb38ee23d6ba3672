//! Web Push benchmark (a command, not a test: it prints figures and asserts no times).
//! Starts the release `switchboard serve --dev` with fresh VAPID keys and a fake push
//! service (`testkit::push_service`, HTTPS on 127.0.0.1, its certificate in
//! `SSL_CERT_FILE`) answering every request after `delay` ms (50 by default), registers
//! one device for each of N offline users (10,000 by default) over the HTTP API, then:
//!   1. one tenant-wide message with `push`: N pushes, paged by the server (device pages of
//!      `FANOUT_SHARD_SIZE`): pushes/s from the publish to the push service's N-th request;
//!   2. the latency (POST until the frame arrives, p50/p99) to one online user of M
//!      messages (1,000 by default) whose `users` target also names N/M offline users:
//!      without `push`, then with `push` (N more pushes in flight while they are measured,
//!      and pushes/s again), then without once more. Goal: p99 with push ≤ 1.2 × without.
//!
//! Client, server and push service share this machine's CPUs. The server inherits this
//! process's environment (e.g. `PUSH_CONCURRENCY_PER_SERVICE`, default 50: with 50 ms
//! answers the ceiling is 1,000 pushes/s to one push service); its binary is
//! `SWITCHBOARD_BIN`, else `switchboard` beside this example's folder (target/release).
//! Run: `bash scripts/bench-push.sh [N] [M] [delay ms]`, or
//!   cargo build --release --bin switchboard --example push_bench
//!   target/release/examples/push_bench 10000 1000 50

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // shared by the benchmark commands; each uses part of it
mod support;

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use futures::{stream, StreamExt};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{json, Value};
use switchboard_core::testkit::push_service::PushService;
use tokio_tungstenite::tungstenite::Message;

use support::{connect, publish, raise_open_files, token, Server, Socket};

const TENANT: &str = "bench";
/// No figure is waited for longer than this.
const PATIENCE: Duration = Duration::from_secs(300);

/// A fresh P-256 key pair: (secret scalar, uncompressed public point), base64url.
fn p256_pair() -> (String, String) {
    loop {
        let bytes: [u8; 32] = rand::random();
        if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
            let public = secret.public_key().to_encoded_point(false);
            return (
                URL_SAFE_NO_PAD.encode(secret.to_bytes()),
                URL_SAFE_NO_PAD.encode(public.as_bytes()),
            );
        }
    }
}

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// Waits until the push service has received `n` requests: the time it took from `since`.
async fn pushes_reach(service: &PushService, n: usize, since: Instant) -> Duration {
    while service.request_count() < n {
        if since.elapsed() > PATIENCE {
            panic!(
                "{} of {n} pushes after {PATIENCE:?}",
                service.request_count()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    since.elapsed()
}

/// Publishes each envelope and waits for its frame on `socket`: the latencies, sorted.
async fn latencies(
    http: &reqwest::Client,
    server: &Server,
    socket: &mut Socket,
    envelopes: &[Value],
) -> Vec<Duration> {
    let publisher = token(TENANT, "backend", &["publisher"]);
    let url = server.publish_url();
    let mut out = Vec::with_capacity(envelopes.len());
    for envelope in envelopes {
        let id = format!("\"{}\"", envelope["id"].as_str().unwrap());
        let sent = Instant::now();
        assert_eq!(publish(http, &url, &publisher, envelope).await, 202);
        loop {
            match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) if text.as_str().contains(&id) => break,
                Ok(Some(Ok(_))) => continue,
                other => panic!("no frame for {id}: {other:?}"),
            }
        }
        out.push(sent.elapsed());
    }
    out.sort();
    out
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1);
    sorted[i].as_secs_f64() * 1e3
}

fn print_latency(label: &str, sorted: &[Duration]) -> f64 {
    let p99 = pct(sorted, 0.99);
    println!(
        "  {label}: {} messages, p50 {:.2} ms, p99 {p99:.2} ms, max {:.2} ms",
        sorted.len(),
        pct(sorted, 0.50),
        sorted.last().unwrap().as_secs_f64() * 1e3
    );
    p99
}

#[tokio::main]
async fn main() {
    let n = arg(1, 10_000) as usize;
    let m = (arg(2, 1_000) as usize).clamp(1, n);
    let delay = Duration::from_millis(arg(3, 50));
    let files = raise_open_files();

    let service = PushService::start().await;
    service.set_delay(delay);
    service.set_record_limit(0);
    let dir = std::env::temp_dir().join(format!("push-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("push-service.pem");
    std::fs::write(&cert, service.cert_pem()).unwrap();
    let (private, public) = p256_pair();
    let server = Server::start_args(
        &["--dev"],
        &[
            ("VAPID_PUBLIC_KEY", public.as_str()),
            ("VAPID_PRIVATE_KEY", private.as_str()),
            ("VAPID_SUBJECT", "mailto:bench@example.com"),
            ("SSL_CERT_FILE", cert.to_str().unwrap()),
        ],
    );
    let http = reqwest::Client::new();

    // N offline users, one device each.
    let started = Instant::now();
    let register = format!("http://{}/v1/push/subscriptions", server.addr);
    let registered = stream::iter(0..n)
        .map(|i| {
            let (http, register, service) = (&http, &register, &service);
            async move {
                let user = format!("off-{i}");
                let (_, p256dh) = p256_pair();
                let auth = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
                let subscription = json!({
                    "endpoint": service.endpoint(&format!("bench/{user}")),
                    "keys": {"p256dh": p256dh, "auth": auth},
                });
                let response = http
                    .post(register)
                    .bearer_auth(token(TENANT, &user, &[]))
                    .json(&subscription)
                    .send()
                    .await
                    .unwrap();
                response.status().as_u16() == 201
            }
        })
        .buffer_unordered(64)
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await;
    println!(
        "push benchmark: {registered}/{n} devices registered in {:.2} s; push service answers after {} ms; open-files limit {files:?}",
        started.elapsed().as_secs_f64(),
        delay.as_millis()
    );

    // 1. One tenant-wide message: N pushes.
    let publisher = token(TENANT, "backend", &["publisher"]);
    let push = json!({"title": "Bench", "body": "a notification"});
    let started = Instant::now();
    let envelope = json!({"id": "tenant-1", "target": {"type": "tenant", "tenant": TENANT}, "data": 1, "push": push});
    assert_eq!(
        publish(&http, &server.publish_url(), &publisher, &envelope).await,
        202
    );
    let took = pushes_reach(&service, registered, started).await;
    println!(
        "1. tenant target: {registered} pushes in {:.2} s = {:.0} pushes/s (most in flight at the push service: {})",
        took.as_secs_f64(),
        registered as f64 / took.as_secs_f64(),
        service.max_in_flight()
    );

    // 2. Latency to an online user of messages that also name N/M offline users each.
    let mut online = connect(&server.ws(&token(TENANT, "online", &[])))
        .await
        .unwrap();
    let per = n / m;
    let envelopes = |round: &str, with_push: bool| -> Vec<Value> {
        (0..m)
            .map(|i| {
                let mut users = vec!["online".to_string()];
                users.extend((0..per).map(|k| format!("off-{}", (i * per + k) % n)));
                let mut envelope = json!({"id": format!("{round}-{i}"), "target": {"type": "users", "tenant": TENANT, "users": users}, "data": i});
                if with_push {
                    envelope["push"] = push.clone();
                }
                envelope
            })
            .collect()
    };
    // Warm-up, not measured.
    latencies(
        &http,
        &server,
        &mut online,
        &envelopes("warm", false)[..m.min(100)],
    )
    .await;
    println!(
        "2. publish->frame latency to one online user, each message naming {per} offline users:"
    );
    let without = latencies(&http, &server, &mut online, &envelopes("off-a", false)).await;
    let p99_without = print_latency("without push", &without);
    let before = service.request_count();
    let started = Instant::now();
    let with = latencies(&http, &server, &mut online, &envelopes("on", true)).await;
    let p99_with = print_latency(&format!("with push ({} pushes)", m * per), &with);
    let took = pushes_reach(&service, before + m * per, started).await;
    println!(
        "  those {} pushes: {:.2} s from the first publish = {:.0} pushes/s",
        m * per,
        took.as_secs_f64(),
        (m * per) as f64 / took.as_secs_f64()
    );
    let again = latencies(&http, &server, &mut online, &envelopes("off-b", false)).await;
    let p99_again = print_latency("without push, again", &again);
    let baseline = p99_without.max(p99_again);
    println!(
        "  p99 with push / without: {:.2} × (the higher of the two runs without), goal ≤ 1.2 ×",
        p99_with / baseline
    );
    let _ = std::fs::remove_dir_all(&dir);
}
