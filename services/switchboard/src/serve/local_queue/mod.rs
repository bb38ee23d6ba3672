//! The in-process queue: what SQS and its redrive policy are in AWS. It hands the publisher
//! SQS-shaped batches (up to 10 messages), redelivers a message reported in
//! `batchItemFailures` after the visibility timeout, and moves it to the dead-letter list
//! after `max_receives` receives. Malformed bodies arrive in the dead-letter list at once,
//! through the `DeadLetterSink` port. Nothing here survives a restart.
//!
//! Like an SQS FIFO queue with message groups, messages of one ordering group (the target
//! type and tenant: every message of a history stream shares one) are handed out one at a
//! time, in the order they were accepted, so live frames of a stream reach a socket in
//! cursor order. Different groups, `connections` targets and retries of failed posts run
//! concurrently. Like an SQS fair queue, tenants take turns ([`lanes`]): a tenant's backlog
//! delays that tenant only (`QUEUE_FAIRNESS`).
//!
//! Shares (`TENANT_SHARE_PERCENT`): a tenant (or `*`, broadcasts) holding its share of
//! `QUEUE_CAPACITY` has its publishes refused while other tenants' are accepted; the
//! publisher's own work items are never refused. The dead letters ([`dead`]) keep each
//! tenant to its share of `DEAD_LETTER_CAPACITY`, under their own lock.

mod dead;
mod lanes;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use switchboard_core::publisher::{BatchOutcome, Publisher};
use switchboard_core::queue::{
    DeadLetter, DeadLetterSink, InboundMessage, MessageQueue, QueueError, MAX_ENQUEUE_DELAY,
};
use switchboard_core::tenants::share_of;
use switchboard_model::TenantId;
use time::OffsetDateTime;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;

use dead::DeadLetters;
pub use dead::{DeadEntry, DeadLetterPage};
use lanes::{Lanes, Queued, Route};

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
    /// `DEAD_LETTER_CAPACITY`: dead letters kept; beyond, one is dropped (and counted).
    pub dead_letter_capacity: usize,
    /// `TENANT_SHARE_PERCENT`: the percent of `capacity` and of `dead_letter_capacity` one
    /// tenant (or `*`) may hold.
    pub share_percent: u8,
    /// `QUEUE_FAIRNESS`: tenants take turns (true) or messages go in accepted order.
    pub fairness: bool,
}

impl QueueConfig {
    /// Messages one tenant group may hold before its publishes are refused.
    pub fn tenant_share(&self) -> usize {
        share_of(self.capacity, self.share_percent)
    }

    /// Dead letters one tenant group may hold before its own oldest is dropped.
    pub fn dead_letter_share(&self) -> usize {
        share_of(self.dead_letter_capacity, self.share_percent)
    }
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
            share_percent: 25,
            fairness: true,
        }
    }
}

struct State {
    lanes: Lanes,
    delayed: Vec<(Instant, Queued)>,
    in_flight: usize,
}

impl State {
    fn depth(&self) -> usize {
        self.lanes.waiting_count() + self.delayed.len() + self.in_flight
    }
}

/// The queue, shared by the publish API (producer) and the worker (consumer).
pub struct LocalQueue {
    state: Mutex<State>,
    dead: DeadLetters,
    /// Cleared at shutdown: publishes are then refused.
    accepting: AtomicBool,
    wake: Notify,
    config: QueueConfig,
    metrics: Arc<Metrics>,
}

impl LocalQueue {
    pub fn new(config: QueueConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            state: Mutex::new(State {
                lanes: Lanes::new(config.fairness),
                delayed: Vec::new(),
                in_flight: 0,
            }),
            dead: DeadLetters::new(
                config.dead_letter_capacity,
                config.dead_letter_share(),
                metrics.clone(),
            ),
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
        self.metrics
            .queue_depth
            .set(i64::try_from(state.depth()).unwrap_or(i64::MAX));
    }

    /// Up to `limit` dead letters of `tenant` (all: `None`) from cursor `from`, oldest
    /// first; `next` is the cursor of the next one. Never waits for the queue.
    pub fn dead_letters_page(
        &self,
        from: Option<u64>,
        limit: usize,
        tenant: Option<&TenantId>,
    ) -> DeadLetterPage {
        self.dead.page(from, limit, tenant)
    }

