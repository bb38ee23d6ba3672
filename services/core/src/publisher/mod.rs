//! The publisher: takes SQS-shaped batches, resolves each message's target through the
//! roster, fans the frame out through the [`ConnectionPusher`] with bounded concurrency and
//! retries, and reports which messages must be redelivered (`batchItemFailures`).
//!
//! - Messages of a batch run concurrently; each message's posts run at most
//!   `fanout_concurrency` at a time, and all posts of the process share one token bucket
//!   (`fanout_rate` per second) when it is set.
//! - `tenant` and `broadcast` targets are delivered page by page ([`work`]): a page of at
//!   most `shard_size` connections per work item; the continuation is enqueued before the
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
//!   publisher, which must chain far past 16 hops: docs/design.md, "Fan-out at any size").
//! - A malformed body (or one whose frame can never be delivered) goes to the
//!   [`DeadLetterSink`] at once and is acknowledged; if the sink or the queue fails, the
//!   message is reported for redelivery rather than lost. Expired messages are dropped.
//! - With history on ([`Publisher::with_history`]), a `users`, `tenant` or `broadcast`
//!   message is recorded in its streams before anything is posted, and its frame carries
//!   the cursor; if recording fails the message is redelivered.
//! - A connection whose token expired (`tokenExpiresAt` plus `JWT_LEEWAY_SECS`) is not
//!   posted to: it is closed through the pusher (`DeleteConnection`) and removed from the
//!   roster, and counted as `expired_tokens` (docs/design.md: Identity per issuer).
//! - With receipts on ([`Publisher::with_receipts`]), each unit of work adds its counts to
//!   the message's receipt when it finishes, work items are counted as pending before they
//!   are enqueued, and dead-letter and expiry paths mark it (`docs/design.md`, "Receipts").
//!   A failed receipt write is logged and counted (`receipt_errors`), never retried by
//!   redelivering the message: receipts are reports.
//! - With usage on ([`Publisher::with_usage`]), the same counts go to the tenant's minute
//!   of usage, once per unit, beside the receipt (`docs/design.md`, "Usage").
//! - One structured log line per message or work item (id, target, counts, duration).

mod config;
mod fanout;
mod report;
mod usage;
pub mod work;

#[cfg(test)]
mod once_tests;
#[cfg(test)]
mod receipt_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod usage_tests;

pub use config::{
    PublisherConfig, RetryPolicy, DEADLINE_MARGIN, DEADLINE_SPARE, POST_ATTEMPT_TIMEOUT,
    SETTLE_ALLOWANCE, STORE_ATTEMPT_TIMEOUT, STORE_OPERATION_TIMEOUT,
};
pub use report::{BatchOutcome, MessageReport, Outcome};
pub use work::{Recipient, TargetKind, Work, WorkItem, MAX_WORK_ATTEMPTS};

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use switchboard_model::{within_frame_limit, Envelope, Target, UserId};
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::history::{Cursor, HistoryConfig, HistoryEntry, HistoryStore, Stream};
use crate::pusher::{ConnectionPusher, Frame};
use crate::queue::{DeadLetter, DeadLetterSink, InboundMessage, MessageQueue};
use crate::receipts::{Progress, ReceiptKey, Receipts, Terminal};
use crate::roster::{PageScope, RosterStore};
use crate::worklog::{Begun, MemoryWorkLog, UnitKey, WorkLog, DEFAULT_LEASE, DONE_RETENTION};
use fanout::Delivery;

/// The publisher's ports.
#[derive(Clone)]
pub struct PublisherPorts {
    pub roster: Arc<dyn RosterStore>,
    pub pusher: Arc<dyn ConnectionPusher>,
    pub dead_letters: Arc<dyn DeadLetterSink>,
    /// Where work items go: the queue the publisher itself drains (`QUEUE_URL`).
    pub work_queue: Arc<dyn MessageQueue>,
}

/// The publisher's dependencies, built once and shared by every invocation.
#[derive(Clone)]
pub struct Publisher {
    roster: Arc<dyn RosterStore>,
    pusher: Arc<dyn ConnectionPusher>,
    dead_letters: Arc<dyn DeadLetterSink>,
    work_queue: Arc<dyn MessageQueue>,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
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
    config: PublisherConfig,
}

