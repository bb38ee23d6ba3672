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
//! concurrently.

use std::collections::{HashMap, HashSet, VecDeque};
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

/// The ordering group of a queued body: `<target type>:<tenant>` for envelopes and the page
/// items that continue them, so all messages of one history stream share a group; a unique
/// group (no ordering) for `connections` targets, retries of failed posts and bodies that are
/// not envelopes.
fn order_group(body: &str, message_id: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Probe {
        target: Option<TargetProbe>,
        shard: Option<ShardProbe>,
    }
    #[derive(serde::Deserialize)]
    struct TargetProbe {
        #[serde(rename = "type")]
        kind: String,
        tenant: Option<String>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct ShardProbe {
        target_type: String,
        tenant: Option<String>,
        work: WorkProbe,
    }
    #[derive(serde::Deserialize)]
    struct WorkProbe {
        page: Option<serde::de::IgnoredAny>,
    }
    let ordered = match serde_json::from_str::<Probe>(body) {
        Ok(Probe {
            target: Some(target),
            shard: None,
        }) => Some((target.kind, target.tenant)),
        Ok(Probe {
            target: None,
            shard: Some(shard),
        }) if shard.work.page.is_some() => Some((shard.target_type, shard.tenant)),
        _ => None,
    };
    match ordered {
        Some((kind, tenant)) if kind != "connections" => {
            format!("={kind}:{}", tenant.as_deref().unwrap_or("*"))
        }
        _ => format!("#{message_id}"),
    }
}

/// A message handed out, with the ordering group it holds until it is settled.
struct Taken {
    group: String,
    message: InboundMessage,
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
    /// Waiting messages per ordering group, oldest first (no empty entries).
    waiting: HashMap<String, VecDeque<InboundMessage>>,
    /// Messages in `waiting`.
    waiting_count: usize,
    /// Groups with a waiting message and none in flight, each once, in the order they
    /// became runnable.
    runnable: VecDeque<String>,
    /// Groups with a message in flight.
    busy: HashSet<String>,
    delayed: Vec<(Instant, String, InboundMessage)>,
    in_flight: usize,
    /// Oldest first, `seq` increasing.
    dead: VecDeque<DeadEntry>,
    next_dead_seq: u64,
}

impl State {
    fn depth(&self) -> usize {
        self.waiting_count + self.delayed.len() + self.in_flight
    }

    /// Appends a message to its group.
    fn push(&mut self, group: String, message: InboundMessage) {
        let queue = self.waiting.entry(group.clone()).or_default();
        let was_empty = queue.is_empty();
        queue.push_back(message);
        self.waiting_count += 1;
        if was_empty && !self.busy.contains(&group) {
            self.runnable.push_back(group);
        }
    }

    /// Takes the oldest message of the next runnable group; the group is busy until
    /// `release`.
    fn take(&mut self) -> Option<Taken> {
        while let Some(group) = self.runnable.pop_front() {
            let Some(queue) = self.waiting.get_mut(&group) else {
                continue;
            };
            let Some(message) = queue.pop_front() else {
                self.waiting.remove(&group);
                continue;
            };
            if queue.is_empty() {
                self.waiting.remove(&group);
            }
            self.waiting_count = self.waiting_count.saturating_sub(1);
            self.busy.insert(group.clone());
            return Some(Taken { group, message });
        }
        None
    }

    /// Ends a group's turn: its next message (if any) becomes runnable.
    fn release(&mut self, group: &str) {
        self.busy.remove(group);
        if self.waiting.contains_key(group) {
            self.runnable.push_back(group.to_string());
        }
    }

    /// Every message waiting or delayed.
    fn held(&self) -> impl Iterator<Item = &InboundMessage> {
        self.waiting
            .values()
            .flatten()
            .chain(self.delayed.iter().map(|(_, _, m)| m))
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
        let mut count = 0usize;
        for message in state.held() {
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
            let message_id = uuid::Uuid::new_v4().to_string();
            let group = order_group(&entry.body, &message_id);
            state.push(
                group,
                InboundMessage {
                    message_id,
                    body: entry.body,
                    receive_count: 0,
                },
            );
        }
        self.update_gauges(&state);
        drop(state);
        self.wake.notify_one();
        count
    }

    /// Takes the next batch (at most one message per ordering group), waiting until one is
    /// due; `None` once `shutdown` is set.
    async fn next_batch(&self, shutdown: &mut watch::Receiver<bool>) -> Option<Vec<Taken>> {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next_due = {
                let mut state = self.state();
                let now = Instant::now();
                let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut state.delayed)
                    .into_iter()
                    .partition(|(at, _, _)| *at <= now);
                state.delayed = later;
                for (_, group, message) in due {
                    state.push(group, message);
                }
                let mut batch = Vec::new();
                while batch.len() < self.config.batch_size.max(1) {
                    let Some(mut taken) = state.take() else {
                        break;
                    };
                    taken.message.receive_count += 1;
                    batch.push(taken);
                }
                if !batch.is_empty() {
                    state.in_flight += batch.len();
                    return Some(batch);
                }
                state.delayed.iter().map(|(at, _, _)| *at).min()
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
    fn settle(&self, batch: Vec<Taken>, outcome: &BatchOutcome) {
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
        for Taken { group, message } in batch {
            state.release(&group);
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
                state.delayed.push((at, group, message));
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
                let messages: Vec<InboundMessage> =
                    batch.iter().map(|t| t.message.clone()).collect();
                let outcome = publisher.handle_batch(&messages).await;
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
        let message_id = uuid::Uuid::new_v4().to_string();
        let group = order_group(body, &message_id);
        state.push(
            group,
            InboundMessage {
                message_id,
                body: body.to_string(),
                receive_count: 0,
            },
        );
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
        let message_id = uuid::Uuid::new_v4().to_string();
        let group = order_group(body, &message_id);
        let message = InboundMessage {
            message_id,
            body: body.to_string(),
            receive_count: 0,
        };
        let mut state = self.state();
        if delay.is_zero() {
            state.push(group, message);
        } else {
            let at = Instant::now() + delay.min(MAX_ENQUEUE_DELAY);
            state.delayed.push((at, group, message));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(config: QueueConfig) -> LocalQueue {
        LocalQueue::new(config, Arc::new(Metrics::new()))
    }

    fn envelope(kind: &str, tenant: &str, n: u32) -> String {
        format!(
            r#"{{"id":"m{n}","target":{{"type":"{kind}","tenant":"{tenant}","users":["u"]}},"data":{n}}}"#
        )
    }

    fn ids(batch: &[Taken]) -> Vec<String> {
        batch.iter().map(|t| envelope_id(&t.message.body)).collect()
    }

    async fn next(queue: &LocalQueue) -> Vec<Taken> {
        let (_tx, mut rx) = watch::channel(false);
        match tokio::time::timeout(Duration::from_secs(60), queue.next_batch(&mut rx)).await {
            Ok(Some(batch)) => batch,
            other => panic!("no batch: {:?}", other.map(|b| b.map(|b| ids(&b)))),
        }
    }

    fn failing(batch: &[Taken]) -> BatchOutcome {
        BatchOutcome {
            failed_message_ids: batch.iter().map(|t| t.message.message_id.clone()).collect(),
            reports: Vec::new(),
        }
    }

    #[test]
    fn order_groups_follow_streams() {
        assert_eq!(
            order_group(&envelope("users", "acme", 1), "q1"),
            "=users:acme"
        );
        assert_eq!(
            order_group(&envelope("tenant", "acme", 1), "q1"),
            "=tenant:acme"
        );
        assert_eq!(
            order_group(r#"{"target":{"type":"broadcast"},"data":1}"#, "q1"),
            "=broadcast:*"
        );
        assert_eq!(
            order_group(&envelope("connections", "acme", 1), "q1"),
            "#q1"
        );
        assert_eq!(order_group("not json", "q2"), "#q2");
        assert_eq!(order_group("[1,2]", "q3"), "#q3");
        let page = r#"{"shard":{"id":"m","targetType":"tenant","tenant":"acme","frame":"{}","attempt":1,"work":{"page":{"scope":{"tenant":"acme"}}}}}"#;
        assert_eq!(order_group(page, "q4"), "=tenant:acme");
        let retry = r#"{"shard":{"id":"m","targetType":"tenant","tenant":"acme","frame":"{}","attempt":2,"work":{"connections":{"connections":[]}}}}"#;
        assert_eq!(order_group(retry, "q5"), "#q5");
    }

    #[tokio::test(start_paused = true)]
    async fn one_message_per_group_at_a_time_in_accepted_order() {
        let queue = queue(QueueConfig::default());
        for n in 0..3 {
            queue
                .enqueue("", &envelope("tenant", "acme", n))
                .await
                .unwrap();
        }
        queue
            .enqueue("", &envelope("tenant", "other", 9))
            .await
            .unwrap();
        queue
            .enqueue("", &envelope("users", "acme", 7))
            .await
            .unwrap();

        // Each group contributes its oldest message only.
        let first = next(&queue).await;
        assert_eq!(ids(&first), ["m0", "m9", "m7"]);
        assert_eq!(queue.depth(), 5);
        // While they are in flight, acme's tenant stream has nothing to hand out.
        let (_tx, mut rx) = watch::channel(false);
        let waited = tokio::time::timeout(Duration::from_secs(30), queue.next_batch(&mut rx)).await;
        assert!(
            waited.is_err(),
            "a busy group's next message was handed out"
        );

        queue.settle(first, &BatchOutcome::default());
        assert_eq!(ids(&next(&queue).await), ["m1"]);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_messages_come_back_after_the_visibility_timeout_then_die() {
        let config = QueueConfig {
            visibility_timeout: Duration::from_secs(5),
            max_receives: 3,
            ..QueueConfig::default()
        };
        let queue = queue(config);
        queue
            .enqueue("", &envelope("users", "acme", 1))
            .await
            .unwrap();
        let start = Instant::now();
        for receive in 1..=3u32 {
            let batch = next(&queue).await;
            assert_eq!(batch[0].message.receive_count, receive);
            let expected = Duration::from_secs(5) * (receive - 1);
            assert_eq!(
                start.elapsed(),
                expected,
                "receive {receive} came at the wrong time"
            );
            let outcome = failing(&batch);
            queue.settle(batch, &outcome);
        }
        assert_eq!(queue.depth(), 0);
        let dead = queue.dead_letters_page(None, 10, |_| true);
        assert_eq!(dead.items.len(), 1);
        assert_eq!(dead.items[0].receive_count, 3);
        assert!(
            dead.items[0].error.contains("after 3 receives"),
            "{}",
            dead.items[0].error
        );

        // Redrive puts it back with a fresh receive count.
        assert_eq!(queue.redrive(|_| true), 1);
        let again = next(&queue).await;
        assert_eq!(again[0].message.receive_count, 1);
        assert_eq!(envelope_id(&again[0].message.body), "m1");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_message_releases_its_group() {
        let queue = queue(QueueConfig::default());
        queue
            .enqueue("", &envelope("tenant", "acme", 1))
            .await
            .unwrap();
        queue
            .enqueue("", &envelope("tenant", "acme", 2))
            .await
            .unwrap();
        let first = next(&queue).await;
        let outcome = failing(&first);
        queue.settle(first, &outcome);
        // The next message of the group goes on; the failed one waits for its redelivery.
        assert_eq!(ids(&next(&queue).await), ["m2"]);
        assert_eq!(queue.depth(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn capacity_refuses_publishes_but_not_work_items() {
        let queue = queue(QueueConfig {
            capacity: 2,
            ..QueueConfig::default()
        });
        queue
            .enqueue("", &envelope("users", "acme", 1))
            .await
            .unwrap();
        queue
            .enqueue("", &envelope("users", "acme", 2))
            .await
            .unwrap();
        let refused = queue.enqueue("", &envelope("users", "acme", 3)).await;
        assert!(
            matches!(refused, Err(QueueError::Full { .. })),
            "{refused:?}"
        );
        queue
            .enqueue_delayed("", &envelope("users", "acme", 4), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(queue.depth(), 3);
    }
}
