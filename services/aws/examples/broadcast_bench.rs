//! Broadcast benchmark (a command, not a test): one `broadcast` message to every connection
//! of a large roster, delivered by N publisher workers that drain one shared queue of work
//! items (docs/design.md: Fan-out at any size), against a fake management endpoint that enforces the account's
//! PostToConnection quota.
//!
//! - The endpoint runs in a child process (this binary re-executed with `--endpoint`), on its
//!   own tokio runtime, so the CPU and memory figures of the workers are their own. It
//!   enforces ONE token bucket for all posts (10,000/s, burst 1,000: API Gateway's account
//!   quota), answers `429` with `x-amzn-ErrorType: LimitExceededException` beyond it (the
//!   SDK's `LimitExceededException`, which `ApiGatewayPoster` maps to
//!   `PostError::Throttled`), takes 20 ms per accepted post, and counts the accepted posts
//!   per connection id (duplicates).
//! - The workers run in this process: N `Publisher`s, each with its own `ApiGatewayPoster`
//!   (own HTTP client) and its own `FANOUT_RATE` = floor(budget / N) token bucket, as N
//!   Lambda invocations would (`infra/README.md`, "Rate budget"). They share one in-memory
//!   roster (standing in for DynamoDB) and one in-process queue (standing in for SQS: batches
//!   of up to 10, delayed items, redelivery of `batchItemFailures`).
//! - Run 1: no faults. Run 2: the endpoint answers 500 to one connection, always; the bench
//!   counts the posts re-sent to everyone else and checks that connection ends in the
//!   dead-letter queue after `MAX_WORK_ATTEMPTS` work attempts.
//!
//! cargo run --release -p switchboard-aws --example broadcast_bench -- [connections] [budget] [workers] [scan_segments] [batch_size] [shard_size]
//! (defaults 100000, 5000, 10, 4, 10, 1000: the stack's defaults)

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark command: a broken setup aborts it

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use serde::{Deserialize, Serialize};
use switchboard_aws::{load_sdk_config, ApiGatewayPoster, LocalDefaults};
use switchboard_core::publisher::{Publisher, PublisherConfig, PublisherPorts, MAX_WORK_ATTEMPTS};
use switchboard_core::queue::{InboundMessage, MessageQueue, QueueError};
use switchboard_core::roster::{ConnectionRecord, MemoryRosterStore, RosterStore};
use switchboard_core::testkit::RecordingQueue;
use time::OffsetDateTime;

/// The account's PostToConnection quota the endpoint enforces, per second.
const ENDPOINT_RATE: f64 = 10_000.0;
/// Tokens the endpoint's bucket holds when full (0.1 s of the quota).
const ENDPOINT_BURST: f64 = 1_000.0;
/// How long the endpoint takes to answer an accepted post.
const POST_DELAY: Duration = Duration::from_millis(20);
/// Most items the shared queue holds (a bound; a broadcast of 1M at 1,000 per page needs
/// far fewer at once).
const QUEUE_LIMIT: usize = 100_000;
/// How long an idle worker waits before looking at the queue again.
const IDLE_POLL: Duration = Duration::from_millis(2);
/// Redelivery delay of a message reported in `batchItemFailures` (SQS visibility timeout,
/// shortened).
const REDELIVERY_DELAY: Duration = Duration::from_secs(1);
/// Receives after which the queue moves a message to its DLQ (the stack's redrive policy).
const MAX_RECEIVES: u32 = 5;
/// Delay of the first retry work item in both runs (the default is 5 s).
const RETRY_ITEM_DELAY: Duration = Duration::from_millis(100);
/// The connection the endpoint refuses in run 2.
const FAILING: &str = "conn-000777";

fn arg(index: usize, default: usize) -> usize {
    std::env::args()
        .nth(index)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--endpoint") {
        let fail = args.get(2).filter(|s| !s.is_empty()).cloned();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(endpoint(fail));
        return;
    }
    let connections = arg(1, 100_000).clamp(1, 10_000_000);
    let budget = arg(2, 5_000).clamp(1, 1_000_000);
    let workers = arg(3, 10).clamp(1, 1_000);
    let segments = arg(4, 4).clamp(1, 1_000);
    let settings = Settings {
        connections,
        budget,
        workers,
        segments,
        // Work items a worker takes from the queue at once (the SQS event source's batch size).
        batch_size: arg(5, 10).clamp(1, 10),
        shard_size: arg(6, 1_000).clamp(1, 10_000),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench(settings));
}