/// The receipt one unit of work reports to: its key, and the target when known (the
/// message itself; work items carry only the tenant).
struct Track<'a> {
    key: ReceiptKey,
    target: Option<&'a Target>,
}

/// A published message ready to deliver: its id, frame and cursor, made at `now`, and the
/// history streams it is recorded in.
struct Prepared {
    id: String,
    frame: String,
    cursor: Option<Cursor>,
    now: OffsetDateTime,
    streams: Vec<Stream>,
}

/// Connections a unit hands to items of their own: a remainder or a retry.
struct Handoff {
    recipients: Vec<Recipient>,
    attempt: u32,
    delay: Option<std::time::Duration>,
    /// `remainder` or `retry`, as the dead-letter reason names it.
    what: &'static str,
}

/// What became of a [`Handoff`].
enum Handed {
    Queued,
    /// The queue refused it: dead-lettered, this many connections.
    DeadLettered(usize),
    /// Neither queue took it: the unit must be redelivered.
    Lost,
}

/// What settling a delivery left to report: something dead-lettered, something that
/// makes the queue redeliver the message, and why.
#[derive(Default)]
struct Leftovers {
    dead: bool,
    retry: bool,
    problems: Vec<String>,
}

/// What one unit of work counts on its receipt besides its posts' results.
#[derive(Debug, Clone, Copy)]
struct Unit {
    origin: Origin,
    /// Whether unposted connections may go to a remainder item (else: redeliver).
    remainder_allowed: bool,
    /// Connections it read from the roster (0 for retry and remainder items).
    matched: i64,
    /// Failing posts it took over (a retry item's recipients).
    retrying: i64,
}

/// Where a work item came from: a published message delivered in place, or a queued item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Message,
    WorkItem,
}

impl Publisher {
    pub fn new(ports: PublisherPorts, config: PublisherConfig) -> Self {
        // The bucket holds a tenth of a second of posts: several publishers starting at once
        // must not overshoot their shared budget by a full second's worth each.
        let limiter = NonZeroU32::new(config.fanout_rate).map(|rate| {
            let burst = NonZeroU32::new(rate.get() / 10).unwrap_or(NonZeroU32::MIN);
            Arc::new(RateLimiter::direct(
                Quota::per_second(rate).allow_burst(burst),
            ))
        });
        Self {
            roster: ports.roster,
            pusher: ports.pusher,
            dead_letters: ports.dead_letters,
            work_queue: ports.work_queue,
            limiter,
            history: None,
            history_ttls: None,
            receipts: None,
            work_log: Arc::new(MemoryWorkLog::default()),
            usage: None,
            config,
        }
    }

