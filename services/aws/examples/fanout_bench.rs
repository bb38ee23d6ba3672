//! Fan-out benchmark (a command, not a test): one message to N connections through a local
//! management endpoint that answers every post after a fixed delay.
//!
//! Prints deliveries per second for
//!   (a) our publisher (roster pages + bounded fan-out with retries, FANOUT_CONCURRENCY 64):
//!       the message and every work item it leaves (one continuation per `FANOUT_SHARD_SIZE`
//!       page, default 1,000) run to completion, one after another, as one consumer would;
//!   (b) a raw driver posting with the same 64 in flight (the ceiling for this client),
//!   (c) the seed's sequential loop (one post after another).
//!
//! ```text
//! cargo run --release -p switchboard-aws --example fanout_bench -- \
//!     [connections] [delay_ms] [sequential_posts]
//! ```
//! (defaults 2000, 20, 2000)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_apigatewaymanagement::primitives::Blob;
use axum::routing::post;
use axum::Router;
use futures::{stream, StreamExt};
use switchboard_aws::{load_sdk_config, ApiGatewayPoster, LocalDefaults};
use switchboard_core::publisher::{Publisher, PublisherConfig, PublisherPorts};
use switchboard_core::queue::InboundMessage;
use switchboard_core::roster::{ConnectionRecord, MemoryRosterStore, RosterStore};
use switchboard_core::testkit::{run_to_completion, RecordingQueue};
use time::OffsetDateTime;

const IN_FLIGHT: usize = 64;

/// One `PostToConnection` of the benchmark's frame with the SDK client alone; true on 2xx.
async fn post_one(client: &aws_sdk_apigatewaymanagement::Client, id: &str) -> bool {
    client
        .post_to_connection()
        .connection_id(id)
        .data(Blob::new(r#"{"id":"bench-1","data":{"n":1}}"#))
        .send()
        .await
        .is_ok()
}

fn arg(index: usize, default: usize) -> usize {
    std::env::args()
        .nth(index)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let connections = arg(1, 2000);
    let delay = Duration::from_millis(arg(2, 20) as u64);
    let sequential_posts = arg(3, 2000).min(connections);

    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let app = Router::new().route(
        "/main/@connections/{id}",
        post(move || {
            let counter = counter.clone();
            async move {
                tokio::time::sleep(delay).await;
                counter.fetch_add(1, Ordering::Relaxed);
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/main", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let sdk = load_sdk_config(LocalDefaults {
        region: true,
        credentials: true,
    })
    .await;
    let poster = Arc::new(ApiGatewayPoster::new(&sdk, &endpoint));
    let roster = Arc::new(MemoryRosterStore::new());
    let ids: Vec<String> = (0..connections).map(|i| format!("conn{i:06}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let record = ConnectionRecord::from_raw(
            id,
            "bench",
            &format!("user{}", i % 500),
            vec![],
            OffsetDateTime::now_utc(),
            7_500,
        )
        .unwrap();
        roster.put(&record).await.unwrap();
    }
    println!(
        "fan-out benchmark: {connections} connections, endpoint answers after {} ms, {IN_FLIGHT} in flight",
        delay.as_millis()
    );

    // Warm the client's connection pool so no variant pays for it.
    let client = poster.client().clone();
    stream::iter(0..IN_FLIGHT)
        .for_each_concurrent(IN_FLIGHT, |_| {
            let client = client.clone();
            async move {
                let _ = client
                    .post_to_connection()
                    .connection_id("warm")
                    .data(Blob::new("w"))
                    .send()
                    .await;
            }
        })
        .await;

    // (a) the publisher: the message, then every continuation it enqueues, to the end.
    let work_queue = Arc::new(RecordingQueue::new());
    let dead_letters = Arc::new(RecordingQueue::new());
    let publisher = Publisher::new(
        PublisherPorts {
            roster: roster.clone(),
            poster: poster.clone(),
            dead_letters: dead_letters.clone(),
            work_queue: work_queue.clone(),
        },
        PublisherConfig {
            fanout_concurrency: IN_FLIGHT,
            ..PublisherConfig::default()
        },
    );
    let message = InboundMessage {
        message_id: "bench-1".into(),
        body: r#"{"target":{"type":"tenant","tenant":"bench"},"data":{"n":1}}"#.into(),
        receive_count: 1,
    };
    let page_size = publisher.config().page_size;
    let max_rounds = connections / page_size.max(1) + 2;
    let started = Instant::now();
    let reports = run_to_completion(&publisher, &work_queue, vec![message], max_rounds).await;
    let publisher_time = started.elapsed();
    let delivered: usize = reports.iter().map(|r| r.delivered).sum();
    assert_eq!(delivered, connections, "every post delivered: {reports:?}");
    assert!(dead_letters.letters().is_empty(), "nothing dead-lettered");
    let work_items = reports.len();
    let publisher_rate = connections as f64 / publisher_time.as_secs_f64();

    // (b) raw driver, same concurrency.
    let started = Instant::now();
    let ok = stream::iter(ids.iter())
        .map(|id| {
            let client = client.clone();
            async move { post_one(&client, id).await }
        })
        .buffer_unordered(IN_FLIGHT)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    let raw_time = started.elapsed();
    assert_eq!(ok, connections);
    let raw_rate = connections as f64 / raw_time.as_secs_f64();

    // (c) the seed's sequential loop.
    let started = Instant::now();
    for id in ids.iter().take(sequential_posts) {
        assert!(post_one(&client, id).await, "post to {id}");
    }
    let sequential_time = started.elapsed();
    let sequential_rate = sequential_posts as f64 / sequential_time.as_secs_f64();

    println!("(a) publisher      : {connections:>6} posts in {:>8.3} s = {publisher_rate:>8.0} deliveries/s ({work_items} work item(s) of at most {page_size})", publisher_time.as_secs_f64());
    println!("(b) raw, {IN_FLIGHT} in flight: {connections:>6} posts in {:>8.3} s = {raw_rate:>8.0} deliveries/s", raw_time.as_secs_f64());
    println!("(c) sequential     : {sequential_posts:>6} posts in {:>8.3} s = {sequential_rate:>8.0} deliveries/s", sequential_time.as_secs_f64());
    println!(
        "(a)/(b) = {:.2} (goal >= 0.85); (a)/(c) = {:.1} (goal >= 40)",
        publisher_rate / raw_rate,
        publisher_rate / sequential_rate
    );
    println!(
        "endpoint received {} posts in all",
        received.load(Ordering::Relaxed)
    );
}
