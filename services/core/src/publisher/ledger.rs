//! The receipt ledger: which receipt a unit of work reports to ([`Track`]), what it counts
//! there ([`Unit`], and a named [`Progress`] for each way a unit ends), and the write
//! itself ([`Publisher::record`]), whose failure is logged and counted, never retried by
//! redelivering the message: receipts are reports (docs/design.md: Receipts).
//!
//! The write that makes a receipt final also emits `message.settled` with the receipt's
//! JSON when events are on ([`Publisher::with_events`]; docs/design.md: Events).

use std::sync::Arc;

use switchboard_model::Target;
use time::OffsetDateTime;

use super::{MessageKind, MessageReport, Origin, Publisher, WorkItem, STORE_OPERATION_TIMEOUT};
use crate::events::{Event, EventSink};
use crate::receipts::{Progress, Receipt, ReceiptKey, Terminal};

/// The receipt one unit of work reports to: its key, and the target when known (the
/// message itself; work items carry only the tenant).
pub(super) struct Track<'a> {
    key: ReceiptKey,
    target: Option<&'a Target>,
}

/// What one unit of work counts on its receipt besides its posts' results.
#[derive(Debug, Clone, Copy)]
pub(super) struct Unit {
    origin: Origin,
    /// Whether unposted connections may go to a remainder item (else: redeliver).
    pub(super) remainder_allowed: bool,
    /// Connections it read from the roster (0 for retry and remainder items).
    matched: i64,
    /// Failing posts it took over (a retry item's recipients).
    pub(super) retrying: i64,
}

impl Unit {
    /// The unit that posts to `count` connections: a page (`paged`) or named connections,
    /// of a published message or of a work item in its `attempt`.
    ///
    /// It tells the receipt the connections it read (a retry or remainder item's were
    /// counted by the page that read them) and the failing posts a retry item takes over.
    /// A published `users`/`connections` message that runs out of time is redelivered
    /// whole (SQS's own retry); pages and work items continue in a remainder item.
    pub(super) fn new(origin: Origin, paged: bool, attempt: u32, count: usize) -> Self {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        let item = origin == Origin::WorkItem;
        Self {
            origin,
            remainder_allowed: paged || item,
            matched: if paged || !item { count } else { 0 },
            retrying: if !paged && item && attempt > 1 {
                count
            } else {
                0
            },
        }
    }
}

impl Progress {
    /// A unit that ends without posting, for good (`terminal`): the message is counted as
    /// started, or the work item as no longer pending.
    fn ended(origin: Origin, terminal: Terminal) -> Self {
        Self {
            pending: if origin == Origin::WorkItem { -1 } else { 0 },
            started: origin == Origin::Message,
            terminal: Some(terminal),
            ..Self::default()
        }
    }

    /// A unit whose message expired before it posted.
    pub(super) fn expired(origin: Origin) -> Self {
        Self::ended(origin, Terminal::Expired)
    }

    /// A unit dead-lettered whole (a frame too large, a runaway chain).
    pub(super) fn dead(origin: Origin) -> Self {
        Self::ended(origin, Terminal::Dead)
    }

    /// Part of a message was dead-lettered while the rest runs on (the unit reports its
    /// own end later).
    pub(super) fn part_dead() -> Self {
        Self {
            terminal: Some(Terminal::Dead),
            ..Self::default()
        }
    }

    /// A unit that posted: its counts (`report`'s), the posts it leaves failing
    /// (`failing`, less those it took over), and whether something of it was dead-lettered.
    pub(super) fn done(unit: Unit, report: &MessageReport, failing: usize, dead: bool) -> Self {
        let as_count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        Self {
            matched: unit.matched,
            delivered: as_count(report.delivered),
            gone: as_count(report.gone),
            failed: as_count(failing) - unit.retrying,
            pushed: as_count(report.pushed),
            push_failed: as_count(report.push_failed),
            devices_pruned: as_count(report.devices_pruned),
            pending: if unit.origin == Origin::WorkItem {
                -1
            } else {
                0
            },
            started: unit.origin == Origin::Message,
            terminal: dead.then_some(Terminal::Dead),
        }
    }
}