// ---------------------------------------------------------------------------------------
// The fake management endpoint (child process).

/// What the endpoint saw, as it reports it to the bench.
#[derive(Debug, Default, Serialize, Deserialize)]
struct EndpointStats {
    accepted: u64,
    throttled: u64,
    refused: u64,
    distinct: usize,
    duplicates: u64,
    max_per_connection: u32,
    cpu_secs: f64,
    peak_rss_kib: u64,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

struct Endpoint {
    bucket: Mutex<Bucket>,
    accepted: Mutex<HashMap<String, u32>>,
    throttled: AtomicU64,
    refused: AtomicU64,
    fail: Option<String>,
}

impl Endpoint {
    fn take_token(&self) -> bool {
        let mut bucket = self.bucket.lock().unwrap();
        let now = Instant::now();
        let refill = now.duration_since(bucket.last).as_secs_f64() * ENDPOINT_RATE;
        bucket.tokens = (bucket.tokens + refill).min(ENDPOINT_BURST);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn stats(&self) -> EndpointStats {
        let accepted = self.accepted.lock().unwrap();
        EndpointStats {
            accepted: accepted.values().map(|&n| u64::from(n)).sum(),
            throttled: self.throttled.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            distinct: accepted.len(),
            duplicates: accepted.values().map(|&n| u64::from(n - 1)).sum(),
            max_per_connection: accepted.values().copied().max().unwrap_or(0),
            cpu_secs: cpu_secs(),
            peak_rss_kib: peak_rss_kib(),
        }
    }
}

async fn post_to_connection(
    State(endpoint): State<Arc<Endpoint>>,
    Path(id): Path<String>,
) -> axum::response::Response {
    if !endpoint.take_token() {
        endpoint.throttled.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("x-amzn-ErrorType", "LimitExceededException")],
            r#"{"message":"Rate exceeded"}"#,
        )
            .into_response();
    }
    tokio::time::sleep(POST_DELAY).await;
    if endpoint.fail.as_deref() == Some(id.as_str()) {
        endpoint.refused.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("x-amzn-ErrorType", "InternalServerErrorException")],
            r#"{"message":"Internal server error"}"#,
        )
            .into_response();
    }
    *endpoint.accepted.lock().unwrap().entry(id).or_default() += 1;
    StatusCode::OK.into_response()
}

/// Serves the endpoint; prints its URL, then answers each `stats` line on stdin with a JSON
/// line; exits when stdin closes.
async fn endpoint(fail: Option<String>) {
    let state = Arc::new(Endpoint {
        bucket: Mutex::new(Bucket {
            tokens: ENDPOINT_BURST,
            last: Instant::now(),
        }),
        accepted: Mutex::new(HashMap::new()),
        throttled: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        fail,
    });
    let app = Router::new()
        .route("/main/@connections/{id}", post(post_to_connection))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("http://{}/main", listener.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line.trim() == "stats" {
                println!("{}", serde_json::to_string(&state.stats()).unwrap());
                std::io::stdout().flush().unwrap();
            }
        }
        std::process::exit(0);
    });
    axum::serve(listener, app).await.unwrap();
}

/// The endpoint child process, seen from the bench.
struct EndpointProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    url: String,
}

impl EndpointProcess {
    fn start(fail: Option<&str>) -> Self {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .arg("--endpoint")
            .arg(fail.unwrap_or(""))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut url = String::new();
        stdout.read_line(&mut url).unwrap();
        Self {
            child,
            stdin,
            stdout,
            url: url.trim().to_string(),
        }
    }

    fn stats(&mut self) -> EndpointStats {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "stats").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    }
}

