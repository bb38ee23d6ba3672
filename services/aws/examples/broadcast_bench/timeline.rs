//! What happened over time in one run, measured in the worker process: the posts the
//! endpoint accepted per second (seen by each worker's poster), when the first and the last
//! were accepted, and how many workers were handling a batch (sampled every
//! [`SAMPLE`]). These figures tell where a run below the budget lost its time: at the start
//! (before the first post), in the tail (few workers busy), or in between.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use switchboard_core::poster::{ConnectionPoster, Frame, PostError};
use switchboard_model::ConnectionId;

/// How often the busy workers are counted.
const SAMPLE: Duration = Duration::from_millis(20);

/// One run's timeline, one slot per second, at most `slots` seconds (later posts count
/// in the last slot).
pub(crate) struct Timeline {
    started: Instant,
    /// Accepted posts per second.
    posts: Vec<AtomicU64>,
    /// Per second: the sum of the busy-worker samples, and how many samples.
    busy_sum: Vec<AtomicU64>,
    busy_samples: Vec<AtomicU64>,
    /// Microseconds from the start to the first and the last accepted post.
    first_post: AtomicU64,
    last_post: AtomicU64,
    /// Workers handling a batch now.
    busy: AtomicUsize,
}

impl Timeline {
    pub(crate) fn new(limit: Duration) -> Arc<Self> {
        let slots = usize::try_from(limit.as_secs())
            .unwrap_or(usize::MAX)
            .clamp(1, 100_000)
            + 1;
        let zeros = || (0..slots).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
        Arc::new(Self {
            started: Instant::now(),
            posts: zeros(),
            busy_sum: zeros(),
            busy_samples: zeros(),
            first_post: AtomicU64::new(u64::MAX),
            last_post: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
        })
    }

    fn micros(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn slot(&self, micros: u64) -> usize {
        usize::try_from(micros / 1_000_000)
            .unwrap_or(usize::MAX)
            .min(self.posts.len() - 1)
    }

    fn accepted(&self) {
        let now = self.micros();
        self.posts[self.slot(now)].fetch_add(1, Ordering::Relaxed);
        self.first_post.fetch_min(now, Ordering::Relaxed);
        self.last_post.fetch_max(now, Ordering::Relaxed);
    }

    /// A worker starts (`true`) or ends (`false`) handling a batch.
    pub(crate) fn busy(&self, busy: bool) {
        if busy {
            self.busy.fetch_add(1, Ordering::SeqCst);
        } else {
            self.busy.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Counts the busy workers every [`SAMPLE`] until the task is aborted.
    pub(crate) fn sample(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE);
            loop {
                tick.tick().await;
                let slot = self.slot(self.micros());
                let busy = self.busy.load(Ordering::SeqCst) as u64;
                self.busy_sum[slot].fetch_add(busy, Ordering::Relaxed);
                self.busy_samples[slot].fetch_add(1, Ordering::Relaxed);
            }
        })
    }

    /// Prints the figures of a run that took `elapsed` against `budget` posts/s.
    pub(crate) fn print(&self, elapsed: Duration, budget: usize) {
        let first = self.first_post.load(Ordering::Relaxed);
        let last = self.last_post.load(Ordering::Relaxed);
        if first > last {
            println!("  timeline: no post accepted");
            return;
        }
        let total: u64 = self.posts.iter().map(|p| p.load(Ordering::Relaxed)).sum();
        let (first, last) = (first as f64 / 1e6, last as f64 / 1e6);
        let steady = total as f64 / (last - first).max(1e-3);
        println!(
            "  timeline: first post accepted {first:.2} s after the start, last {last:.2} s, run ended {:.2} s; \
             from first to last post {steady:.0} posts/s = {:.2} x budget",
            elapsed.as_secs_f64(),
            steady / budget as f64
        );
        let seconds = usize::try_from(elapsed.as_secs())
            .unwrap_or(usize::MAX)
            .min(self.posts.len() - 1)
            + 1;
        let posts: Vec<String> = self.posts[..seconds]
            .iter()
            .map(|p| p.load(Ordering::Relaxed).to_string())
            .collect();
        let busy: Vec<String> = (0..seconds)
            .map(|s| {
                let samples = self.busy_samples[s].load(Ordering::Relaxed).max(1);
                format!(
                    "{:.1}",
                    self.busy_sum[s].load(Ordering::Relaxed) as f64 / samples as f64
                )
            })
            .collect();
        for (start, (posts, busy)) in posts.chunks(20).zip(busy.chunks(20)).enumerate() {
            println!(
                "  second {:>4}+ posts/s:      {}",
                start * 20,
                posts.join(" ")
            );
            println!("               busy workers: {}", busy.join(" "));
        }
    }
}

/// A worker's poster that tells the timeline about every accepted post.
pub(crate) struct TimedPoster {
    pub(crate) inner: Arc<dyn ConnectionPoster>,
    pub(crate) timeline: Arc<Timeline>,
}

#[async_trait]
impl ConnectionPoster for TimedPoster {
    async fn post(&self, connection: &ConnectionId, frame: &Frame) -> Result<(), PostError> {
        let result = self.inner.post(connection, frame).await;
        if result.is_ok() {
            self.timeline.accepted();
        }
        result
    }

    async fn close(&self, connection: &ConnectionId) -> Result<(), PostError> {
        self.inner.close(connection).await
    }
}
