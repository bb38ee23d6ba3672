//! The publisher: takes SQS-shaped batches, resolves each message's target through the
//! roster, fans the frame out through the [`ConnectionPoster`] with bounded concurrency and
//! retries, and reports which messages must be redelivered (`batchItemFailures`).
//!
//! Where it lives: `intake` turns a queue body into its first unit of work (parse, expiry,
//! cursor and frame, history, target → [`Work`]); `run`, here, runs one unit (reads the
//! page or takes the named connections, posts through `fanout`); `settle` hands what the
//! posts left over to retry or remainder items and the dead letters; `ledger` keeps each
//! unit's receipt. [`work`] is the work-item body, `report` the per-message report.
//!
//! - Messages of a batch run concurrently; each message's posts run at most
//!   `fanout_concurrency` at a time, and all posts of the process share one token bucket
//!   (`fanout_rate` per second) when it is set. Then posts take its tokens in turn
//!   (`fanout::Limiter`), and a batch runs its first page item only: the others go back to
//!   the queue unrun, for a publisher whose bucket is idle (`handback`).
//! - `tenant` and `broadcast` targets are delivered page by page ([`work`]): a page of at
//!   most `page_size` connections per work item; the continuation is enqueued before the
//!   page is posted; a broadcast runs one chain per scan segment. A publisher holds one
//!   page per message in memory.
//! - `Gone` removes the roster item and counts `gone` (unless the connection is younger
//!   than `gone_grace`: API Gateway answers 410 until the handshake completes);
//!   `Throttled`, `Timeout`, `Transient` are retried in-process with exponential backoff
//!   and full jitter. Connections still failing go into a delayed retry work item naming
//!   just them (dead-lettered after [`MAX_WORK_ATTEMPTS`]); fatal failures (413, other 4xx)
//!   are dead-lettered at once. The message itself is then done: a persistent failure never
//!   re-sends to anyone else.
//! - With a deadline (Lambda), no post starts with less than `deadline_margin` left (checked
//!   again after each wait for the rate limiter; the margin covers one post attempt and the
//!   settling after it: [`DEADLINE_MARGIN`]): unposted connections go to a remainder item;
//!   a published `users`/`connections` message that posted nothing yet is redelivered.
//! - Every unit of work (a published message, a work item) runs once: it is claimed in the
//!   [`WorkLog`] before it starts and marked done when it ends, so a copy the queue delivers
//!   again is acknowledged as a `Duplicate` and does nothing. What a unit that has posted
//!   cannot enqueue (after one more try) is dead-lettered instead of redelivering the unit.
//! - Every work item carries its hop count; one past [`PublisherConfig::max_hops`] is
//!   dead-lettered as a runaway chain (Lambda's own loop detection is turned off for the
//!   publisher, which must chain far past 16 hops; docs/design.md: Fan-out at any size).
//! - A malformed body (or one whose frame can never be delivered) goes to the
//!   [`DeadLetterSink`] at once and is acknowledged; if the sink or the queue fails, the
//!   message is reported for redelivery rather than lost. Expired messages are dropped.
//! - With history on ([`Publisher::with_history`]), a `users`, `tenant` or `broadcast`
//!   message is recorded in its streams before anything is posted, and its frame carries
//!   the cursor; if recording fails the message is redelivered.
//! - A connection whose token expired (`tokenExpiresAt` plus `JWT_LEEWAY_SECS`) is not
//!   posted to: it is closed through the poster (`DeleteConnection`) and removed from the
//!   roster, and counted as `expired_tokens` (docs/design.md: Token expiry and refresh).
//! - With receipts on ([`Publisher::with_receipts`]), each unit of work adds its counts to
//!   the message's receipt when it finishes, work items are counted as pending before they
//!   are enqueued, and dead-letter and expiry paths mark it (docs/design.md: Receipts).
//!   A failed receipt write is logged and counted (`receipt_errors`), never retried by
//!   redelivering the message: receipts are reports.
//! - With usage on ([`Publisher::with_usage`]), the same counts go to the tenant's minute
//!   of usage, once per unit, beside the receipt (docs/design.md: Usage).
//! - With Web Push on ([`Publisher::with_push`]), a `users` or `tenant` message with `push`
//!   reaches its users with no live connection through their devices (`push.rs`: the
//!   sends run in device-page and sends items of their own, so no unit that posts waits
//!   for one; docs/design.md: Web Push).
//! - With events on ([`Publisher::with_events`]; receipts on too), the receipt write that
//!   makes a message's receipt final emits `message.settled` with the receipt's JSON
//!   (`ledger.rs`; docs/design.md: Events). A failed emission is logged and counted
//!   (`event_errors`), never changes what happens to the message.
//! - One structured log line per message or work item (id, target, counts, duration).

