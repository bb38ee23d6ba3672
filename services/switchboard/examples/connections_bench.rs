//! Connection benchmark (a command, not a test). Starts the release `switchboard serve`,
//! opens N idle WebSocket connections, and prints
//!   - the server's resident memory per connection (VmRSS growth / N),
//!   - publish→frame latency (HTTP POST until the frame arrives) p50/p99 to one user while
//!     those connections are attached,
//!   - with `resume` as the third argument: the time to resume 500 missed messages;
//!   - with `broadcast` as the third argument: 10 tenant-wide messages to all N+1
//!     connections (all of tenant `bench`, every one reading), the server's CPU time per
//!     delivered frame (utime+stime from /proc/<pid>/stat) and deliveries per second.
//!
//! The server inherits this process's environment: `HISTORY_TTL_SECS=0` or
//! `RECEIPT_TTL_SECS=0` measures the same latency with history or receipts off.
//!
//! Run through `scripts/bench-connections.sh [N] [messages]` (raises the open-files limit):
//!   cargo build --release --bin switchboard --example connections_bench
//!   target/release/examples/connections_bench 10000 300 [broadcast]

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // shared by the benchmark commands; each uses part of it
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use futures::{stream, SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use support::{connect, publish, raise_open_files, rss_kib, Server, Socket};

/// This benchmark's users are all of tenant `bench`.
fn token(user: &str, roles: &[&str]) -> String {
    support::token("bench", user, roles)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let messages: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    let files = raise_open_files();
    let server = Server::start(&[]);
    let pid = server.pid();
    let url = server.ws_url();

    // One connection first, so the baseline includes the runtime's warm-up allocations.
    let mut target = connect(&server.ws(&token("target", &[]))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid);

    let started = Instant::now();
    let idle: Vec<_> = stream::iter(0..n)
        .map(|i| {
            let url = server.ws(&token(&format!("idle-{}", i % 1000), &[]));
            async move { connect(&url).await }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let connected = idle.iter().filter(|r| r.is_ok()).count();
    let connect_time = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid);
    let per_connection = (after.saturating_sub(before)) as f64 * 1024.0 / connected.max(1) as f64;

    // Latency: publish to the one target user, wait for its frame.
    let publisher = token("backend", &["publisher"]);
    let http = reqwest::Client::new();
    let publish_url = server.publish_url();
    let mut latencies = Vec::with_capacity(messages);
    for i in 0..messages {
        let id = format!("lat-{i}");
        let envelope = json!({"id": id, "target": {"type":"users","tenant":"bench","users":["target"]}, "data": i});
        let sent = Instant::now();
        let status = publish(&http, &publish_url, &publisher, &envelope).await;
        assert_eq!(status, 202);
        loop {
            match target.next().await.unwrap().unwrap() {
                Message::Text(text) if text.as_str().contains(&format!("\"{id}\"")) => break,
                _ => continue,
            }
        }
        latencies.push(sent.elapsed());
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)];

    println!(
        "connections benchmark: {connected}/{n} idle connections opened in {:.2} s (open-files limit {files:?})",
        connect_time.as_secs_f64()
    );
    println!("server RSS: {before} KiB before, {after} KiB after => {:.1} KiB per connection (goal <= 9 KiB)", per_connection / 1024.0);
    println!(
        "publish->frame latency to one user over {messages} messages: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
    if std::env::args().nth(3).as_deref() == Some("broadcast") {
        broadcast(pid, &http, &publish_url, &publisher, idle, &mut target).await;
        return;
    }
    if std::env::args().nth(3).as_deref() == Some("resume") {
        let _ = target.send(Message::Close(None)).await;
        resume(&url, &http, &publish_url, &publisher).await;
    } else {
        let _ = target.send(Message::Close(None)).await;
    }
    drop(idle);
}

/// With `resume` as the third argument: a client receives one message (its cursor), goes
/// away, misses 500 messages, reconnects and resumes: the time from sending `resume` to the
/// `resumed` frame, and what it says.
async fn resume(url: &str, http: &reqwest::Client, publish_url: &str, publisher: &str) {
    const MISSED: usize = 500;
    let connect = || async {
        tokio_tungstenite::connect_async(format!("{url}?token={}", token("resumer", &[])))
            .await
            .unwrap()
            .0
    };
    let publish = |id: String| {
        let envelope = json!({"id": id, "target": {"type":"users","tenant":"bench","users":["resumer"]}, "data": {"n": id}});
        http.post(publish_url)
            .bearer_auth(publisher)
            .json(&envelope)
            .send()
    };
    let mut client = connect().await;
    assert_eq!(publish("seen".into()).await.unwrap().status().as_u16(), 202);
    let since = loop {
        if let Message::Text(text) = client.next().await.unwrap().unwrap() {
            let frame: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
            match frame["cursor"].as_str() {
                Some(cursor) => break cursor.to_string(),
                None => {
                    println!("resume: frames carry no cursor (history is off): nothing to measure");
                    return;
                }
            }
        }
    };
    let _ = client.send(Message::Close(None)).await;
    drop(client);
    for i in 0..MISSED {
        assert_eq!(
            publish(format!("missed-{i}"))
                .await
                .unwrap()
                .status()
                .as_u16(),
            202
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut client = connect().await;
    let started = Instant::now();
    client
        .send(Message::Text(
            json!({"action":"resume","since":since}).to_string().into(),
        ))
        .await
        .unwrap();
    let mut frames = 0;
    let resumed = loop {
        if let Message::Text(text) = client.next().await.unwrap().unwrap() {
            let frame: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
            if frame["type"] == "resumed" {
                break frame;
            }
            frames += 1;
        }
    };
    println!(
        "resume of {MISSED} missed messages: {frames} frames then {resumed} in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
}

/// CPU time of a process, in microseconds: (user, system).
fn cpu_micros(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: u64 = fields[11].parse().unwrap();
    let system: u64 = fields[12].parse().unwrap();
    let per_second: u64 = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(100);
    (
        user * 1_000_000 / per_second,
        system * 1_000_000 / per_second,
    )
}

async fn broadcast(
    pid: u32,
    http: &reqwest::Client,
    publish_url: &str,
    publisher: &str,
    idle: Vec<Result<Socket, tokio_tungstenite::tungstenite::Error>>,
    target: &mut Socket,
) {
    const MESSAGES: usize = 10;
    let delivered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut readers = Vec::new();
    let mut sockets = 1;
    for socket in idle.into_iter().flatten() {
        sockets += 1;
        let delivered = delivered.clone();
        readers.push(tokio::spawn(async move {
            let mut socket = socket;
            while let Some(Ok(message)) = socket.next().await {
                if let Message::Text(text) = message {
                    if text.as_str().contains("\"bc-") {
                        delivered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let expected = sockets * MESSAGES;
    let cpu_before = cpu_micros(pid);
    let started = Instant::now();
    for i in 0..MESSAGES {
        let envelope = json!({"id": format!("bc-{i}"), "target": {"type":"tenant","tenant":"bench"}, "data": {"n": i, "text": "a tenant-wide notification"}});
        let status = publish(http, publish_url, publisher, &envelope).await;
        assert_eq!(status, 202);
    }
    let mut target_frames = 0;
    while target_frames < MESSAGES {
        match tokio::time::timeout(Duration::from_secs(60), target.next()).await {
            Ok(Some(Ok(Message::Text(text)))) if text.as_str().contains("\"bc-") => {
                target_frames += 1;
                delivered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("target socket: {other:?}"),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while delivered.load(std::sync::atomic::Ordering::Relaxed) < expected
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let got = delivered.load(std::sync::atomic::Ordering::Relaxed);
    // Let the server finish its bookkeeping before reading its CPU time.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cpu_after = cpu_micros(pid);
    let user = cpu_after.0.saturating_sub(cpu_before.0);
    let system = cpu_after.1.saturating_sub(cpu_before.1);
    let cpu = user + system;
    println!(
        "broadcast: {MESSAGES} tenant-wide messages to {sockets} connections: {got}/{expected} frames in {:.3} s => {:.0} deliveries/s; server CPU {:.1} ms (user {:.1}, system {:.1}) => {:.2} us per delivered frame (goal <= 8)",
        elapsed.as_secs_f64(),
        got as f64 / elapsed.as_secs_f64(),
        cpu as f64 / 1e3,
        user as f64 / 1e3,
        system as f64 / 1e3,
        cpu as f64 / got.max(1) as f64
    );
    for reader in readers {
        reader.abort();
    }
}
