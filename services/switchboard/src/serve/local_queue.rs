//! The in-process queue: what SQS and its redrive policy are in AWS. It hands the publisher
//! SQS-shaped batches (up to 10 messages), redelivers a message reported in
//! `batchItemFailures` after the visibility timeout, and moves it to the dead-letter list
//! after `max_receives` receives. Malformed bodies arrive in the dead-letter list at once,
//! through the `DeadLetterSink` port. Nothing here survives a restart.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use switchboard_core::publisher::{BatchOutcome, Publisher};
use switchboard_core::queue::{
    DeadLetter, DeadLetterSink, InboundMessage, MessageQueue, QueueError, MAX_ENQUEUE_DELAY,
};
use time::OffsetDateTime;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;

use super::metrics::Metrics;

/// The envelope id of a queued body (the id the publisher was given), or `-`.
fn envelope_id(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: Option<String>,
    }
    serde_json::from_str::<IdOnly>(body)
        .ok()
        .and_then(|e| e.id)
        .unwrap_or_else(|| "-".into())
}

/// `Retry-After` of a refused publish.
const RETRY_AFTER_SECS: u64 = 1;

/// Queue behaviour.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Delay before a failed message is handed out again (SQS visibility timeout).
    pub visibility_timeout: Duration,
    /// Receives after which a still-failing message moves to the dead letters.
    pub max_receives: u32,
    /// Messages per batch (SQS's maximum is 10).
    pub batch_size: usize,
    /// Batches processed at once.
    pub concurrent_batches: usize,
    /// `QUEUE_CAPACITY`: messages held (waiting, delayed or in flight) before publishes
    /// are refused (503 + `Retry-After`).
    pub capacity: usize,
    /// `DEAD_LETTER_CAPACITY`: dead letters kept; the oldest is dropped (and counted).
    pub dead_letter_capacity: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(5),
            max_receives: 5,
            batch_size: 10,
            concurrent_batches: 4,
            capacity: 100_000,
            dead_letter_capacity: 10_000,
        }
    }
}

/// A message in the dead-letter list (`GET /v1/dead-letters`).
#[derive(Debug, Clone, Serialize)]
pub struct DeadEntry {
    /// Position in the list (the pagination cursor); never reused.
    #[serde(skip)]
    pub seq: u64,
    pub id: String,
    pub body: String,
    pub error: String,
    #[serde(rename = "receiveCount")]
    pub receive_count: u32,
    #[serde(rename = "deadAt", with = "time::serde::rfc3339")]
    pub dead_at: OffsetDateTime,
}

#[derive(Default)]
struct State {
    ready: VecDeque<InboundMessage>,
    delayed: Vec<(Instant, InboundMessage)>,
    in_flight: usize,
    /// Oldest first, `seq` increasing.
    dead: VecDeque<DeadEntry>,
    next_dead_seq: u64,
}

impl State {
    fn depth(&self) -> usize {
        self.ready.len() + self.delayed.len() + self.in_flight
    }
}

/// One page of dead letters and the cursor of the next, if any.
pub struct DeadLetterPage {
    pub items: Vec<DeadEntry>,
    pub next: Option<u64>,
}

/// The queue, shared by the publish API (producer) and the worker (consumer).
pub struct LocalQueue {
    state: Mutex<State>,
    /// Cleared at shutdown: publishes are then refused.
    accepting: AtomicBool,
    wake: Notify,
    config: QueueConfig,
    metrics: Arc<Metrics>,
}

impl LocalQueue {
    pub fn new(config: QueueConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            state: Mutex::new(State::default()),
            accepting: AtomicBool::new(true),
            wake: Notify::new(),
            config,
            metrics,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State inconsistent in a way that
        // matters more than stopping delivery would; keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update_gauges(&self, state: &State) {
        let depth = state.depth();
        self.metrics
            .queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.metrics
            .dead_letters
            .set(i64::try_from(state.dead.len()).unwrap_or(i64::MAX));
    }

    /// Adds a dead letter, dropping (and counting) the oldest beyond the capacity.
    fn push_dead(&self, state: &mut State, mut entry: DeadEntry) {
        entry.seq = state.next_dead_seq;
        state.next_dead_seq += 1;
        while state.dead.len() >= self.config.dead_letter_capacity.max(1) {
            if let Some(dropped) = state.dead.pop_front() {
                tracing::warn!(message_id = %dropped.id, "dead-letter list full: oldest dropped");
                self.metrics.dead_letters_dropped.inc();
            }
        }
        state.dead.push_back(entry);
    }