mod config;
mod fanout;
mod handback;
mod intake;
mod ledger;
mod push;
mod report;
mod settle;
mod usage;
pub mod work;

#[cfg(test)]
mod tests;

pub use config::{
    PublisherConfig, RetryPolicy, DEADLINE_MARGIN, DEADLINE_SPARE, POST_ATTEMPT_TIMEOUT,
    SETTLE_ALLOWANCE, STORE_ATTEMPT_TIMEOUT, STORE_OPERATION_TIMEOUT,
};
pub use report::{BatchOutcome, MessageReport, Outcome};
pub use work::{MessageKind, Recipient, Work, WorkItem, MAX_WORK_ATTEMPTS};

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant as StdInstant;

use time::OffsetDateTime;
use tokio::time::Instant;

use crate::history::{HistoryConfig, HistoryStore};
use crate::poster::{ConnectionPoster, Frame};
use crate::queue::{DeadLetterSink, InboundMessage, MessageQueue};
use crate::receipts::{Progress, Receipts};
use crate::roster::RosterStore;
use crate::worklog::{Begun, MemoryWorkLog, UnitKey, WorkLog, DEFAULT_LEASE, DONE_RETENTION};
use fanout::Limiter;
use ledger::{Track, Unit};
use settle::Settling;

/// The publisher's ports.
#[derive(Clone)]
pub struct PublisherPorts {
    pub roster: Arc<dyn RosterStore>,
    pub poster: Arc<dyn ConnectionPoster>,
    pub dead_letters: Arc<dyn DeadLetterSink>,
    /// Where work items go: the queue the publisher itself drains (`QUEUE_URL`).
    pub work_queue: Arc<dyn MessageQueue>,
}

/// The publisher's dependencies, built once and shared by every invocation.
#[derive(Clone)]
pub struct Publisher {
    roster: Arc<dyn RosterStore>,
    poster: Arc<dyn ConnectionPoster>,
    dead_letters: Arc<dyn DeadLetterSink>,
    work_queue: Arc<dyn MessageQueue>,
    limiter: Option<Arc<Limiter>>,
    /// Where `users`, `tenant` and `broadcast` messages are recorded, and for how long.
    history: Option<(Arc<dyn HistoryStore>, Duration)>,
    /// Tenant settings whose `historyTtlSecs` replaces that retention per tenant.
    history_ttls: Option<crate::tenants::Tenants>,
    /// Where each message's receipt is kept (`None`: receipts off).
    receipts: Option<Receipts>,
    /// Which units of work ran, so a copy the queue delivers again does nothing twice.
    work_log: Arc<dyn WorkLog>,
    /// Where each unit's counts go per tenant and minute (`None`: not counted).
    usage: Option<crate::usage::Usage>,
    /// Where devices are kept and how notifications go out (`None`: push off).
    push: Option<crate::webpush::WebPush>,
    /// Where `message.settled` goes (`None`: no events).
    events: Option<Arc<dyn crate::events::EventSink>>,
    config: PublisherConfig,
}

/// Where a work item came from: a published message delivered in place, or a queued item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Message,
    WorkItem,
}

impl Publisher {
    pub fn new(ports: PublisherPorts, config: PublisherConfig) -> Self {
        let limiter = NonZeroU32::new(config.fanout_rate).map(|rate| Arc::new(Limiter::new(rate)));
        Self {
            roster: ports.roster,
            poster: ports.poster,
            dead_letters: ports.dead_letters,
            work_queue: ports.work_queue,
            limiter,
            history: None,
            history_ttls: None,
            receipts: None,
            work_log: Arc::new(MemoryWorkLog::default()),
            usage: None,
            push: None,
            events: None,
            config,
        }
    }