    /// Keeps the work log in `log` (default: this process's memory, right for the
    /// in-process queue, whose messages live no longer).
    pub fn with_work_log(mut self, log: Arc<dyn WorkLog>) -> Self {
        self.work_log = log;
        self
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

    /// Keeps a receipt of every message (`None`: receipts off).
    pub fn with_receipts(mut self, receipts: Option<Receipts>) -> Self {
        self.receipts = receipts;
        self
    }

    /// The receipt of a message or work item with this id and tenant (none for legacy
    /// bodies, or with receipts off).
    fn track<'a>(&self, item: &WorkItem, target: Option<&'a Target>) -> Option<Track<'a>> {
        (self.receipts.is_some() && item.target_type != TargetKind::Legacy).then(|| Track {
            key: ReceiptKey::new(item.tenant.clone(), item.id.clone()),
            target,
        })
    }

    /// Adds `progress` to the receipt of `track`. A failure is logged and counted in
    /// `report`; it never changes what happens to the message.
    async fn record(
        &self,
        track: Option<&Track<'_>>,
        progress: Progress,
        report: &mut MessageReport,
    ) {
        let (Some(receipts), Some(track)) = (&self.receipts, track) else {
            return;
        };
        match receipts
            .store
            .record(&track.key, &receipts.seed(track.target), &progress)
            .await
        {
            Ok(receipt) => tracing::debug!(
                id = %track.key.id,
                status = receipt.status().as_str(),
                pending = receipt.pending,
                "receipt updated"
            ),
            Err(error) => {
                report.receipt_errors += 1;
                tracing::warn!(id = %track.key.id, %error, "receipt not updated");
            }
        }
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
    /// invocation's), no post starts with less than the configured margin left.
    pub async fn handle_batch_until(
        &self,
        batch: &[InboundMessage],
        deadline: Option<Instant>,
    ) -> BatchOutcome {
        let reports =
            futures::future::join_all(batch.iter().map(|m| self.handle_message(m, deadline))).await;
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

    async fn process(&self, message: &InboundMessage, deadline: Option<Instant>) -> MessageReport {
        if let Some(item) = WorkItem::from_body(&message.body) {
            return match item {
                Ok(item) => {
                    let mut report =
                        MessageReport::new(message, item.id.clone(), item.target_type.as_str());
                    report.work_item = true;
                    report.tenant = item.tenant.clone();
                    report.hops = item.hops;
                    let track = self.track(&item, None);
                    if item.hops > self.config.max_hops() {
                        return self.stop_runaway(message, report, track.as_ref()).await;
                    }
                    let key = UnitKey::work_item(item.tenant.clone(), &item.id, &message.body);
                    let Some(lease) = self.begin(&key, deadline, &mut report).await else {
                        return report;
                    };
                    let report = self
                        .run(
                            message,
                            item,
                            Origin::WorkItem,
                            deadline,
                            report,
                            track.as_ref(),
                        )
                        .await;
                    self.end(&key, lease, report).await
                }
                Err(error) => {
                    let report = MessageReport::new(message, message.message_id.clone(), "invalid");
                    self.dead_letter(message, report, error.to_string()).await
                }
            };
        }
        let body = message.body.as_bytes();
        let envelope = match Envelope::parse(body) {
            Ok(envelope) => envelope,
            Err(_) if self.config.legacy_broadcast && !Envelope::looks_like_envelope(body) => {
                return self.deliver_legacy(message, deadline).await;
            }
            Err(error) => {
                let report = MessageReport::new(message, message.message_id.clone(), "invalid");
                return self
                    .dead_letter(message, report, format!("invalid envelope: {error}"))
                    .await;
            }
        };
        let id = envelope
            .id
            .clone()
            .unwrap_or_else(|| message.message_id.clone());
        let mut report = MessageReport::new(message, id.clone(), envelope.target.kind());
        report.tenant = envelope.target.tenant().cloned();
        let track = self.receipts.is_some().then(|| Track {
            key: ReceiptKey::of(&envelope.target, &id),
            target: Some(&envelope.target),
        });
        if envelope.is_expired(OffsetDateTime::now_utc()) {
            let expired = Progress {
                started: true,
                terminal: Some(Terminal::Expired),
                ..Progress::default()
            };
            self.record(track.as_ref(), expired, &mut report).await;
            report.outcome = Outcome::Expired;
            return report;
        }
        let now = OffsetDateTime::now_utc();
        let streams = history_streams(&envelope.target);
        let cursor = match (&self.history, streams.is_empty()) {
            (Some(_), false) => Some(Cursor::new(now)),
            _ => None,
        };
        let frame = match envelope.checked_frame(&id, cursor.as_ref().map(Cursor::as_str)) {
            Ok(frame) => frame,
            Err(too_large) => {
                let mut report = self
                    .dead_letter(message, report, too_large.to_string())
                    .await;
                if report.outcome == Outcome::DeadLettered {
                    let dead = Progress {
                        started: true,
                        terminal: Some(Terminal::Dead),
                        ..Progress::default()
                    };
                    self.record(track.as_ref(), dead, &mut report).await;
                }
                return report;
            }
        };
        let key = UnitKey::message(envelope.target.tenant().cloned(), &id);
        let Some(lease) = self.begin(&key, deadline, &mut report).await else {
            return report;
        };
        let unit = Prepared {
            id,
            frame,
            cursor,
            now,
            streams,
        };
        let report = self
            .deliver_envelope(message, &envelope, unit, deadline, report, track.as_ref())
            .await;
        self.end(&key, lease, report).await
    }

    /// Delivers a published message whose frame is ready: records it in history, resolves
    /// its target and runs the first unit of work.
    async fn deliver_envelope(
        &self,
        message: &InboundMessage,
        envelope: &Envelope,
        unit: Prepared,
        deadline: Option<Instant>,
        mut report: MessageReport,
        track: Option<&Track<'_>>,
    ) -> MessageReport {
        let Prepared {
            id,
            frame,
            cursor,
            now,
            streams,
        } = unit;
        if let (Some((history, ttl)), Some(cursor)) = (&self.history, cursor) {
            let ttl = self.history_ttls.as_ref().map_or(*ttl, |tenants| {
                tenants.history_ttl(envelope.target.tenant(), *ttl)
            });
            let kept_until = now + ttl;
            let expires_at = envelope
                .expires_at
                .map_or(kept_until, |at| at.min(kept_until));
            let entry = HistoryEntry {
                cursor,
                id: id.clone(),
                frame: frame.as_str().into(),
                expires_at: expires_at.unix_timestamp(),
            };
            if let Err(error) = history.append(&entry, &streams).await {
                report.outcome = Outcome::Retry;
                report.error = Some(format!("could not record the message in history: {error}"));
                return report;
            }
        }
        let item = WorkItem {
            id,
            target_type: TargetKind::of(envelope.target.kind()),
            tenant: envelope.target.tenant().cloned(),
            frame,
            expires_at: envelope.expires_at,
            attempt: 1,
            hops: 0,
            work: Work::Connections {
                connections: Vec::new(),
            },
        };
        let work = match &envelope.target {
            Target::Tenant { tenant } => Work::Page {
                scope: PageScope::Tenant(tenant.clone()),
                start: None,
            },
            Target::Broadcast => match self
                .start_segments(message, &item, track, &mut report)
                .await
            {
                Ok(work) => work,
                Err(error) => {
                    report.outcome = Outcome::Retry;
                    report.error = Some(error);
                    return report;
                }
            },
            Target::Users { tenant, users } => match self.roster.list_users(tenant, users).await {
                Ok(records) => Work::Connections {
                    connections: records.into_iter().map(Recipient::from).collect(),
                },
                Err(error) => return lookup_failed(report, error),
            },
            Target::Connections {
                tenant,
                connection_ids,
            } => match self.roster.list_connections(tenant, connection_ids).await {
                Ok(records) => Work::Connections {
                    connections: records.into_iter().map(Recipient::from).collect(),
                },
                Err(error) => return lookup_failed(report, error),
            },
        };
        let item = item.with_work(work, 1);
        self.run(message, item, Origin::Message, deadline, report, track)
            .await
    }

    /// A raw body of the original broadcast design: delivered verbatim to every
    /// connection, as a broadcast.
    async fn deliver_legacy(
        &self,
        message: &InboundMessage,
        deadline: Option<Instant>,
    ) -> MessageReport {
        let mut report = MessageReport::new(message, message.message_id.clone(), "legacy");
        if let Err(too_large) = within_frame_limit(&message.body) {
            let error = format!("legacy body: {too_large}");
            return self.dead_letter(message, report, error).await;
        }
        let item = WorkItem {
            id: message.message_id.clone(),
            target_type: TargetKind::Legacy,
            tenant: None,
            frame: message.body.clone(),
            expires_at: None,
            attempt: 1,
            hops: 0,
            work: Work::Connections {
                connections: Vec::new(),
            },
        };
        let key = UnitKey::message(None, &message.message_id);
        let Some(lease) = self.begin(&key, deadline, &mut report).await else {
            return report;
        };
        let report = match self.start_segments(message, &item, None, &mut report).await {
            Ok(work) => {
                let item = item.with_work(work, 1);
                self.run(message, item, Origin::Message, deadline, report, None)
                    .await
            }
            Err(error) => {
                report.outcome = Outcome::Retry;
                report.error = Some(error);
                report
            }
        };
        self.end(&key, lease, report).await
    }

    /// Starts a broadcast: enqueues the first page of segments 1.. (counted pending on its
    /// receipt first) and answers the work of segment 0, which the caller runs in place. A
    /// segment the queue refuses is dead-lettered (redriving it delivers that segment), so
    /// the message never runs again for it; only when the dead-letter queue refuses too is
    /// the message redelivered (its work log entry is then given back, and the segments
    /// already queued are new items with the new run's cursor).
    async fn start_segments(
        &self,
        message: &InboundMessage,
        item: &WorkItem,
        track: Option<&Track<'_>>,
        report: &mut MessageReport,
    ) -> Result<Work, String> {
        let total = self.config.scan_segments.max(1);
        let queued = i64::from(total - 1);
        if queued > 0 {
            self.record(track, Progress::pending(queued), report).await;
        }
        let mut refused = Vec::new();
        for segment in 1..total {
            let page = item.next_hop(
                Work::Page {
                    scope: PageScope::Segment { segment, total },
                    start: None,
                },
                1,
            );
            let body = page.to_body();
            if let Err(error) = self.enqueue_once_more(&item.id, &body, None, None).await {
                refused.push((body, error));
            }
        }
        if let Some((_, first)) = refused.first() {
            let error = format!("{} scan segment(s) not enqueued: {first}", refused.len());
            let missing = i64::try_from(refused.len()).unwrap_or(i64::MAX);
            self.record(track, Progress::pending(-missing), report)
                .await;
            let bodies = refused.into_iter().map(|(body, _)| body).collect();
            if let Err(sink) = self.dead_letter_bodies(message, item, bodies, &error).await {
                return Err(format!("{error}; dead-letter queue failed: {sink}"));
            }
            let dead = Progress {
                terminal: Some(Terminal::Dead),
                ..Progress::default()
            };
            self.record(track, dead, report).await;
            tracing::warn!(id = %item.id, %error, "scan segments dead-lettered");
        }
        Ok(Work::Page {
            scope: PageScope::Segment { segment: 0, total },
            start: None,
        })
    }

    /// Enqueues `body` (with `delay`); if the queue refuses, tries once more after a
    /// backoff when the deadline leaves room for another call.
    async fn enqueue_once_more(
        &self,
        id: &str,
        body: &str,
        delay: Option<std::time::Duration>,
        deadline: Option<Instant>,
    ) -> Result<(), crate::queue::QueueError> {
        let send = || async {
            match delay {
                Some(delay) => self.work_queue.enqueue_delayed(id, body, delay).await,
                None => self.work_queue.enqueue(id, body).await,
            }
        };
        match send().await {
            Ok(()) => Ok(()),
            Err(error) => {
                let pause = self.config.retry.delay(1);
                let room = STORE_OPERATION_TIMEOUT + DEADLINE_SPARE + pause;
                if deadline.is_some_and(|d| Instant::now() + room >= d) {
                    return Err(error);
                }
                tracing::warn!(id, %error, "enqueue refused; trying once more");
                tokio::time::sleep(pause).await;
                send().await
            }
        }
    }

    /// Runs one unit of delivery work: reads the page (enqueueing its continuation first)
    /// or takes the named connections, posts, then settles what did not get through.
    async fn run(
        &self,
        message: &InboundMessage,
        item: WorkItem,
        origin: Origin,
        deadline: Option<Instant>,
        mut report: MessageReport,
        track: Option<&Track<'_>>,
    ) -> MessageReport {
        if item
            .expires_at
            .is_some_and(|at| at <= OffsetDateTime::now_utc())
        {
            let expired = Progress {
                pending: if origin == Origin::WorkItem { -1 } else { 0 },
                started: origin == Origin::Message,
                terminal: Some(Terminal::Expired),
                ..Progress::default()
            };
            self.record(track, expired, &mut report).await;
            report.outcome = Outcome::Expired;
            return report;
        }
        let paged = matches!(item.work, Work::Page { .. });
        let recipients = match &item.work {
            Work::Page { scope, start } => {
                let page = match self
                    .roster
                    .list_page(scope, start.as_deref(), self.config.shard_size)
                    .await
                {
                    Ok(page) => page,
                    Err(error) => return lookup_failed(report, error),
                };
                report.skipped = page.skipped;
                if let Some(next) = page.next {
                    let continuation = item.next_hop(
                        Work::Page {
                            scope: scope.clone(),
                            start: Some(next),
                        },
                        1,
                    );
                    self.record(track, Progress::pending(1), &mut report).await;
                    if let Err(error) = self
                        .enqueue_once_more(&item.id, &continuation.to_body(), None, deadline)
                        .await
                    {
                        self.record(track, Progress::pending(-1), &mut report).await;
                        report.outcome = Outcome::Retry;
                        report.error = Some(format!("could not enqueue the next page: {error}"));
                        return report;
                    }
                }
                page.records.into_iter().map(Recipient::from).collect()
            }
            Work::Connections { connections } => connections.clone(),
        };
        report.matched = recipients.len();
        let (recipients, expired) = self.split_expired_tokens(recipients);
        report.expired_tokens = expired.len();
        self.end_expired(expired, deadline).await;
        // Connections closed for an expired token are neither posted to nor counted on the
        // receipt.
        let count = i64::try_from(recipients.len()).unwrap_or(i64::MAX);
        // What this unit tells the receipt before its posts: the connections it read
        // (a retry or remainder item's were counted by the page that read them), and the
        // failing posts a retry item takes over.
        // A published `users`/`connections` message that ran out of time is redelivered
        // whole (SQS's own retry); pages and work items continue in a remainder item.
        let unit = Unit {
            origin,
            remainder_allowed: paged || origin == Origin::WorkItem,
            matched: if paged || origin == Origin::Message {
                count
            } else {
                0
            },
            retrying: if !paged && origin == Origin::WorkItem && item.attempt > 1 {
                count
            } else {
                0
            },
        };
        // Encoded once per item; every post shares it.
        let frame = Frame::from(item.frame.as_str());
        let delivery = self.deliver(recipients, &frame, deadline).await;
        self.settle(message, &item, delivery, deadline, report, track, unit)
            .await
    }

    /// Hands what the posts left over to where it belongs: unposted connections to a
    /// remainder item, failing ones to a delayed retry item (or, after the last attempt,
    /// the dead letters), fatal ones to the dead letters. What the queue refuses (after one
    /// more try) is dead-lettered too, so a unit that has posted is never redelivered —
    /// its posts would be sent again. Only when the dead-letter queue refuses as well does
    /// it answer `Retry` (a copy of its continuation is then skipped by the work log).
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &self,
        message: &InboundMessage,
        item: &WorkItem,
        delivery: Delivery,
        deadline: Option<Instant>,
        mut report: MessageReport,
        track: Option<&Track<'_>>,
        unit: Unit,
    ) -> MessageReport {
        report.delivered = delivery.delivered;
        report.gone = delivery.gone;
        report.retries = delivery.retries;
        report.throttled = delivery.throttled;
        report.failed = delivery.failed.len() + delivery.fatal.len();
        report.outcome = Outcome::Delivered;
        let mut left = Leftovers::default();
        // Posts this unit leaves failing: those failing now, and — for a retry item — the
        // unposted ones it hands to a remainder (they were failing when it started).
        let mut failing = delivery.failed.len() + delivery.fatal.len();
        if unit.retrying > 0 {
            failing += delivery.unstarted.len();
        }
        let posted = delivery.delivered + delivery.gone + failing > 0;

        if !delivery.unstarted.is_empty() {
            let count = delivery.unstarted.len();
            if !unit.remainder_allowed && !posted {
                // Nothing was sent yet: SQS's own redelivery runs the message whole.
                report.outcome = Outcome::Retry;
                report.error = Some(format!("deadline: {count} post(s) not started"));
                return report;
            }
            let handed = Handoff {
                recipients: delivery.unstarted,
                attempt: item.attempt,
                delay: None,
                what: "remainder",
            };
            match self
                .hand_off(
                    message,
                    item,
                    handed,
                    deadline,
                    track,
                    &mut report,
                    &mut left,
                )
                .await
            {
                Handed::Queued => report.deferred += count,
                Handed::DeadLettered(dead) if unit.retrying == 0 => failing += dead,
                Handed::DeadLettered(_) | Handed::Lost => {}
            }
        }

        if let Some((_, last)) = delivery.failed.last() {
            let last = last.clone();
            let count = delivery.failed.len();
            let recipients: Vec<Recipient> = delivery.failed.into_iter().map(|(r, _)| r).collect();
            let next_attempt = item.attempt + 1;
            if next_attempt > MAX_WORK_ATTEMPTS {
                let error = format!(
                    "{count} post(s) still failing after {} attempts; last: {last}",
                    item.attempt
                );
                self.dead_letter_part(message, item, recipients, error, &mut left)
                    .await;
            } else {
                let handed = Handoff {
                    recipients,
                    attempt: next_attempt,
                    delay: Some(self.config.retry_item_delay(next_attempt)),
                    what: "retry",
                };
                if let Handed::Queued = self
                    .hand_off(
                        message,
                        item,
                        handed,
                        deadline,
                        track,
                        &mut report,
                        &mut left,
                    )
                    .await
                {
                    report.deferred += count;
                    left.problems.push(format!(
                        "{count} post(s) failed, retried later; last: {last}"
                    ));
                }
            }
        }

        if let Some((_, first)) = delivery.fatal.first() {
            let error = format!("{} post(s) failed for good: {first}", delivery.fatal.len());
            let recipients = delivery.fatal.into_iter().map(|(r, _)| r).collect();
            self.dead_letter_part(message, item, recipients, error, &mut left)
                .await;
        }

        report.outcome = if left.retry {
            Outcome::Retry
        } else if left.dead {
            Outcome::DeadLettered
        } else if report.deferred > 0 {
            Outcome::Deferred
        } else {
            Outcome::Delivered
        };
        if !left.problems.is_empty() {
            report.error = Some(left.problems.join("; "));
        }
        if report.outcome != Outcome::Retry {
            let as_count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            let done = Progress {
                matched: unit.matched,
                delivered: as_count(report.delivered),
                gone: as_count(report.gone),
                failed: as_count(failing) - unit.retrying,
                pending: if unit.origin == Origin::WorkItem {
                    -1
                } else {
                    0
                },
                started: unit.origin == Origin::Message,
                terminal: left.dead.then_some(Terminal::Dead),
            };
            self.record_usage(item, &done).await;
            self.record(track, done, &mut report).await;
        }
        report
    }

    /// Dead-letters the connections of `item` that failed so (`error` says how), noting
    /// in `left` whether that worked or the message must be redelivered instead.
    async fn dead_letter_part(
        &self,
        message: &InboundMessage,
        item: &WorkItem,
        recipients: Vec<Recipient>,
        error: String,
        left: &mut Leftovers,
    ) {
        let bodies = item.connection_bodies(recipients, 1);
        match self.dead_letter_bodies(message, item, bodies, &error).await {
            Ok(()) => {
                left.dead = true;
                left.problems.push(error);
            }
            Err(sink) => {
                left.retry = true;
                left.problems
                    .push(format!("{error}; dead-letter queue failed: {sink}"));
            }
        }
    }

    /// Enqueues `Connections` items for the handoff's recipients (split to the body limit,
    /// counted pending on the receipt first and taken back for any not enqueued). What the
    /// queue refuses twice is dead-lettered; `left` notes what became of it.
    #[allow(clippy::too_many_arguments)]
    async fn hand_off(
        &self,
        message: &InboundMessage,
        item: &WorkItem,
        handoff: Handoff,
        deadline: Option<Instant>,
        track: Option<&Track<'_>>,
        report: &mut MessageReport,
        left: &mut Leftovers,
    ) -> Handed {
        let bodies = item.connection_items(handoff.recipients, handoff.attempt);
        let total = i64::try_from(bodies.len()).unwrap_or(i64::MAX);
        self.record(track, Progress::pending(total), report).await;
        let mut refused = Vec::new();
        let mut refused_connections = 0;
        let mut last_error = None;
        for (connections, body) in bodies {
            if let Err(error) = self
                .enqueue_once_more(&item.id, &body, handoff.delay, deadline)
                .await
            {
                refused_connections += connections;
                refused.push(body);
                last_error = Some(error);
            }
        }
        let Some(queue_error) = last_error else {
            return Handed::Queued;
        };
        let missing = i64::try_from(refused.len()).unwrap_or(i64::MAX);
        self.record(track, Progress::pending(-missing), report)
            .await;
        let error = format!(
            "{} {} item(s) for {refused_connections} connection(s) not enqueued: {queue_error}",
            refused.len(),
            handoff.what
        );
        match self
            .dead_letter_bodies(message, item, refused, &error)
            .await
        {
            Ok(()) => {
                left.dead = true;
                left.problems.push(error);
                Handed::DeadLettered(refused_connections)
            }
            Err(sink) => {
                left.retry = true;
                left.problems
                    .push(format!("{error}; dead-letter queue failed: {sink}"));
                Handed::Lost
            }
        }
    }

    /// Dead-letters work item `bodies` (redriving one re-sends to its connections only).
    async fn dead_letter_bodies(
        &self,
        message: &InboundMessage,
        item: &WorkItem,
        bodies: Vec<String>,
        error: &str,
    ) -> Result<(), crate::queue::QueueError> {
        for body in bodies {
            self.dead_letters
                .dead_letter(DeadLetter {
                    message_id: message.message_id.clone(),
                    body,
                    error: error.to_string(),
                    receive_count: message.receive_count,
                    tenant: item.tenant.clone(),
                })
                .await?;
        }
        Ok(())
    }

    /// A work item past the hop bound: its chain is a runaway. Dead-lettered with the
    /// reason (redriving it would only go one hop further), counted, and marked on its
    /// receipt.
    async fn stop_runaway(
        &self,
        message: &InboundMessage,
        report: MessageReport,
        track: Option<&Track<'_>>,
    ) -> MessageReport {
        let error = format!(
            "runaway chain: hop {} is past the bound of {} \
             (2 × ⌈FANOUT_MAX_CONNECTIONS {} / FANOUT_SHARD_SIZE {}⌉ + 2 × {MAX_WORK_ATTEMPTS} + 10)",
            report.hops,
            self.config.max_hops(),
            self.config.max_connections,
            self.config.shard_size,
        );
        tracing::error!(id = %report.id, hops = report.hops, "{error}");
        let mut report = self.dead_letter(message, report, error).await;
        if report.outcome == Outcome::DeadLettered {
            report.runaway = true;
            let dead = Progress {
                pending: -1,
                terminal: Some(Terminal::Dead),
                ..Progress::default()
            };
            self.record(track, dead, &mut report).await;
        }
        report
    }

    async fn dead_letter(
        &self,
        message: &InboundMessage,
        mut report: MessageReport,
        error: String,
    ) -> MessageReport {
        let letter = DeadLetter {
            message_id: message.message_id.clone(),
            body: message.body.clone(),
            error: error.clone(),
            receive_count: message.receive_count,
            tenant: crate::queue::address(&message.body).and_then(|address| address.tenant),
        };
        match self.dead_letters.dead_letter(letter).await {
            Ok(()) => report.outcome = Outcome::DeadLettered,
            Err(sink_error) => {
                // Never lose it: leave it on the queue for redelivery.
                report.outcome = Outcome::Retry;
                report.error = Some(format!("{error}; dead-letter queue failed: {sink_error}"));
                return report;
            }
        }
        report.error = Some(error);
        report
    }
}

/// The history streams a message is recorded in: one per named user, the tenant's, or the
/// global one; none for `connections` targets.
fn history_streams(target: &Target) -> Vec<Stream> {
    match target {
        Target::Users { tenant, users } => {
            let unique: std::collections::BTreeSet<&UserId> = users.iter().collect();
            unique
                .into_iter()
                .map(|user| Stream::User(tenant.clone(), user.clone()))
                .collect()
        }
        Target::Tenant { tenant } => vec![Stream::Tenant(tenant.clone())],
        Target::Broadcast => vec![Stream::Global],
        Target::Connections { .. } => Vec::new(),
    }
}

/// A roster read failed: the message (or item) is redelivered by the queue.
fn lookup_failed(mut report: MessageReport, error: crate::roster::RosterError) -> MessageReport {
    report.outcome = Outcome::Retry;
    report.error = Some(format!("roster lookup failed: {error}"));
    report
}
