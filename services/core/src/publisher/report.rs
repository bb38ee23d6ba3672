//! What the publisher did with each message, and with a batch.

use std::time::Duration;

use switchboard_model::TenantId;

use crate::queue::InboundMessage;

/// How a message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every matched connection got the frame (or was gone).
    Delivered,
    /// Something failed that may succeed later: the queue must redeliver the message.
    Retry,
    /// Past its `expiresAt`: dropped, not delivered.
    Expired,
    /// Undeliverable whatever happens (malformed, too large, failing for good): moved to
    /// the dead letters (for a fan-out, just the connections that failed so).
    DeadLettered,
    /// Handled, with some connections handed to work items of their own (a retry of
    /// failed posts, or the remainder a deadline left unposted).
    Deferred,
    /// A copy of a unit of work that already ran, or is running elsewhere (the work log
    /// said so): acknowledged, nothing done.
    Duplicate,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retry => "retry",
            Outcome::Expired => "expired",
            Outcome::DeadLettered => "dead_lettered",
            Outcome::Deferred => "deferred",
            Outcome::Duplicate => "duplicate",
        }
    }
}

/// The summary of one message (logged as one line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageReport {
    /// The queue's message id (what `batchItemFailures` names).
    pub message_id: String,
    /// The envelope's id (the queue's id when the envelope has none).
    pub id: String,
    /// `users`, `tenant`, `connections`, `broadcast`, `legacy` or `invalid`.
    pub target: &'static str,
    /// The message's tenant; `None` for a broadcast, a legacy body or an invalid one.
    pub tenant: Option<TenantId>,
    pub matched: usize,
    pub delivered: usize,
    pub gone: usize,
    pub failed: usize,
    pub retries: u32,
    /// Posts answered `Throttled` (429), retried or not.
    pub throttled: u32,
    /// Connections handed to retry or remainder work items.
    pub deferred: usize,
    /// Web Push notifications the push services accepted.
    pub pushed: usize,
    /// Sends that failed for good (refused, too large, still failing after the last
    /// attempt, or not enqueued for a retry).
    pub push_failed: usize,
    /// Devices deleted because their push service answered 404 or 410.
    pub devices_pruned: usize,
    /// Devices handed to retry or remainder sends items.
    pub deferred_sends: usize,
    /// Roster (or device) items skipped because they are not valid connection records.
    pub skipped: usize,
    /// Matched connections whose token had expired (`tokenExpiresAt` plus the leeway):
    /// not posted to, disconnected and removed from the roster.
    pub expired_tokens: usize,
    /// Whether this was a work item (`{"shard": …}`) rather than a published message.
    pub work_item: bool,
    /// Receipt writes that failed (logged; delivery goes on: receipts are reports).
    pub receipt_errors: u32,
    /// `message.settled` events emitted (this unit's receipt write made the receipt final).
    pub events: u32,
    /// `message.settled` emissions that failed (logged; delivery goes on: events are
    /// reports).
    pub event_errors: u32,
    /// Work-log writes that failed after the unit ran (logged: a later copy of it would
    /// run again).
    pub work_log_errors: u32,
    /// The item's hop count (0 for a published message).
    pub hops: u32,
    /// Dead-lettered because its chain passed the hop bound.
    pub runaway: bool,
    pub duration: Duration,
    pub outcome: Outcome,
    pub error: Option<String>,
}

impl MessageReport {
    /// The report of `message` (id `id`, target type `target`) before anything is done.
    pub fn new(message: &InboundMessage, id: String, target: &'static str) -> Self {
        Self {
            message_id: message.message_id.clone(),
            id,
            target,
            tenant: None,
            matched: 0,
            delivered: 0,
            gone: 0,
            failed: 0,
            retries: 0,
            throttled: 0,
            deferred: 0,
            pushed: 0,
            push_failed: 0,
            devices_pruned: 0,
            deferred_sends: 0,
            skipped: 0,
            expired_tokens: 0,
            work_item: false,
            receipt_errors: 0,
            events: 0,
            event_errors: 0,
            work_log_errors: 0,
            hops: 0,
            runaway: false,
            duration: Duration::ZERO,
            outcome: Outcome::Delivered,
            error: None,
        }
    }

    pub(super) fn log(&self) {
        let duration_ms = u64::try_from(self.duration.as_millis()).unwrap_or(u64::MAX);
        let error = self.error.as_deref().unwrap_or("");
        macro_rules! line {
            ($level:ident) => {
                tracing::$level!(
                    id = %self.id,
                    message_id = %self.message_id,
                    target = self.target,
                    matched = self.matched,
                    delivered = self.delivered,
                    gone = self.gone,
                    failed = self.failed,
                    retries = self.retries,
                    throttled = self.throttled,
                    deferred = self.deferred,
                    pushed = self.pushed,
                    push_failed = self.push_failed,
                    devices_pruned = self.devices_pruned,
                    deferred_sends = self.deferred_sends,
                    skipped = self.skipped,
                    expired_tokens = self.expired_tokens,
                    work_item = self.work_item,
                    receipt_errors = self.receipt_errors,
                    events = self.events,
                    event_errors = self.event_errors,
                    work_log_errors = self.work_log_errors,
                    hops = self.hops,
                    runaway = self.runaway,
                    duration_ms,
                    outcome = self.outcome.as_str(),
                    error,
                    "message processed"
                )
            };
        }
        match self.outcome {
            Outcome::Delivered | Outcome::Expired | Outcome::Deferred | Outcome::Duplicate => {
                line!(info)
            }
            Outcome::Retry | Outcome::DeadLettered => line!(warn),
        }
    }
}

/// The result of one batch.
#[derive(Debug, Clone, Default)]
pub struct BatchOutcome {
    /// Queue message ids to report in `batchItemFailures`.
    pub failed_message_ids: Vec<String>,
    pub reports: Vec<MessageReport>,
}