    /// Keeps the work log in `log` (default: this process's memory, right for the
    /// in-process queue, whose messages live no longer).
    pub fn with_work_log(mut self, log: Arc<dyn WorkLog>) -> Self {
        self.work_log = log;
        self
    }

    /// Keeps a receipt of every message (`None`: receipts off).
    pub fn with_receipts(mut self, receipts: Option<Receipts>) -> Self {
        self.receipts = receipts;
        self
    }

    /// Records every `users`, `tenant` and `broadcast` message in `store` before its
    /// fan-out, its frame carrying the cursor (nothing is recorded when history is off).
    pub fn with_history(mut self, store: Arc<dyn HistoryStore>, config: &HistoryConfig) -> Self {
        self.history = config.enabled().then_some((store, config.ttl));
        self
    }

    /// Keeps each tenant's history for its `historyTtlSecs` (tenant settings) instead of
    /// `HISTORY_TTL_SECS`: the entry's `expiresAt`, which every history store honours.
    pub fn with_history_ttls(mut self, tenants: crate::tenants::Tenants) -> Self {
        self.history_ttls = Some(tenants);
        self
    }

    pub fn config(&self) -> &PublisherConfig {
        &self.config
    }

    /// Handles one batch with no deadline (the local server).
    pub async fn handle_batch(&self, batch: &[InboundMessage]) -> BatchOutcome {
        self.handle_batch_until(batch, None).await
    }

    /// Handles one batch; the messages run concurrently. With a `deadline` (a Lambda
    /// invocation's), no post starts with less than the configured margin left. With a rate
    /// limit, the page items after the first go back to the queue unrun (`handback.rs`):
    /// they have no report.
    pub async fn handle_batch_until(
        &self,
        batch: &[InboundMessage],
        deadline: Option<Instant>,
    ) -> BatchOutcome {
        let spare = self.spare_pages(batch);
        let reports = futures::future::join_all(batch.iter().zip(spare).map(|(m, spare)| async {
            match spare {
                Some(id) if self.hand_back(m, &id).await => None,
                _ => Some(self.handle_message(m, deadline).await),
            }
        }))
        .await;
        let reports: Vec<MessageReport> = reports.into_iter().flatten().collect();
        let failed_message_ids = reports
            .iter()
            .filter(|r| r.outcome == Outcome::Retry)
            .map(|r| r.message_id.clone())
            .collect();
        BatchOutcome {
            failed_message_ids,
            reports,
        }
    }

    /// Handles one message and logs its summary line.
    async fn handle_message(
        &self,
        message: &InboundMessage,
        deadline: Option<Instant>,
    ) -> MessageReport {
        let started = StdInstant::now();
        let mut report = self.process(message, deadline).await;
        report.duration = started.elapsed();
        report.log();
        report
    }

    /// Claims the unit `key` in the work log until the deadline. `None` (with the report's
    /// outcome set) when this copy must not run: the unit ran or runs elsewhere
    /// (`Duplicate`), or the log could not be reached (`Retry`: nothing was done yet).
    async fn begin(
        &self,
        key: &UnitKey,
        deadline: Option<Instant>,
        report: &mut MessageReport,
    ) -> Option<OffsetDateTime> {
        let now = OffsetDateTime::now_utc();
        let lease_until = match deadline {
            Some(deadline) => now + deadline.saturating_duration_since(Instant::now()),
            None => now + DEFAULT_LEASE,
        };
        match self.work_log.begin(key, lease_until, now).await {
            Ok(Begun::Claimed) => Some(lease_until),
            Ok(Begun::Done | Begun::Running) => {
                report.outcome = Outcome::Duplicate;
                None
            }
            Err(error) => {
                report.outcome = Outcome::Retry;
                report.error = Some(error.to_string());
                None
            }
        }
    }