impl Progress {
    /// A sends unit (a device page or named devices, always a work item) that ended: its
    /// push counts.
    pub(super) fn sent(report: &MessageReport) -> Self {
        let as_count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        Self {
            pushed: as_count(report.pushed),
            push_failed: as_count(report.push_failed),
            devices_pruned: as_count(report.devices_pruned),
            pending: -1,
            ..Self::default()
        }
    }
}

impl Progress {
    /// Whether this progress, recorded into `receipt` (the totals it answered), settled
    /// the message: the answer is final (the message itself is done, `started`, and no
    /// work item is outstanding, `pending <= 0`), and this write is one that can make it
    /// so (it set `started` or lowered `pending`). Any other write (a pending count going
    /// up, part of a message dead-lettered while the rest runs on) never settles, so of a
    /// message's writes exactly one settles it when the counts are whole.
    pub(super) fn settles(&self, receipt: &Receipt) -> bool {
        receipt.started && receipt.pending <= 0 && (self.started || self.pending < 0)
    }
}

impl Publisher {
    /// Emits `message.settled` to `sink` when a message's receipt becomes final (receipts
    /// must be on: the event is the receipt). Nothing is emitted by default.
    pub fn with_events(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = Some(sink);
        self
    }

    /// The receipt of a published message (none with receipts off).
    pub(super) fn track_message<'a>(&self, target: &'a Target, id: &str) -> Option<Track<'a>> {
        self.receipts.is_some().then(|| Track {
            key: ReceiptKey::of(target, id),
            target: Some(target),
        })
    }

    /// The receipt of a work item with this id and tenant (none for legacy bodies, or with
    /// receipts off).
    pub(super) fn track_item(&self, item: &WorkItem) -> Option<Track<'static>> {
        (self.receipts.is_some() && item.target_type != MessageKind::Legacy).then(|| Track {
            key: ReceiptKey::new(item.tenant.clone(), item.id.clone()),
            target: None,
        })
    }

    /// Adds `progress` to the receipt of `track`. A failure is logged and counted in
    /// `report`; it never changes what happens to the message.
    pub(super) async fn record(
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
            Ok(receipt) => {
                tracing::debug!(
                    id = %track.key.id,
                    status = receipt.status().as_str(),
                    pending = receipt.pending,
                    "receipt updated"
                );
                if progress.settles(&receipt) {
                    self.settled(&track.key, &receipt, report).await;
                }
            }
            Err(error) => {
                report.receipt_errors += 1;
                tracing::warn!(id = %track.key.id, %error, "receipt not updated");
            }
        }
    }
}

impl Publisher {
    /// Emits `message.settled` for the final `receipt` of `key` (events on). A failure or
    /// a sink that takes longer than a store operation is logged and counted in `report`;
    /// it never changes what happens to the message.
    async fn settled(&self, key: &ReceiptKey, receipt: &Receipt, report: &mut MessageReport) {
        let Some(sink) = &self.events else {
            return;
        };
        let now = OffsetDateTime::now_utc();
        let event = Event::message_settled(key.tenant.as_ref(), &key.id, receipt.to_json(), now);
        let event_id = event.id.clone();
        let error =
            match tokio::time::timeout(STORE_OPERATION_TIMEOUT, sink.emit(vec![event])).await {
                Ok(Ok(())) => {
                    report.events += 1;
                    return;
                }
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("no answer within {STORE_OPERATION_TIMEOUT:?}"),
            };
        report.event_errors += 1;
        tracing::warn!(
            id = %key.id,
            event = %event_id,
            status = receipt.status().as_str(),
            %error,
            "message.settled not emitted"
        );
    }
}
