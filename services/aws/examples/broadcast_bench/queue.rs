//! The shared queue all workers drain (standing in for SQS).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use switchboard_core::queue::{InboundMessage, MessageQueue, QueueError};

/// Most items the shared queue holds (a bound; a broadcast of 1M at 1,000 per page needs
/// far fewer at once).
const QUEUE_LIMIT: usize = 100_000;

#[derive(Default)]
struct QueueState {
    visible: VecDeque<InboundMessage>,
    delayed: Vec<(Instant, InboundMessage)>,
}

/// One in-process queue all workers drain: visible items, delayed items, and a count of
/// items not yet finished (queued or being handled), which tells the workers when the
/// broadcast is done.
#[derive(Default)]
pub(crate) struct SharedQueue {
    state: Mutex<QueueState>,
    outstanding: AtomicUsize,
    next_id: AtomicUsize,
    pub(crate) enqueued: AtomicUsize,
    pub(crate) delayed_enqueued: AtomicUsize,
}

impl SharedQueue {
    pub(crate) fn push(
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
    pub(crate) fn take(&self, max: usize) -> Vec<InboundMessage> {
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
    pub(crate) fn done(&self, count: usize) {
        self.outstanding.fetch_sub(count, Ordering::SeqCst);
    }

    pub(crate) fn finished(&self) -> bool {
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
