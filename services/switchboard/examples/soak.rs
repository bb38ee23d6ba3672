//! Soak command (a command, not a test). Starts the release `switchboard serve` in its own
//! process, opens C WebSocket connections from this process (one user each, spread over
//! tenants of 100), of which every tenth never reads, publishes at a steady rate for a
//! while, then prints the accounting of every published message, the server's resident
//! memory at start and end, and publish→frame latency to the clients that read.
//!
//!   cargo build --release --bin switchboard --example soak
//!   target/release/examples/soak [connections=2000] [seconds=300] [rate=100/s] [payload=512 B]
//!
//! or `bash scripts/soak.sh …` (raises the open-files limit). The server runs with its
//! defaults except history and receipts, off unless `HISTORY_TTL_SECS` / `RECEIPT_TTL_SECS`
//! is set (both are caches that grow to their bound — receipts: 100,000 kept a day —, which
//! the RSS figure would mistake for a leak). What is published:
//! of every 100 messages, one is already past its `expiresAt` (to be dropped as expired),
//! nine go to five users of a tenant (`users` target), the rest to a whole tenant. Every
//! tenth connection ("stalled") never reads: the server must close it as a slow consumer
//! (1008) without delaying the others; after a stall of `STALL_SECS` it is dropped and
//! a new stalled connection opens in its place (connection churn). Healthy connections
//! stay open for the whole run and must receive every frame addressed to them, once.
//!
//! Printed counts (the sources are this process's own counts and the server's `/metrics`
//! and `GET /v1/dead-letters`):
//!   - accepted: publishes answered 202 (and the server's `switchboard_enqueued_total`,
//!     equal here: no tenant spans more than one roster page and local pushes never fail
//!     retryably, so the publisher makes no work items);
//!   - delivered: messages whose fan-out ended with every matched connection handed the
//!     frame or found gone (`switchboard_messages_total{outcome="delivered"}`, plus
//!     `deferred`, which this run never produces);
//!   - dead-lettered: messages moved to the dead-letter list
//!     (`…{outcome="dead_lettered"}`; the list itself is read and counted too);
//!   - expired: messages dropped because their `expiresAt` had passed (`…{outcome="expired"}`);
//!   - unaccounted: accepted − delivered − dead-lettered − expired − still queued (goal 0).
//!
//! For the connections that read: frames expected (every accepted, unexpired message to
//! their tenant or naming them), received, missing and duplicated, and publish→frame latency
//! p50/p99/max (from the moment the publish request was sent).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // shared by the benchmark commands; each uses part of it
mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{stream, StreamExt};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use support::{client_config, raise_open_files, rss_kib, token, Server, Socket};

/// Connections per tenant.
const TENANT_SIZE: usize = 100;
/// Every `STALLED_EVERY`th connection never reads.
const STALLED_EVERY: usize = 10;
/// How long a stalled connection is held (unread) before it is dropped and replaced.
const STALL_SECS: u64 = 60;
/// Receive buffer of a stalled client's socket, so the server's side fills in seconds.
const STALLED_RCVBUF: u32 = 4096;
/// Users named by one `users` message.
const USERS_PER_MESSAGE: usize = 5;
/// Publishes in flight at once.
const PUBLISH_CONCURRENCY: usize = 64;
/// Seconds of traffic after which the server's RSS is the reference for the end.
const WARM_UP_SECS: u64 = 10;
/// Longest wait, after the last publish, for the queue to drain and frames to arrive.
const SETTLE: Duration = Duration::from_secs(60);

fn tenant_name(t: usize) -> String {
    format!("soak-{t:03}")
}

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// The value of one sample of the Prometheus text (`name` with its labels, exactly), or 0.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix(name)?;
            let value = rest.strip_prefix(' ')?;
            value.trim().parse::<f64>().ok()
        })
        .map_or(0, |v| v as u64)
}

/// Who a connection is: its index decides tenant, user and whether it reads.
struct Slot {
    tenant: usize,
    user: String,
}

fn slot(i: usize) -> Slot {
    Slot {
        tenant: i / TENANT_SIZE,
        user: format!("u{i:05}"),
    }
}

fn stalled(i: usize) -> bool {
    i % STALLED_EVERY == STALLED_EVERY - 1
}

/// What a reading client saw.
#[derive(Default)]
struct Seen {
    frames: u64,
    duplicates: u64,
    ids: HashSet<u64>,
    /// Publish→frame latency of each frame, microseconds.
    latencies: Vec<u32>,
}

/// An accepted message: its tenant and the connections it names (`None`: the whole tenant).
type Accepted = (usize, Option<Vec<usize>>);