    /// Up to `limit` of the dead letters `keep` accepts, from cursor `from` (oldest
    /// first; `next` is the cursor of the next accepted one); copies only those.
    pub fn dead_letters_page(
        &self,
        from: Option<u64>,
        limit: usize,
        keep: impl Fn(&DeadEntry) -> bool,
    ) -> DeadLetterPage {
        let state = self.state();
        let start = from.map_or(0, |seq| state.dead.partition_point(|e| e.seq < seq));
        let mut kept = state.dead.iter().skip(start).filter(|e| keep(e));
        let items: Vec<DeadEntry> = kept.by_ref().take(limit).cloned().collect();
        let next = kept.next().map(|e| e.seq);
        DeadLetterPage { items, next }
    }

    /// Stops taking publishes (shutdown): `enqueue` answers `Full` from now on.
    pub fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::SeqCst);
    }

    /// Messages waiting, delayed or in flight.
    pub fn depth(&self) -> usize {
        self.state().depth()
    }

    /// Waits until nothing is waiting, delayed or in flight (true), or `deadline` (false).
    pub async fn drained(&self, deadline: Instant) -> bool {
        loop {
            if self.depth() == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            let step = Instant::now() + Duration::from_millis(20);
            tokio::time::sleep_until(step.min(deadline)).await;
        }
    }

    /// Logs (warn) the id of every message still held: nothing is dropped silently.
    pub fn log_undelivered(&self) {
        let state = self.state();
        let held = state
            .ready
            .iter()
            .chain(state.delayed.iter().map(|(_, m)| m));
        let mut count = 0usize;
        for message in held {
            count += 1;
            tracing::warn!(
                id = %envelope_id(&message.body),
                message_id = %message.message_id,
                "undelivered at shutdown"
            );
        }
        if state.in_flight > 0 {
            tracing::warn!(
                in_flight = state.in_flight,
                "shutdown: batches still in flight were abandoned (their ids were logged when taken)"
            );
        }
        if count > 0 {
            tracing::warn!(count, "shutdown: messages left undelivered");
        }
    }

    /// Puts the dead letters `keep` accepts back on the queue (receive count reset); the
    /// others stay, in order. Returns how many went back.
    pub fn redrive(&self, keep: impl Fn(&DeadEntry) -> bool) -> usize {
        let mut state = self.state();
        let (dead, stay): (VecDeque<DeadEntry>, VecDeque<DeadEntry>) =
            std::mem::take(&mut state.dead)
                .into_iter()
                .partition(|e| keep(e));
        state.dead = stay;
        let count = dead.len();
        for entry in dead {
            state.ready.push_back(InboundMessage {
                message_id: uuid::Uuid::new_v4().to_string(),
                body: entry.body,
                receive_count: 0,
            });
        }
        self.update_gauges(&state);
        drop(state);
        self.wake.notify_one();
        count
    }

    /// Takes the next batch, waiting until one is due; `None` once `shutdown` is set.
    async fn next_batch(
        &self,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<Vec<InboundMessage>> {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next_due = {
                let mut state = self.state();
                let now = Instant::now();
                let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut state.delayed)
                    .into_iter()
                    .partition(|(at, _)| *at <= now);
                state.delayed = later;
                state.ready.extend(due.into_iter().map(|(_, m)| m));
                if !state.ready.is_empty() {
                    let take = state.ready.len().min(self.config.batch_size);
                    let batch: Vec<InboundMessage> = state
                        .ready
                        .drain(..take)
                        .map(|mut m| {
                            m.receive_count += 1;
                            m
                        })
                        .collect();
                    state.in_flight += batch.len();
                    return Some(batch);
                }
                state.delayed.iter().map(|(at, _)| *at).min()
            };
            let sleep_until =
                next_due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(sleep_until) => {}
                _ = shutdown.changed() => return None,
            }
            if *shutdown.borrow() {
                return None;
            }
        }
    }

    /// Applies a batch's result: failed messages are delayed for redelivery, or moved to
    /// the dead letters after `max_receives`.
    fn settle(&self, batch: Vec<InboundMessage>, outcome: &BatchOutcome) {
        for report in &outcome.reports {
            self.metrics.record(report);
        }
        let failed: HashSet<&str> = outcome
            .failed_message_ids
            .iter()
            .map(String::as_str)
            .collect();
        let mut state = self.state();
        state.in_flight = state.in_flight.saturating_sub(batch.len());
        for message in batch {
            if !failed.contains(message.message_id.as_str()) {
                continue;
            }
            if message.receive_count >= self.config.max_receives {
                let error = outcome
                    .reports
                    .iter()
                    .find(|r| r.message_id == message.message_id)
                    .and_then(|r| r.error.clone())
                    .unwrap_or_else(|| "delivery failed".into());
                tracing::warn!(message_id = %message.message_id, receives = message.receive_count, "moved to dead letters");
                self.push_dead(
                    &mut state,
                    DeadEntry {
                        seq: 0,
                        id: message.message_id,
                        body: message.body,
                        error: format!("failed after {} receives: {error}", message.receive_count),
                        receive_count: message.receive_count,
                        dead_at: OffsetDateTime::now_utc(),
                    },
                );
            } else {
                self.metrics.redeliveries.inc();
                let at = Instant::now() + self.config.visibility_timeout;
                state.delayed.push((at, message));
            }
        }
        self.update_gauges(&state);
        drop(state);
        self.wake.notify_one();
    }

    /// The consumer: hands batches to `publisher` until `shutdown`, then waits (at most
    /// `drain`) for the batches in flight.
    pub async fn run(
        self: Arc<Self>,
        publisher: Publisher,
        mut shutdown: watch::Receiver<bool>,
        drain: Duration,
    ) {
        let slots = self.config.concurrent_batches.max(1);
        let permits = Arc::new(Semaphore::new(slots));
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let Some(batch) = self.next_batch(&mut shutdown).await else {
                break;
            };
            let queue = self.clone();
            let publisher = publisher.clone();
            tokio::spawn(async move {
                let outcome = publisher.handle_batch(&batch).await;
                queue.settle(batch, &outcome);
                drop(permit);
            });
        }
        let all = u32::try_from(slots).unwrap_or(u32::MAX);
        if tokio::time::timeout(drain, permits.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!("shutdown: batches still in flight after the drain bound");
        }
    }
}