impl Drop for EndpointProcess {
    fn drop(&mut self) {
        // Closing stdin ends the child; kill it if it has not gone after a second.
        self.stdin.take();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// The shared queue (standing in for SQS).

#[derive(Default)]
struct QueueState {
    visible: VecDeque<InboundMessage>,
    delayed: Vec<(Instant, InboundMessage)>,
}

/// One in-process queue all workers drain: visible items, delayed items, and a count of
/// items not yet finished (queued or being handled), which tells the workers when the
/// broadcast is done.
#[derive(Default)]
struct SharedQueue {
    state: Mutex<QueueState>,
    outstanding: AtomicUsize,
    next_id: AtomicUsize,
    enqueued: AtomicUsize,
    delayed_enqueued: AtomicUsize,
}

impl SharedQueue {
    fn push(
        &self,
        body: &str,
        receive_count: u32,
        delay: Option<Duration>,
    ) -> Result<(), QueueError> {
        let mut state = self.state.lock().unwrap();
        if state.visible.len() + state.delayed.len() >= QUEUE_LIMIT {
            return Err(QueueError::Rejected(format!(
                "queue holds {QUEUE_LIMIT} items"
            )));
        }
        let message = InboundMessage {
            message_id: format!("sqs-{}", self.next_id.fetch_add(1, Ordering::Relaxed)),
            body: body.to_string(),
            receive_count,
        };
        self.outstanding.fetch_add(1, Ordering::SeqCst);
        match delay {
            Some(delay) => state.delayed.push((Instant::now() + delay, message)),
            None => state.visible.push_back(message),
        }
        Ok(())
    }

    /// Up to `max` visible items (delayed ones that are due first become visible).
    fn take(&self, max: usize) -> Vec<InboundMessage> {
        let mut state = self.state.lock().unwrap();
        let now = Instant::now();
        let mut index = 0;
        while index < state.delayed.len() {
            if state.delayed[index].0 <= now {
                let (_, message) = state.delayed.swap_remove(index);
                state.visible.push_back(message);
            } else {
                index += 1;
            }
        }
        let count = max.min(state.visible.len());
        state.visible.drain(..count).collect()
    }

    /// `count` taken items are finished (whatever they enqueued is already counted).
    fn done(&self, count: usize) {
        self.outstanding.fetch_sub(count, Ordering::SeqCst);
    }

    fn finished(&self) -> bool {
        self.outstanding.load(Ordering::SeqCst) == 0
    }
}

#[async_trait]
impl MessageQueue for SharedQueue {
    async fn enqueue(&self, _id: &str, body: &str) -> Result<(), QueueError> {
        self.enqueued.fetch_add(1, Ordering::Relaxed);
        self.push(body, 1, None)
    }

    async fn enqueue_delayed(
        &self,
        _id: &str,
        body: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        self.delayed_enqueued.fetch_add(1, Ordering::Relaxed);
        self.push(body, 1, Some(delay))
    }
}

// ---------------------------------------------------------------------------------------
// The workers (this process).

/// What one worker's publisher reported, summed.
#[derive(Debug, Default, Clone)]
struct WorkerTotals {
    batches: usize,
    items: usize,
    delivered: usize,
    throttled: u64,
    retries: u64,
    deferred: usize,
    largest_page: usize,
    redelivered: usize,
    queue_dead_lettered: usize,
}

impl WorkerTotals {
    fn add(&mut self, other: &WorkerTotals) {
        self.batches += other.batches;
        self.items += other.items;
        self.delivered += other.delivered;
        self.throttled += other.throttled;
        self.retries += other.retries;
        self.deferred += other.deferred;
        self.largest_page = self.largest_page.max(other.largest_page);
        self.redelivered += other.redelivered;
        self.queue_dead_lettered += other.queue_dead_lettered;
    }
}

async fn worker(publisher: Publisher, queue: Arc<SharedQueue>, batch_size: usize) -> WorkerTotals {
    let mut totals = WorkerTotals::default();
    loop {
        let batch = queue.take(batch_size);
        if batch.is_empty() {
            if queue.finished() {
                return totals;
            }
            tokio::time::sleep(IDLE_POLL).await;
            continue;
        }
        let outcome = publisher.handle_batch(&batch).await;
        totals.batches += 1;
        totals.items += batch.len();
        for report in &outcome.reports {
            totals.delivered += report.delivered;
            totals.throttled += u64::from(report.throttled);
            totals.retries += u64::from(report.retries);
            totals.deferred += report.deferred;
            totals.largest_page = totals.largest_page.max(report.matched);
        }
        // SQS redelivers what the invocation reported failed, up to the redrive limit.
        for message in batch
            .iter()
            .filter(|m| outcome.failed_message_ids.contains(&m.message_id))
        {
            if message.receive_count >= MAX_RECEIVES {
                totals.queue_dead_lettered += 1;
            } else {
                totals.redelivered += 1;
                let _ = queue.push(
                    &message.body,
                    message.receive_count + 1,
                    Some(REDELIVERY_DELAY),
                );
            }
        }
        queue.done(batch.len());
    }
}

/// The bench's arguments.
#[derive(Debug, Clone, Copy)]
struct Settings {
    connections: usize,
    budget: usize,
    workers: usize,
    segments: usize,
    batch_size: usize,
    shard_size: usize,
}

/// One broadcast through the workers; prints its figures.
async fn run(
    title: &str,
    roster: &Arc<MemoryRosterStore>,
    settings: Settings,
    roster_kib: u64,
    fail: Option<&str>,
) {
    let Settings {
        connections,
        budget,
        workers,
        segments,
        batch_size,
        shard_size,
    } = settings;
    let mut endpoint = EndpointProcess::start(fail);
    let sdk = load_sdk_config(LocalDefaults {
        region: true,
        credentials: true,
    })
    .await;
    let queue = Arc::new(SharedQueue::default());
    let dead_letters = Arc::new(RecordingQueue::new());
    let fanout_rate = u32::try_from(budget / workers).unwrap_or(u32::MAX).max(1);
    let config = PublisherConfig {
        fanout_rate,
        scan_segments: u32::try_from(segments).unwrap_or(1),
        retry_item_delay: RETRY_ITEM_DELAY,
        shard_size,
        ..PublisherConfig::default()
    };
    let publishers: Vec<Publisher> = (0..workers)
        .map(|_| {
            Publisher::new(
                PublisherPorts {
                    roster: roster.clone(),
                    poster: Arc::new(ApiGatewayPoster::new(&sdk, &endpoint.url)),
                    dead_letters: dead_letters.clone(),
                    work_queue: queue.clone(),
                },
                config.clone(),
            )
        })
        .collect();
    println!("\n{title}");
    let cpu_before = cpu_secs();
    let started = Instant::now();
    queue
        .push(
            r#"{"id":"broadcast-1","target":{"type":"broadcast"},"data":{"n":1}}"#,
            1,
            None,
        )
        .unwrap();
    let handles: Vec<_> = publishers
        .into_iter()
        .map(|p| tokio::spawn(worker(p, queue.clone(), batch_size)))
        .collect();
    // Bound the run: five times the budget's time plus a minute.
    let limit = Duration::from_secs_f64(connections as f64 / budget as f64 * 5.0 + 60.0);
    let aborts: Vec<_> = handles.iter().map(|h| h.abort_handle()).collect();
    let joined = tokio::time::timeout(limit, futures::future::join_all(handles)).await;
    let elapsed = started.elapsed();
    let cpu = cpu_secs() - cpu_before;
    let mut totals = WorkerTotals::default();
    match joined {
        Ok(results) => {
            for result in results {
                totals.add(&result.unwrap());
            }
        }
        Err(_) => {
            for abort in &aborts {
                abort.abort();
            }
            println!(
                "  DID NOT FINISH within {} s; figures below are partial",
                limit.as_secs()
            );
        }
    }
    let stats = endpoint.stats();
    let letters = dead_letters.letters();
    let secs = elapsed.as_secs_f64();
    let rate = stats.accepted as f64 / secs;
    println!(
        "  {workers} workers x FANOUT_RATE {fanout_rate}/s (budget {budget}/s), {segments} scan segment(s), \
         shard size {shard_size}, queue batches of up to {batch_size}"
    );
    println!(
        "  delivered {} of {connections} connections in {secs:.2} s = {rate:.0} posts/s = {:.2} x budget (goal >= 0.9)",
        stats.distinct,
        rate / budget as f64
    );
    println!(
        "  endpoint: {} accepted, {} answered 429 (all retried: publishers counted {} throttled, {} retries), {} answered 500",
        stats.accepted, stats.throttled, totals.throttled, totals.retries, stats.refused
    );
    println!(
        "  work items: {} handled in {} batches, largest page {} connections; {} page item(s) enqueued (segments, continuations, remainders), \
         {} delayed retry item(s); {} redelivered, {} dead-lettered by the queue",
        totals.items,
        totals.batches,
        totals.largest_page,
        queue.enqueued.load(Ordering::Relaxed),
        queue.delayed_enqueued.load(Ordering::Relaxed),
        totals.redelivered,
        totals.queue_dead_lettered
    );
    match fail {
        None => {
            println!(
                "  dead-lettered: {} (goal 0); duplicate posts: {} (goal 0); missed connections: {}",
                letters.len() + totals.queue_dead_lettered,
                stats.duplicates,
                connections.saturating_sub(stats.distinct)
            );
        }
        Some(failing) => {
            // Every accepted post beyond a connection's first is a re-send to a connection
            // other than the failing one (which never accepts a post).
            println!(
                "  re-sent posts to other connections: {} (goal <= one shard = {shard_size}; expect 0); \
                 missed connections: {}",
                stats.duplicates,
                connections.saturating_sub(stats.distinct + 1)
            );
            let named: Vec<_> = letters
                .iter()
                .filter(|l| l.body.contains(failing))
                .collect();
            let attempts = format!("after {MAX_WORK_ATTEMPTS} attempts");
            println!(
                "  {failing}: {} posts answered 500 ({MAX_WORK_ATTEMPTS} work attempts x {} in-process tries); \
                 dead letters: {} ({} naming it{}); last error: {}",
                stats.refused,
                config.retry.max_attempts,
                letters.len(),
                named.len(),
                if named.iter().any(|l| l.error.contains(&attempts)) {
                    format!(", dead-lettered {attempts}")
                } else {
                    String::new()
                },
                named
                    .last()
                    .map_or_else(|| "-".to_string(), |l| l.error.chars().take(140).collect())
            );
        }
    }
    println!(
        "  CPU: workers {cpu:.1} s ({:.0}% of one core), endpoint {:.1} s; endpoint peak RSS {:.1} MB",
        cpu / secs * 100.0,
        stats.cpu_secs,
        stats.peak_rss_kib as f64 / 1024.0
    );
    let peak = peak_rss_kib();
    println!(
        "  peak RSS of the worker process (all {workers} workers together, with the shared \
         in-memory roster of {:.1} MB): {:.1} MB so far; (peak - roster) / {workers} = {:.1} MB \
         per worker (goal for one worker <= 64 MB)",
        roster_kib as f64 / 1024.0,
        peak as f64 / 1024.0,
        peak.saturating_sub(roster_kib) as f64 / 1024.0 / workers as f64
    );
}

async fn bench(settings: Settings) {
    let Settings {
        connections,
        budget,
        workers,
        ..
    } = settings;
    println!(
        "broadcast benchmark: {connections} connections, budget {budget} posts/s, {workers} publisher workers; \
         endpoint (separate process): one {ENDPOINT_RATE}/s token bucket (burst {ENDPOINT_BURST}), \
         429 LimitExceededException beyond it, {} ms per post",
        POST_DELAY.as_millis()
    );
    let rss_start = peak_rss_kib();
    let roster = Arc::new(MemoryRosterStore::new());
    let connected_at = OffsetDateTime::now_utc() - time::Duration::hours(1);
    for i in 0..connections {
        let record = ConnectionRecord::from_raw(
            &format!("conn-{i:06}"),
            &format!("tenant-{}", i % 100),
            &format!("user-{}", i % 1_000),
            vec![],
            connected_at,
            7_500,
        )
        .unwrap();
        roster.put(&record).await.unwrap();
    }
    println!(
        "roster: {connections} connections in one in-memory roster shared by the workers (standing in \
         for DynamoDB); process peak RSS {:.1} MB before it, {:.1} MB with it",
        rss_start as f64 / 1024.0,
        peak_rss_kib() as f64 / 1024.0
    );
    let roster_kib = peak_rss_kib();
    run("run 1: no faults", &roster, settings, roster_kib, None).await;
    let failing = (connections > 777).then_some(FAILING);
    run(
        &format!(
            "run 2: the endpoint answers 500 to {} always (retry work items after {} ms, doubling)",
            failing.unwrap_or("-"),
            RETRY_ITEM_DELAY.as_millis()
        ),
        &roster,
        settings,
        roster_kib,
        failing,
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Process figures from /proc.

/// Peak resident set size (`VmHWM`) of this process, in KiB (0 where /proc is missing).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmHWM:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// User + system CPU time of this process, in seconds (clock ticks of 1/100 s).
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let after = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            // Fields 14 and 15 of stat(5); `after` starts at field 3.
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some((user + system) / 100.0)
        })
        .unwrap_or(0.0)
}