async fn connect(url: &str) -> Socket {
    support::connect(url).await.unwrap()
}

/// A client socket with a small receive buffer, for a client that will not read.
async fn connect_stalled(addr: &str, url: &str) -> Option<Socket> {
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    socket.set_recv_buffer_size(STALLED_RCVBUF).ok()?;
    let stream = socket.connect(addr.parse().ok()?).await.ok()?;
    let request = url.into_client_request().ok()?;
    let (socket, _) = tokio_tungstenite::client_async_with_config(
        request,
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
        Some(client_config()),
    )
    .await
    .ok()?;
    Some(socket)
}

#[tokio::main]
async fn main() {
    let connections = arg(1, 2000) as usize;
    let seconds = arg(2, 300);
    let rate = arg(3, 100).max(1);
    let payload = arg(4, 512) as usize;
    let tenants = connections.div_ceil(TENANT_SIZE).max(1);
    // History off unless asked for: it is a cache that grows to its bound (its TTL or
    // `HISTORY_MAX_PER_STREAM` a stream), which would hide or mimic a leak in the RSS figure.
    let history_ttl = std::env::var("HISTORY_TTL_SECS").unwrap_or_else(|_| "0".into());
    // Receipts likewise: one per accepted message, kept `RECEIPT_TTL_SECS` up to 100,000.
    let receipt_ttl = std::env::var("RECEIPT_TTL_SECS").unwrap_or_else(|_| "0".into());
    raise_open_files();
    let server = Server::start(&[
        ("HISTORY_TTL_SECS", &history_ttl),
        ("RECEIPT_TTL_SECS", &receipt_ttl),
    ]);
    let pid = server.pid();
    let ws = server.ws_url();
    let http = reqwest::Client::new();
    let metrics_url = format!("http://{}/metrics", server.management_addr);
    println!(
        "soak: {connections} connections ({} never reading) over {tenants} tenants, {rate} messages/s for {seconds} s, {payload}-byte payloads, HISTORY_TTL_SECS={history_ttl}, RECEIPT_TTL_SECS={receipt_ttl}; server pid {pid}",
        connections / STALLED_EVERY
    );

    // Reading clients: each records what it got and the latency of each frame.
    let started = Instant::now();
    let seen: Arc<Vec<Mutex<Seen>>> =
        Arc::new((0..connections).map(|_| Mutex::default()).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let healthy: Vec<usize> = (0..connections).filter(|&i| !stalled(i)).collect();
    let opened: Vec<(usize, Socket)> = stream::iter(healthy.iter().copied())
        .map(|i| {
            let s = slot(i);
            let url = format!("{ws}?token={}", token(&tenant_name(s.tenant), &s.user, &[]));
            async move { (i, connect(&url).await) }
        })
        .buffer_unordered(128)
        .collect()
        .await;
    let mut readers = Vec::new();
    for (i, mut socket) in opened {
        let seen = seen.clone();
        readers.push(tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let received = started.elapsed().as_micros() as u64;
                let frame: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                let (Some(seq), Some(sent)) =
                    (frame["data"]["seq"].as_u64(), frame["data"]["t"].as_u64())
                else {
                    continue;
                };
                let mut seen = seen[i].lock().unwrap();
                seen.latencies
                    .push(u32::try_from(received.saturating_sub(sent)).unwrap_or(u32::MAX));
                seen.frames += 1;
                if !seen.ids.insert(seq) {
                    seen.duplicates += 1;
                }
            }
        }));
    }

    // Stalled clients: hold an unread socket for STALL_SECS, drop it, open another.
    let stalled_opened = Arc::new(AtomicU64::new(0));
    let mut stallers = Vec::new();
    for i in (0..connections).filter(|&i| stalled(i)) {
        let s = slot(i);
        let url = format!("{ws}?token={}", token(&tenant_name(s.tenant), &s.user, &[]));
        let addr = server.addr.clone();
        let stop = stop.clone();
        let opened = stalled_opened.clone();
        // Spread the churn: each starts its cycle at a different moment.
        let offset = Duration::from_millis((i as u64 * 7919) % (STALL_SECS * 1000));
        stallers.push(tokio::spawn(async move {
            let mut first = true;
            while !stop.load(Ordering::Relaxed) {
                let socket = connect_stalled(&addr, &url).await;
                if socket.is_some() {
                    opened.fetch_add(1, Ordering::Relaxed);
                }
                let hold = if first {
                    offset
                } else {
                    Duration::from_secs(STALL_SECS)
                };
                first = false;
                let until = Instant::now() + hold;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                drop(socket);
            }
        }));
    }
    // Let the stalled connections open before measuring.
    while stalled_opened.load(Ordering::Relaxed) < (connections / STALLED_EVERY) as u64
        && started.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connect_time = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_start = rss_kib(pid);
    println!(
        "connected in {:.1} s; server RSS at start {rss_start} KiB",
        connect_time.as_secs_f64()
    );

    // Publishers: `rate` messages a second, at most PUBLISH_CONCURRENCY in flight.
    let publishers: Arc<Vec<String>> = Arc::new(
        (0..tenants)
            .map(|t| token(&tenant_name(t), "publisher", &["publisher"]))
            .collect(),
    );
    let publish_url = Arc::new(server.publish_url());
    let filler: Arc<str> = "x".repeat(payload).into();
    let accepted: Arc<Mutex<Vec<Accepted>>> = Arc::default();
    let expired_sent = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let permits = Arc::new(Semaphore::new(PUBLISH_CONCURRENCY));
    let total = rate * seconds;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut rss_samples = vec![(0u64, rss_start)];
    let publish_started = Instant::now();
    let mut next_sample = Duration::from_secs(10);
    let mut in_flight = Vec::new();
    for seq in 0..total {
        ticker.tick().await;
        if publish_started.elapsed() >= next_sample {
            rss_samples.push((next_sample.as_secs(), rss_kib(pid)));
            next_sample += Duration::from_secs(10);
        }
        let permit = permits.clone().acquire_owned().await.unwrap();
        let tenant = (seq as usize) % tenants;
        let kind = seq % 100;
        let users: Option<Vec<usize>> = (1..=9).contains(&kind).then(|| {
            let size = TENANT_SIZE.min(connections - tenant * TENANT_SIZE);
            (0..USERS_PER_MESSAGE)
                .map(|k| tenant * TENANT_SIZE + (seq as usize / tenants + k * 17) % size)
                .collect()
        });
        let target = match &users {
            Some(users) => json!({"type": "users", "tenant": tenant_name(tenant),
                "users": users.iter().map(|&i| slot(i).user).collect::<Vec<_>>()}),
            None => json!({"type": "tenant", "tenant": tenant_name(tenant)}),
        };
        let mut envelope = json!({
            "id": format!("soak-{seq}"),
            "target": target,
            "data": {"seq": seq, "t": started.elapsed().as_micros() as u64, "fill": &*filler},
        });
        let expired = kind == 0;
        if expired {
            envelope["expiresAt"] = json!("2000-01-01T00:00:00Z");
        }
        let http = http.clone();
        let url = publish_url.clone();
        let publishers = publishers.clone();
        let accepted = accepted.clone();
        let expired_sent = expired_sent.clone();
        let refused = refused.clone();
        in_flight.push(tokio::spawn(async move {
            let status = http
                .post(url.as_str())
                .bearer_auth(&publishers[tenant])
                .json(&envelope)
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .map(|r| r.status().as_u16());
            drop(permit);
            match status {
                Ok(202) if expired => {
                    expired_sent.fetch_add(1, Ordering::Relaxed);
                }
                Ok(202) => accepted.lock().unwrap().push((tenant, users)),
                _ => {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
        if in_flight.len() >= 4096 {
            for task in in_flight.drain(..) {
                task.await.unwrap();
            }
        }
    }
    for task in in_flight {
        task.await.unwrap();
    }
    let publish_time = publish_started.elapsed();

    // Expected frames per reading connection.
    let mut expected: HashMap<usize, u64> = HashMap::new();
    let delivered_messages = accepted.lock().unwrap().len() as u64;
    for (tenant, users) in accepted.lock().unwrap().iter() {
        match users {
            Some(users) => {
                let unique: HashSet<&usize> = users.iter().collect();
                for &&i in &unique {
                    if !stalled(i) {
                        *expected.entry(i).or_default() += 1;
                    }
                }
            }
            None => {
                let first = tenant * TENANT_SIZE;
                for i in first..(first + TENANT_SIZE).min(connections) {
                    if !stalled(i) {
                        *expected.entry(i).or_default() += 1;
                    }
                }
            }
        }
    }
    let expected_frames: u64 = expected.values().sum();
    let received = |seen: &Arc<Vec<Mutex<Seen>>>| -> u64 {
        seen.iter().map(|s| s.lock().unwrap().frames).sum()
    };
    // Wait for the queue to drain and the frames to arrive.
    let settle_started = Instant::now();
    let mut text = String::new();
    while settle_started.elapsed() < SETTLE {
        text = http
            .get(&metrics_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metric(&text, "switchboard_queue_depth") == 0 && received(&seen) >= expected_frames {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let rss_end = rss_kib(pid);
    rss_samples.push((publish_time.as_secs(), rss_end));

    // Dead letters, read page by page.
    let admin = token(&tenant_name(0), "soak-admin", &["admin"]);
    let mut dead_listed = 0usize;
    let mut next: Option<String> = None;
    loop {
        let mut request = http
            .get(format!("http://{}/v1/dead-letters", server.addr))
            .query(&[("limit", "1000")]);
        if let Some(cursor) = &next {
            request = request.query(&[("next", cursor.as_str())]);
        }
        let page: serde_json::Value = request
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        dead_listed += page["items"].as_array().map_or(0, Vec::len);
        match page["next"].as_str() {
            Some(cursor) => next = Some(cursor.to_string()),
            None => break,
        }
    }

    let outcome = |o: &str| {
        metric(
            &text,
            &format!("switchboard_messages_total{{outcome=\"{o}\"}}"),
        )
    };
    let enqueued = metric(&text, "switchboard_enqueued_total");
    let delivered = outcome("delivered") + outcome("deferred");
    let dead = outcome("dead_lettered");
    let expired = outcome("expired");
    let retried = outcome("retry");
    let queued = metric(&text, "switchboard_queue_depth");
    let accepted_count = delivered_messages + expired_sent.load(Ordering::Relaxed);
    let unaccounted = accepted_count as i64 - (delivered + dead + expired + queued) as i64;
    let slow = metric(&text, "switchboard_slow_consumers_closed_total");
    let posts_delivered = metric(&text, "switchboard_posts_total{result=\"delivered\"}");
    let posts_gone = metric(&text, "switchboard_posts_total{result=\"gone\"}");

    let mut missing = 0u64;
    let mut surplus = 0u64;
    let mut duplicates = 0u64;
    let mut got = 0u64;
    for i in (0..connections).filter(|&i| !stalled(i)) {
        let s = seen[i].lock().unwrap();
        let want = expected.get(&i).copied().unwrap_or(0);
        let distinct = s.ids.len() as u64;
        missing += want.saturating_sub(distinct);
        surplus += distinct.saturating_sub(want);
        duplicates += s.duplicates;
        got += s.frames;
    }
    for reader in &readers {
        reader.abort();
    }
    for staller in stallers {
        let _ = staller.await;
    }
    let mut latencies: Vec<u32> = seen
        .iter()
        .flat_map(|s| std::mem::take(&mut s.lock().unwrap().latencies))
        .collect();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |&us| us as f64 / 1e3)
    };

    println!(
        "published {total} in {:.1} s ({:.0}/s): accepted {accepted_count} (server enqueued {enqueued}), refused or failed {}",
        publish_time.as_secs_f64(),
        total as f64 / publish_time.as_secs_f64(),
        refused.load(Ordering::Relaxed)
    );
    println!(
        "accounting: accepted {accepted_count} = delivered {delivered} + dead-lettered {dead} (list holds {dead_listed}) + expired {expired} + still queued {queued}; unaccounted {unaccounted}; redelivery attempts {retried}"
    );
    println!(
        "reading clients: {got} frames received of {expected_frames} expected: missing {missing}, duplicates {duplicates}, unexpected {surplus}"
    );
    println!(
        "server posts: {posts_delivered} handed to sockets, {posts_gone} to connections gone; stalled connections opened {}, closed as slow consumers {slow}",
        stalled_opened.load(Ordering::Relaxed)
    );
    println!(
        "publish->frame latency to reading clients ({} frames): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        pct(0.50),
        pct(0.99),
        latencies.last().map_or(0.0, |&us| us as f64 / 1e3)
    );
    let samples: Vec<String> = rss_samples
        .iter()
        .map(|(at, kib)| format!("{at}s:{}", kib / 1024))
        .collect();
    println!("server RSS MiB over time: {}", samples.join(" "));
    // The first seconds of traffic size each socket's write buffer and outbox once; the
    // goal compares the end with the first sample after that warm-up.
    let warm = rss_samples
        .iter()
        .find(|(at, _)| *at >= WARM_UP_SECS)
        .map_or(rss_end, |&(_, kib)| kib);
    let change = (rss_end as f64 - warm as f64) / warm as f64 * 100.0;
    println!(
        "server RSS: {rss_start} KiB at start (connected, idle), {warm} KiB after {WARM_UP_SECS} s of traffic, {rss_end} KiB at end => {change:+.1}% since warm-up (goal: within 10%)"
    );
}
