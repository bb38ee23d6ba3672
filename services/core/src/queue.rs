//! The queue ports: where the publish API enqueues envelopes (`MessageQueue`) and where
//! the publisher sends bodies it can never deliver (`DeadLetterSink`). SQS in AWS; an
//! in-process queue in the `switchboard` binary.

use std::time::Duration;

use async_trait::async_trait;

/// A message as a queue hands it to the publisher (the SQS record's essentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// The queue's message id (SQS `messageId`): the id used when the envelope has none,
    /// and the id reported in `batchItemFailures`.
    pub message_id: String,
    pub body: String,
    /// How many times the queue has handed this message out, this time included.
    pub receive_count: u32,
}

/// A body the publisher gives up on, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub message_id: String,
    pub body: String,
    pub error: String,
    pub receive_count: u32,
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("message rejected by the queue: {0}")]
    Rejected(String),
    /// The queue is at capacity, or not taking messages (shutting down): retry after
    /// `retry_after_secs`.
    #[error("queue full: {reason}")]
    Full {
        reason: String,
        retry_after_secs: u64,
    },
}

/// Enqueues envelopes for the publisher.
#[async_trait]
pub trait MessageQueue: Send + Sync {
    /// Enqueues one body; `id` is the message id the envelope carries.
    async fn enqueue(&self, id: &str, body: &str) -> Result<(), QueueError>;
    /// Enqueues one body that becomes visible after `delay` (SQS `DelaySeconds`, at most
    /// [`MAX_ENQUEUE_DELAY`]; longer delays are capped). The publisher's retry work items.
    async fn enqueue_delayed(
        &self,
        id: &str,
        body: &str,
        delay: Duration,
    ) -> Result<(), QueueError>;
}

/// The longest delay a queue supports (SQS: 15 minutes).
pub const MAX_ENQUEUE_DELAY: Duration = Duration::from_secs(900);

/// Receives bodies that must never be retried (malformed, unauthorised shape) so they are
/// neither redelivered forever nor silently dropped.
#[async_trait]
pub trait DeadLetterSink: Send + Sync {
    async fn dead_letter(&self, letter: DeadLetter) -> Result<(), QueueError>;
}