#[async_trait]
impl MessageQueue for LocalQueue {
    async fn enqueue(&self, _id: &str, body: &str) -> Result<(), QueueError> {
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(QueueError::Full {
                reason: "shutting down".into(),
                retry_after_secs: RETRY_AFTER_SECS,
            });
        }
        let mut state = self.state();
        if state.depth() >= self.config.capacity {
            self.metrics.publishes_refused.inc();
            return Err(QueueError::Full {
                reason: format!("the queue holds {} messages", self.config.capacity),
                retry_after_secs: RETRY_AFTER_SECS,
            });
        }
        self.metrics.enqueued.inc();
        state.ready.push_back(InboundMessage {
            message_id: uuid::Uuid::new_v4().to_string(),
            body: body.to_string(),
            receive_count: 0,
        });
        self.update_gauges(&state);
        drop(state);
        self.wake.notify_one();
        Ok(())
    }

    async fn enqueue_delayed(
        &self,
        _id: &str,
        body: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        // The publisher's own work items (continuations, retries): not refused for
        // capacity or at shutdown, so a message already accepted can finish its chain.
        self.metrics.enqueued.inc();
        let message = InboundMessage {
            message_id: uuid::Uuid::new_v4().to_string(),
            body: body.to_string(),
            receive_count: 0,
        };
        let mut state = self.state();
        if delay.is_zero() {
            state.ready.push_back(message);
        } else {
            let at = Instant::now() + delay.min(MAX_ENQUEUE_DELAY);
            state.delayed.push((at, message));
        }
        self.update_gauges(&state);
        drop(state);
        self.wake.notify_one();
        Ok(())
    }
}

#[async_trait]
impl DeadLetterSink for LocalQueue {
    async fn dead_letter(&self, letter: DeadLetter) -> Result<(), QueueError> {
        let mut state = self.state();
        self.push_dead(
            &mut state,
            DeadEntry {
                seq: 0,
                id: letter.message_id,
                body: letter.body,
                error: letter.error,
                receive_count: letter.receive_count,
                dead_at: OffsetDateTime::now_utc(),
            },
        );
        self.update_gauges(&state);
        Ok(())
    }
}
