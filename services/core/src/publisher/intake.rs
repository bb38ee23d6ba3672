//! Intake: what a queue body becomes before any post. A work item is checked against the
//! hop bound and claimed; a published envelope is parsed (or taken as a legacy raw body),
//! dropped when expired, given its cursor and frame, recorded in history, and its target
//! resolved into the first unit of [`Work`] (a roster lookup, a tenant's first page, or a
//! broadcast's scan segments), which `Publisher::run` (in `mod.rs`) then posts.

use std::collections::BTreeSet;

use switchboard_model::{within_frame_limit, Envelope, Target, UserId};
use time::OffsetDateTime;
use tokio::time::Instant;

use super::ledger::Track;
use super::{lookup_failed, MessageReport, Origin, Outcome, Publisher};
use super::{MessageKind, Recipient, Work, WorkItem, MAX_WORK_ATTEMPTS};
use crate::history::{Cursor, HistoryEntry, Stream};
use crate::queue::InboundMessage;
use crate::receipts::Progress;
use crate::roster::{token_expired, PageScope};
use crate::worklog::UnitKey;

/// A published message ready to deliver: its id, frame and cursor, made at `now`, and the
/// history streams it is recorded in.
struct Prepared {
    id: String,
    frame: String,
    cursor: Option<Cursor>,
    now: OffsetDateTime,
    streams: Vec<Stream>,
}

impl Publisher {
    /// Takes one queue body in: a work item (checked against the hop bound and claimed) or
    /// a published envelope (or a legacy raw body), and runs its first unit of work. What
    /// can never be delivered is dead-lettered; an expired message is dropped.
    pub(super) async fn process(
        &self,
        message: &InboundMessage,
        deadline: Option<Instant>,
    ) -> MessageReport {
        if let Some(item) = WorkItem::from_body(&message.body) {
            return match item {
                Ok(item) => {
                    let mut report =
                        MessageReport::new(message, item.id.clone(), item.target_type.as_str());
                    report.work_item = true;
                    report.tenant = item.tenant.clone();
                    report.hops = item.hops;
                    let track = self.track_item(&item);
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
                            None,
                        )
                        .await;
                    self.end(&key, lease, report).await
                }
                Err(error) => {
                    let report = MessageReport::new(
                        message,
                        message.message_id.clone(),
                        MessageKind::INVALID,
                    );
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
                let report =
                    MessageReport::new(message, message.message_id.clone(), MessageKind::INVALID);
                return self
                    .dead_letter(message, report, format!("invalid envelope: {error}"))
                    .await;
            }
        };
        let id = envelope
            .id
            .as_ref()
            .map_or_else(|| message.message_id.clone(), ToString::to_string);
        let mut report = MessageReport::new(message, id.clone(), envelope.target.kind().as_str());
        report.tenant = envelope.target.tenant().cloned();
        let track = self.track_message(&envelope.target, &id);
        // Claimed first, so a copy delivered again (even one whose `expiresAt` has passed
        // since) neither marks the receipt again nor settles it twice.
        let key = UnitKey::message(envelope.target.tenant().cloned(), &id);
        let Some(lease) = self.begin(&key, deadline, &mut report).await else {
            return report;
        };
        if envelope.is_expired(OffsetDateTime::now_utc()) {
            let expired = Progress::expired(Origin::Message);
            self.record(track.as_ref(), expired, &mut report).await;
            report.outcome = Outcome::Expired;
            return self.end(&key, lease, report).await;
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
                    let dead = Progress::dead(Origin::Message);
                    self.record(track.as_ref(), dead, &mut report).await;
                }
                return self.end(&key, lease, report).await;
            }
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
        let cursor_text = cursor.as_ref().map(|c| c.as_str().to_string());
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
            target_type: envelope.target.kind().into(),
            tenant: envelope.target.tenant().cloned(),
            frame,
            expires_at: envelope.expires_at,
            attempt: 1,
            hops: 0,
            push: None,
            work: Work::Connections {
                connections: Vec::new(),
            },
        };
        let mut online = BTreeSet::new();
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
                Ok(records) => {
                    // Who has a live connection now (one whose token expired is closed, not
                    // posted to): the push decision per user.
                    let now = OffsetDateTime::now_utc();
                    let leeway = self.config.token_leeway_secs;
                    online.extend(users.iter().filter(|u| {
                        records.iter().any(|r| {
                            &r.user == *u && !token_expired(r.token_expires_at, now, leeway)
                        })
                    }));
                    Work::Connections {
                        connections: records.into_iter().map(Recipient::from).collect(),
                    }
                }
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
        let plan = self.push_plan(envelope, &item.id, cursor_text.as_deref(), &online);
        let item = item.with_work(work, 1);
        self.run(
            message,
            item,
            Origin::Message,
            deadline,
            report,
            track,
            plan,
        )
        .await
    }

    /// A raw body of the original broadcast design: delivered verbatim to every
    /// connection, as a broadcast.
    async fn deliver_legacy(
        &self,
        message: &InboundMessage,
        deadline: Option<Instant>,
    ) -> MessageReport {
        let mut report = MessageReport::new(
            message,
            message.message_id.clone(),
            MessageKind::Legacy.as_str(),
        );
        if let Err(too_large) = within_frame_limit(&message.body) {
            let error = format!("legacy body: {too_large}");
            return self.dead_letter(message, report, error).await;
        }
        let item = WorkItem {
            id: message.message_id.clone(),
            target_type: MessageKind::Legacy,
            tenant: None,
            frame: message.body.clone(),
            expires_at: None,
            attempt: 1,
            hops: 0,
            push: None,
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
                self.run(message, item, Origin::Message, deadline, report, None, None)
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
            self.record(track, Progress::part_dead(), report).await;
            tracing::warn!(id = %item.id, %error, "scan segments dead-lettered");
        }
        Ok(Work::Page {
            scope: PageScope::Segment { segment: 0, total },
            start: None,
        })
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
            self.config.page_size,
        );
        tracing::error!(id = %report.id, hops = report.hops, "{error}");
        let mut report = self.dead_letter(message, report, error).await;
        if report.outcome == Outcome::DeadLettered {
            report.runaway = true;
            let dead = Progress::dead(Origin::WorkItem);
            self.record(track, dead, &mut report).await;
        }
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
