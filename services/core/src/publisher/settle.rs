//! Settling what a unit of work's posts left over: unposted connections go to a remainder
//! item, failing ones to a delayed retry item (or, after [`MAX_WORK_ATTEMPTS`], the dead
//! letters), fatal ones to the dead letters; what the queue refuses is dead-lettered too.
//! Also every dead-letter write of the publisher (a whole message, or work item bodies)
//! and the queue's one extra try ([`Publisher::enqueue_once_more`]).

use tokio::time::Instant;

use super::fanout::Delivery;
use super::ledger::{Track, Unit};
use super::{MessageReport, Outcome, Publisher, Recipient, WorkItem, MAX_WORK_ATTEMPTS};
use super::{DEADLINE_SPARE, STORE_OPERATION_TIMEOUT};
use crate::queue::{DeadLetter, InboundMessage, QueueError};
use crate::receipts::Progress;

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

/// The unit of work being settled: the queue message it came in, its work item, its
/// deadline and its receipt.
pub(super) struct Settling<'a> {
    pub(super) message: &'a InboundMessage,
    pub(super) item: &'a WorkItem,
    pub(super) deadline: Option<Instant>,
    pub(super) track: Option<&'a Track<'a>>,
}

/// What settling a delivery left to report: something dead-lettered, something that
/// makes the queue redeliver the message, and why.
#[derive(Default)]
struct Leftovers {
    dead: bool,
    retry: bool,
    problems: Vec<String>,
}

impl Publisher {
    /// Hands what the posts left over to where it belongs: unposted connections to a
    /// remainder item, failing ones to a delayed retry item (or, after the last attempt,
    /// the dead letters), fatal ones to the dead letters. What the queue refuses (after one
    /// more try) is dead-lettered too, so a unit that has posted is never redelivered —
    /// its posts would be sent again. Only when the dead-letter queue refuses as well does
    /// it answer `Retry` (a copy of its continuation is then skipped by the work log).
    pub(super) async fn settle(
        &self,
        at: &Settling<'_>,
        delivery: Delivery,
        mut report: MessageReport,
        unit: Unit,
    ) -> MessageReport {
        let item = at.item;
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
            match self.hand_off(at, handed, &mut report, &mut left).await {
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
                self.dead_letter_part(at, recipients, error, &mut left)
                    .await;
            } else {
                let handed = Handoff {
                    recipients,
                    attempt: next_attempt,
                    delay: Some(self.config.retry_item_delay(next_attempt)),
                    what: "retry",
                };
                if let Handed::Queued = self.hand_off(at, handed, &mut report, &mut left).await {
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
            self.dead_letter_part(at, recipients, error, &mut left)
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
            let done = Progress::done(unit, &report, failing, left.dead);
            self.record_usage(item, &done).await;
            self.record(at.track, done, &mut report).await;
        }
        report
    }

    /// Enqueues `Connections` items for the handoff's recipients (split to the body limit,
    /// counted pending on the receipt first and taken back for any not enqueued). What the
    /// queue refuses twice is dead-lettered; `left` notes what became of it.
    async fn hand_off(
        &self,
        at: &Settling<'_>,
        handoff: Handoff,
        report: &mut MessageReport,
        left: &mut Leftovers,
    ) -> Handed {
        let Settling {
            message,
            item,
            deadline,
            track,
        } = *at;
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

    /// Enqueues `body` (with `delay`); if the queue refuses, tries once more after a
    /// backoff when the deadline leaves room for another call.
    pub(super) async fn enqueue_once_more(
        &self,
        id: &str,
        body: &str,
        delay: Option<std::time::Duration>,
        deadline: Option<Instant>,
    ) -> Result<(), QueueError> {
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

    /// Dead-letters the connections of `item` that failed so (`error` says how), noting
    /// in `left` whether that worked or the message must be redelivered instead.
    async fn dead_letter_part(
        &self,
        at: &Settling<'_>,
        recipients: Vec<Recipient>,
        error: String,
        left: &mut Leftovers,
    ) {
        let bodies = at.item.connection_bodies(recipients, 1);
        match self
            .dead_letter_bodies(at.message, at.item, bodies, &error)
            .await
        {
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

    /// Dead-letters work item `bodies` (redriving one re-sends to its connections only).
    pub(super) async fn dead_letter_bodies(
        &self,
        message: &InboundMessage,
        item: &WorkItem,
        bodies: Vec<String>,
        error: &str,
    ) -> Result<(), QueueError> {
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

    /// Dead-letters the whole queue body (`error` says why): `DeadLettered`, or `Retry`
    /// when the dead-letter queue refuses it too, so that it is never lost.
    pub(super) async fn dead_letter(
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