    /// Stops taking publishes (shutdown): `enqueue` answers `Full` from now on. Set under
    /// the state lock, where `enqueue` reads it: a publish that saw the queue open is queued
    /// before this returns, so a drain that starts afterwards waits for it.
    pub fn stop_accepting(&self) {
        let _state = self.state();
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
        let mut count = 0usize;
        let held = state
            .lanes
            .waiting()
            .chain(state.delayed.iter().map(|(_, queued)| queued));
        for Queued { message, .. } in held {
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

    /// Puts the dead letters of `tenant` (all: `None`) back on the queue (receive count
    /// reset). Returns how many went back.
    pub fn redrive(&self, tenant: Option<&TenantId>) -> usize {
        self.requeue(self.dead.take(tenant))
    }

    /// Puts the dead letter `id` back on the queue when it belongs to `tenant` (any:
    /// `None`). Returns how many went back (0: no such letter in that scope).
    pub fn redrive_id(&self, id: &str, tenant: Option<&TenantId>) -> usize {
        self.requeue(self.dead.take_id(id, tenant))
    }

    fn requeue(&self, letters: Vec<Arc<DeadEntry>>) -> usize {
        let count = letters.len();
        let again: Vec<Queued> = letters
            .into_iter()
            .map(|letter| {
                let letter = Arc::unwrap_or_clone(letter);
                let message_id = uuid::Uuid::new_v4().to_string();
                Queued {
                    route: Route::of(&letter.body, &message_id),
                    message: InboundMessage {
                        message_id,
                        body: letter.body,
                        receive_count: 0,
                    },
                }
            })
            .collect();
        let mut state = self.state();
        for queued in again {
            state.lanes.admit(&queued.route);
            state.lanes.push(queued);
        }
        self.update_gauges(&state);
        drop(state);
        self.wake.notify_one();
        count
    }

    /// Takes the next batch (at most one message per ordering group, tenants in turn),
    /// waiting until one is due; `None` once `shutdown` is set.
    async fn next_batch(&self, shutdown: &mut watch::Receiver<bool>) -> Option<Vec<Queued>> {
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
                for (_, queued) in due {
                    state.lanes.push(queued);
                }
                let mut batch = Vec::new();
                while batch.len() < self.config.batch_size.max(1) {
                    let Some(mut queued) = state.lanes.take() else {
                        break;
                    };
                    queued.message.receive_count += 1;
                    batch.push(queued);
                }
                if !batch.is_empty() {
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
    fn settle(&self, batch: Vec<Queued>, outcome: &BatchOutcome) {
        for report in &outcome.reports {
            self.metrics.record(report);
        }
        let failed: HashSet<&str> = outcome
            .failed_message_ids
            .iter()
            .map(String::as_str)
            .collect();
        let mut dead = Vec::new();
        let mut state = self.state();
        state.in_flight = state.in_flight.saturating_sub(batch.len());
        for Queued { route, message } in batch {
            state.lanes.release(&route);
            if !failed.contains(message.message_id.as_str()) {
                state.lanes.forget(&route);
            } else if message.receive_count >= self.config.max_receives {
                state.lanes.forget(&route);
                dead.push((route, message));
            } else {
                self.metrics.redeliveries.inc();
                let at = Instant::now() + self.config.visibility_timeout;
                state.delayed.push((at, Queued { route, message }));
            }
        }
        self.update_gauges(&state);
        drop(state);
        self.wake.notify_one();
        for (route, message) in dead {
            let error = outcome
                .reports
                .iter()
                .find(|r| r.message_id == message.message_id)
                .and_then(|r| r.error.clone())
                .unwrap_or_else(|| "delivery failed".into());
            tracing::warn!(message_id = %message.message_id, receives = message.receive_count, "moved to dead letters");
            self.dead.push(DeadEntry {
                seq: 0,
                id: message.message_id,
                body: message.body,
                error: format!("failed after {} receives: {error}", message.receive_count),
                receive_count: message.receive_count,
                dead_at: OffsetDateTime::now_utc(),
                tenant: route.tenant,
            });
        }
    }

    /// The consumer: hands batches to `publisher` until `shutdown`, then waits (at most
    /// `drain`) for the batches in flight. Work items that send Web Push notifications are
    /// split off each batch and run under their own `concurrent_batches` slots, so sends
    /// waiting on a slow push service never hold a slot that posts frames (they wait for
    /// a send slot while held in flight, counted in the queue's depth as before).
    pub async fn run(
        self: Arc<Self>,
        publisher: Publisher,
        mut shutdown: watch::Receiver<bool>,
        drain: Duration,
    ) {
        let slots = self.config.concurrent_batches.max(1);
        let permits = Arc::new(Semaphore::new(slots));
        let send_permits = Arc::new(Semaphore::new(slots));
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let Some(batch) = self.next_batch(&mut shutdown).await else {
                break;
            };
            let (sends, posts): (Vec<Queued>, Vec<Queued>) =
                batch.into_iter().partition(|queued| queued.route.sends);
            if !sends.is_empty() {
                let (queue, publisher) = (self.clone(), publisher.clone());
                let send_permits = send_permits.clone();
                tokio::spawn(async move {
                    let Ok(_slot) = send_permits.acquire_owned().await else {
                        return;
                    };
                    queue.hand(&publisher, sends).await;
                });
            }
            if posts.is_empty() {
                continue;
            }
            let (queue, publisher) = (self.clone(), publisher.clone());
            tokio::spawn(async move {
                queue.hand(&publisher, posts).await;
                drop(permit);
            });
        }
        let all = u32::try_from(slots).unwrap_or(u32::MAX);
        let drained = tokio::time::timeout(drain, async {
            let posting = permits.acquire_many(all).await;
            let sending = send_permits.acquire_many(all).await;
            (posting, sending)
        })
        .await;
        if drained.is_err() {
            tracing::warn!("shutdown: batches still in flight after the drain bound");
        }
    }

    /// Hands one batch to the publisher and settles its outcome.
    async fn hand(&self, publisher: &Publisher, batch: Vec<Queued>) {
        let messages: Vec<InboundMessage> = batch.iter().map(|t| t.message.clone()).collect();
        let outcome = publisher.handle_batch(&messages).await;
        self.settle(batch, &outcome);
    }

    /// Enqueues a message: `publish` ones are refused at the capacity and at the tenant's
    /// share; work items never.
    fn put(&self, body: &str, delay: Duration, publish: bool) -> Result<(), QueueError> {
        let message_id = uuid::Uuid::new_v4().to_string();
        let route = Route::of(body, &message_id);
        let queued = Queued {
            route,
            message: InboundMessage {
                message_id,
                body: body.to_string(),
                receive_count: 0,
            },
        };
        let mut state = self.state();
        if publish {
            // Read under the lock `stop_accepting` takes: checked and queued in one step.
            if !self.accepting.load(Ordering::SeqCst) {
                return Err(QueueError::Full {
                    reason: "shutting down".into(),
                    retry_after_secs: RETRY_AFTER_SECS,
                });
            }
            let refused = if state.depth() >= self.config.capacity {
                Some(format!("the queue holds {} messages", self.config.capacity))
            } else if state.lanes.held(&queued.route.group) >= self.config.tenant_share() {
                Some(format!(
                    "tenant {} holds its share of the queue ({} messages)",
                    queued.route.group,
                    self.config.tenant_share()
                ))
            } else {
                None
            };
            if let Some(reason) = refused {
                drop(state);
                self.metrics.publishes_refused.inc();
                return Err(QueueError::Full {
                    reason,
                    retry_after_secs: RETRY_AFTER_SECS,
                });
            }
        }
        self.metrics.enqueued.inc();
        state.lanes.admit(&queued.route);
        if delay.is_zero() {
            state.lanes.push(queued);
        } else {
            let at = Instant::now() + delay.min(MAX_ENQUEUE_DELAY);
            state.delayed.push((at, queued));
        }
        self.update_gauges(&state);
        drop(state);
        self.wake.notify_one();
        Ok(())
    }
}

#[async_trait]
impl MessageQueue for LocalQueue {
    async fn enqueue(&self, _id: &str, body: &str) -> Result<(), QueueError> {
        self.put(body, Duration::ZERO, true)
    }

    async fn enqueue_delayed(
        &self,
        _id: &str,
        body: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        // The publisher's own work items (continuations, retries): not refused for
        // capacity, share or at shutdown, so a message already accepted can finish its chain.
        self.put(body, delay, false)
    }
}

#[async_trait]
impl DeadLetterSink for LocalQueue {
    async fn dead_letter(&self, letter: DeadLetter) -> Result<(), QueueError> {
        self.dead.push(DeadEntry {
            seq: 0,
            id: letter.message_id,
            body: letter.body,
            error: letter.error,
            receive_count: letter.receive_count,
            dead_at: OffsetDateTime::now_utc(),
            tenant: letter.tenant,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests;