    /// Ends the unit `key` claimed until `lease_until`: finished, unless the queue must
    /// deliver it again (then the claim is given back so that copy runs).
    async fn end(
        &self,
        key: &UnitKey,
        lease_until: OffsetDateTime,
        mut report: MessageReport,
    ) -> MessageReport {
        let written = if report.outcome == Outcome::Retry {
            self.work_log.abandon(key, lease_until).await
        } else {
            let until = OffsetDateTime::now_utc() + DONE_RETENTION;
            self.work_log.finish(key, until).await
        };
        if let Err(error) = written {
            report.work_log_errors += 1;
            tracing::warn!(id = %report.id, unit = %key.unit, %error, "work log not updated");
        }
        report
    }

    /// Runs one unit of delivery work: reads the page (enqueueing its continuation first)
    /// or takes the named connections, posts (and, with a push `plan`, hands the sends to
    /// work items beside the posts), then settles what did not get through. Device pages
    /// and sends items go to `run_sends` (`push.rs`).
    #[allow(clippy::too_many_arguments)] // one unit's context, passed down as is
    async fn run(
        &self,
        message: &InboundMessage,
        item: WorkItem,
        origin: Origin,
        deadline: Option<Instant>,
        mut report: MessageReport,
        track: Option<&Track<'_>>,
        plan: Option<push::PushPlan>,
    ) -> MessageReport {
        if item
            .expires_at
            .is_some_and(|at| at <= OffsetDateTime::now_utc())
        {
            self.record(track, Progress::expired(origin), &mut report)
                .await;
            report.outcome = Outcome::Expired;
            return report;
        }
        if item.work.sends() {
            return self.run_sends(message, item, deadline, report, track).await;
        }
        let paged = matches!(item.work, Work::Page { .. });
        let recipients = match &item.work {
            Work::Page { scope, start } => {
                let page = match self
                    .roster
                    .list_page(scope, start.as_deref(), self.config.page_size)
                    .await
                {
                    Ok(page) => page,
                    Err(error) => return lookup_failed(report, error),
                };
                report.skipped = page.skipped;
                if let Some(next) = page.next {
                    let next = Work::Page {
                        scope: scope.clone(),
                        start: Some(next),
                    };
                    if !self
                        .continue_with(&item, next, deadline, track, &mut report)
                        .await
                    {
                        return report;
                    }
                }
                page.records.into_iter().map(Recipient::from).collect()
            }
            Work::Connections { connections } => connections.clone(),
            // Run by `run_sends` above.
            Work::Devices { .. } | Work::Sends { .. } => Vec::new(),
        };
        report.matched = recipients.len();
        let (recipients, expired) = self.split_expired_tokens(recipients);
        report.expired_tokens = expired.len();
        self.end_expired(expired, deadline).await;
        // Connections closed for an expired token are neither posted to nor counted on the
        // receipt.
        let unit = Unit::new(origin, paged, item.attempt, recipients.len());
        // Encoded once per item; every post shares it.
        let frame = Frame::from(item.frame.as_str());
        let at = Settling {
            message,
            item: &item,
            deadline,
            track,
        };
        self.deliver_and_push(&at, recipients, &frame, unit, plan, report)
            .await
    }
}

impl Publisher {
    /// Enqueues the continuation of a paged unit (the next roster or device page, `next`),
    /// counted pending on the receipt first. `false`, with the report set to `Retry`, when
    /// the queue refused it: the unit has posted or sent nothing yet and runs again.
    async fn continue_with(
        &self,
        item: &WorkItem,
        next: Work,
        deadline: Option<Instant>,
        track: Option<&Track<'_>>,
        report: &mut MessageReport,
    ) -> bool {
        let continuation = item.next_hop(next, 1);
        self.record(track, Progress::pending(1), report).await;
        let body = continuation.to_body();
        if let Err(error) = self
            .enqueue_once_more(&item.id, &body, None, deadline)
            .await
        {
            self.record(track, Progress::pending(-1), report).await;
            report.outcome = Outcome::Retry;
            report.error = Some(format!("could not enqueue the next page: {error}"));
            return false;
        }
        true
    }
}

/// A roster read failed: the message (or item) is redelivered by the queue.
fn lookup_failed(mut report: MessageReport, error: crate::roster::RosterError) -> MessageReport {
    report.outcome = Outcome::Retry;
    report.error = Some(format!("roster lookup failed: {error}"));
    report
}
