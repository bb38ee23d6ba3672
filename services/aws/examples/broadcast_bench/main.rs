//! Broadcast benchmark (a command, not a test): one `broadcast` message to every connection
//! of a large roster, delivered by N publisher workers that drain one shared queue of work
//! items (docs/design.md: Fan-out at any size), against a fake management endpoint
//! (`endpoint.rs`) that enforces the account's PostToConnection quota.
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
//! - Figures per run (`timeline.rs`): the posts accepted per second and the workers busy,
//!   when the first and last post were accepted, each worker's busy time and posts, and the
//!   page items handed back unrun (`services/core/src/publisher/handback.rs`); the machine's
//!   load average before each run (figures from a loaded machine read low).
//! - Run 1: no faults. Run 2: the endpoint answers 500 to one connection, always; the bench
//!   counts the posts re-sent to everyone else and checks that connection ends in the
//!   dead-letter queue after `MAX_WORK_ATTEMPTS` work attempts.
//!
//! ```text
//! cargo run --release -p switchboard-aws --example broadcast_bench -- \
//!     [connections] [budget] [workers] [scan_segments] [batch_size] [page_size]
//! ```
//! (defaults 100000, 5000, 10, 4, 10, 1000: the stack's defaults)

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark command: a broken setup aborts it

mod endpoint;
mod figures;
mod queue;
mod timeline;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_aws::{load_sdk_config, ApiGatewayPoster, LocalDefaults};
use switchboard_core::publisher::{Publisher, PublisherConfig, PublisherPorts, MAX_WORK_ATTEMPTS};
use switchboard_core::roster::{ConnectionRecord, MemoryRosterStore, RosterStore};
use switchboard_core::testkit::RecordingQueue;
use time::OffsetDateTime;

use endpoint::{endpoint, EndpointProcess, ENDPOINT_BURST, ENDPOINT_RATE, POST_DELAY};
use figures::{cpu_secs, load_average, peak_rss_kib};
use queue::SharedQueue;
use timeline::{TimedPoster, Timeline};

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
        page_size: arg(6, 1_000).clamp(1, 10_000),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench(settings));
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
    /// Time spent handling batches.
    busy: Duration,
    /// Most items taken in one batch, and most of them run there (the others were handed
    /// back: taken items without a report).
    largest_batch: usize,
    most_run: usize,
    handed_back: usize,
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
        self.busy += other.busy;
        self.largest_batch = self.largest_batch.max(other.largest_batch);
        self.most_run = self.most_run.max(other.most_run);
        self.handed_back += other.handed_back;
    }
}

async fn worker(
    publisher: Publisher,
    queue: Arc<SharedQueue>,
    batch_size: usize,
    timeline: Arc<Timeline>,
) -> WorkerTotals {
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
        timeline.busy(true);
        let started = Instant::now();
        let outcome = publisher.handle_batch(&batch).await;
        totals.busy += started.elapsed();
        timeline.busy(false);
        totals.batches += 1;
        totals.items += batch.len();
        totals.largest_batch = totals.largest_batch.max(batch.len());
        totals.most_run = totals.most_run.max(outcome.reports.len());
        totals.handed_back += batch.len().saturating_sub(outcome.reports.len());
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
    page_size: usize,
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
        page_size,
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
        page_size,
        ..PublisherConfig::default()
    };
    // Bound the run: five times the budget's time plus a minute.
    let limit = Duration::from_secs_f64(connections as f64 / budget as f64 * 5.0 + 60.0);
    let timeline = Timeline::new(limit);
    let publishers: Vec<Publisher> = (0..workers)
        .map(|_| {
            Publisher::new(
                PublisherPorts {
                    roster: roster.clone(),
                    poster: Arc::new(TimedPoster {
                        inner: Arc::new(ApiGatewayPoster::new(&sdk, &endpoint.url)),
                        timeline: timeline.clone(),
                    }),
                    dead_letters: dead_letters.clone(),
                    work_queue: queue.clone(),
                },
                config.clone(),
            )
        })
        .collect();
    println!("\n{title} (load average before: {})", load_average());
    let cpu_before = cpu_secs();
    let started = Instant::now();
    queue
        .push(
            r#"{"id":"broadcast-1","target":{"type":"broadcast"},"data":{"n":1}}"#,
            1,
            None,
        )
        .unwrap();
    let sampler = timeline.clone().sample();
    let handles: Vec<_> = publishers
        .into_iter()
        .map(|p| tokio::spawn(worker(p, queue.clone(), batch_size, timeline.clone())))
        .collect();
    let aborts: Vec<_> = handles.iter().map(|h| h.abort_handle()).collect();
    let joined = tokio::time::timeout(limit, futures::future::join_all(handles)).await;
    let elapsed = started.elapsed();
    let cpu = cpu_secs() - cpu_before;
    sampler.abort();
    let mut totals = WorkerTotals::default();
    let mut each = Vec::new();
    match joined {
        Ok(results) => {
            for result in results {
                let worker = result.unwrap();
                totals.add(&worker);
                each.push(worker);
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
         page size {page_size}, queue batches of up to {batch_size}"
    );
    println!(
        "  delivered {} of {connections} connections in {secs:.2} s = {rate:.0} posts/s = {:.2} x budget (goal >= 0.9)",
        stats.distinct,
        rate / budget as f64
    );
    timeline.print(elapsed, budget);
    let busy: Vec<String> = each
        .iter()
        .map(|w| format!("{:.1}", w.busy.as_secs_f64()))
        .collect();
    let delivered: Vec<String> = each.iter().map(|w| w.delivered.to_string()).collect();
    println!(
        "  workers busy {:.0}% of the run (s each: {}); posts each: {} (bucket use {:.0}% of {fanout_rate}/s x {secs:.1} s)",
        totals.busy.as_secs_f64() / (secs * workers as f64) * 100.0,
        busy.join(" "),
        delivered.join(" "),
        totals.delivered as f64 / (f64::from(fanout_rate) * workers as f64 * secs) * 100.0
    );
    println!(
        "  batches: largest {} item(s), most run in one batch {}; {} item(s) handed back to the queue unrun",
        totals.largest_batch, totals.most_run, totals.handed_back
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
                "  re-sent posts to other connections: {} (goal <= one page = {page_size}; expect 0); \
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
