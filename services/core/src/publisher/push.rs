//! Web Push in the publisher (docs/design.md: Web Push): who of a message's users gets its
//! notification, and the sends.
//!
//! - A `users` message decides per user from the roster lookup intake already did: users
//!   with no live connection (every named user for `when: always`) get a send to each of
//!   their devices. Beside the posts (`futures::join!`), the message's unit looks their
//!   devices up and hands them to [`Work::Sends`] items: it never waits for a send, so a
//!   slow push service holds neither the frames nor the next message of its ordering
//!   group (sends items are unordered).
//! - A `tenant` message starts a separate chain of device pages ([`Work::Devices`], at most
//!   `page_size` devices each), enqueued beside its first roster page; each page checks
//!   which of its users have a live connection at that moment and sends to the rest.
//! - Sends run at most `fanout_concurrency` at a time, outside the posts' rate limiter;
//!   each is retried in process with the posts' [`RetryPolicy`](super::RetryPolicy) (429,
//!   5xx, timeouts); devices still failing go into a delayed [`Work::Sends`] item naming
//!   just them (until [`MAX_WORK_ATTEMPTS`]), then count as `push_failed`, as do 413 and
//!   other refusals at once: a push is best-effort. 404/410 delete the device
//!   (`devices_pruned`). With a deadline no send starts within the margin (an attempt is
//!   cut at [`POST_ATTEMPT_TIMEOUT`]); unstarted devices go to a remainder item.
//! - Every unit runs once (the work log), so a message or item delivered again sends
//!   nothing again.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{stream, StreamExt};
use switchboard_model::MAX_USERS_PER_TARGET;
use switchboard_model::{Envelope, MessageId, Target, UserId};
use time::OffsetDateTime;
use tokio::time::Instant;

use super::ledger::{Track, Unit};
use super::settle::Settling;
use super::work::Notice;
use super::{MessageReport, Outcome, Publisher, Recipient, Work, WorkItem};
use super::{MAX_WORK_ATTEMPTS, POST_ATTEMPT_TIMEOUT};
use crate::devices::Device;
use crate::poster::Frame;
use crate::queue::InboundMessage;
use crate::receipts::Progress;
use crate::webpush::{Notification, SendError, WebPush, MAX_PLAINTEXT_BYTES};

/// Longest message id used as the Web Push `Topic` (RFC 8030 §5.4: 32 base64url chars).
const MAX_TOPIC_CHARS: usize = 32;

/// What a published message's first unit does about push.
pub(super) enum PushPlan {
    /// A `users` target: send to these users' devices, beside the posts.
    Users { users: Vec<UserId>, notice: Notice },
    /// A `tenant` target: start the chain of device pages.
    Tenant { notice: Notice },
}

/// What happened to the sends of one list of devices.
#[derive(Debug, Default)]
pub(super) struct Sending {
    pub pushed: usize,
    pub pruned: usize,
    /// Failed for good (413, other refusals).
    pub fatal: usize,
    /// Still failing after the in-process retries, retrying may help: a retry item.
    pub failed: Vec<Device>,
    /// Not sent because the deadline came near: a remainder item.
    pub unstarted: Vec<Device>,
    pub last_error: Option<SendError>,
}

/// What happened to one send, after retries.
enum SendResult {
    Sent,
    Pruned,
    Failed(SendError),
    Unstarted,
}

impl Publisher {
    /// Sends Web Push notifications for messages with `push` (`None`: push off; a `push`
    /// in a message is then ignored, as the publish API refuses it).
    pub fn with_push(mut self, push: Option<WebPush>) -> Self {
        self.push = push;
        self
    }

    /// What the first unit of `envelope` (id `id`, frame cursor `cursor`) does about push,
    /// given who of its users have a live connection (`online`; read for `users` targets).
    pub(super) fn push_plan(
        &self,
        envelope: &Envelope,
        id: &str,
        cursor: Option<&str>,
        online: &BTreeSet<&UserId>,
    ) -> Option<PushPlan> {
        let (Some(_), Some(push)) = (&self.push, &envelope.push) else {
            return None;
        };
        let tenant = envelope.target.tenant()?;
        let payload = push.payload(id, cursor, tenant);
        if payload.len() > MAX_PLAINTEXT_BYTES {
            // Only an id the queue chose, longer than the stand-in intake measured with.
            tracing::warn!(
                id,
                len = payload.len(),
                "notification too large: not pushed"
            );
            return None;
        }
        let always = push.when() == switchboard_model::push::When::Always;
        let notice = Notice {
            payload,
            ttl_secs: push.ttl_secs(),
            urgency: push.urgency(),
            topic: envelope
                .id
                .as_ref()
                .map(MessageId::as_str)
                .filter(|id| is_topic(id))
                .map(str::to_string),
            always,
        };
        match &envelope.target {
            Target::Users { users, .. } => {
                let unique: BTreeSet<&UserId> = users.iter().collect();
                let users = unique
                    .into_iter()
                    .filter(|user| always || !online.contains(user))
                    .cloned()
                    .collect();
                Some(PushPlan::Users { users, notice })
            }
            Target::Tenant { .. } => Some(PushPlan::Tenant { notice }),
            Target::Connections { .. } | Target::Broadcast => None,
        }
    }

    /// Posts to `recipients` while carrying out `plan` (handing the sends to work items of
    /// their own), then settles the posts. The unit never waits for a send: a slow push
    /// service holds neither these posts nor the next message of the ordering group.
    pub(super) async fn deliver_and_push(
        &self,
        at: &Settling<'_>,
        recipients: Vec<Recipient>,
        frame: &Frame,
        mut unit: Unit,
        plan: Option<PushPlan>,
        mut report: MessageReport,
    ) -> MessageReport {
        let handing = async {
            match plan {
                None => false,
                Some(PushPlan::Tenant { notice }) => {
                    self.start_devices(at, notice, &mut report).await
                }
                Some(PushPlan::Users { users, notice }) => {
                    self.hand_users(at, &users, notice, &mut report).await
                }
            }
        };
        let (delivery, handed) =
            futures::join!(self.deliver(recipients, frame, at.deadline), handing);
        // A unit that has handed sends on must never run again whole (its next run would
        // hand them on again, with another cursor): what it did not post goes to a
        // remainder item instead.
        unit.remainder_allowed |= handed;
        self.settle(at, delivery, report, unit).await
    }

    /// Runs a [`Work::Devices`] or [`Work::Sends`] item: the devices to send to (a page of
    /// the tenant's, less those whose user has a live connection; or the named ones), the
    /// sends, and what they leave over.
    pub(super) async fn run_sends(
        &self,
        message: &InboundMessage,
        item: WorkItem,
        deadline: Option<Instant>,
        mut report: MessageReport,
        track: Option<&Track<'_>>,
    ) -> MessageReport {
        let at = Settling {
            message,
            item: &item,
            deadline,
            track,
        };
        let (Some(push), Some(tenant)) = (&self.push, &item.tenant) else {
            // Push was turned off since the item was enqueued.
            if let Work::Sends { devices } = &item.work {
                report.push_failed = devices.len();
            }
            tracing::warn!(id = %item.id, "Web Push is off: sends dropped");
            return self.sends_done(&at, report).await;
        };
        let devices = match &item.work {
            Work::Devices { start } => {
                let page = match push
                    .devices
                    .list_page(tenant, start.as_deref(), self.config.page_size)
                    .await
                {
                    Ok(page) => page,
                    Err(error) => return retry(report, format!("device lookup failed: {error}")),
                };
                report.skipped = page.skipped;
                if let Some(next) = page.next {
                    let next = Work::Devices { start: Some(next) };
                    if !self
                        .continue_with(&item, next, deadline, track, &mut report)
                        .await
                    {
                        return report;
                    }
                }
                match self.offline_devices(&item, page.devices).await {
                    Ok(devices) => devices,
                    Err(error) => return retry(report, format!("roster lookup failed: {error}")),
                }
            }
            Work::Sends { devices } => devices.clone(),
            Work::Page { .. } | Work::Connections { .. } => Vec::new(),
        };
        let sending = self.send_all(&item, devices, deadline).await;
        self.settle_sends(&at, sending, &mut report).await;
        self.sends_done(&at, report).await
    }

    /// The devices of a page to send to: all for `when: always`, else those whose user
    /// has no live connection now.
    async fn offline_devices(
        &self,
        item: &WorkItem,
        devices: Vec<Device>,
    ) -> Result<Vec<Device>, crate::roster::RosterError> {
        let (Some(tenant), Some(notice)) = (&item.tenant, &item.push) else {
            return Ok(Vec::new());
        };
        if notice.always {
            return Ok(devices);
        }
        let users: Vec<UserId> = devices
            .iter()
            .map(|d| d.user.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut online = BTreeSet::new();
        for chunk in users.chunks(MAX_USERS_PER_TARGET) {
            let records = self.roster.list_users(tenant, chunk).await?;
            online.extend(records.into_iter().map(|r| r.user));
        }
        Ok(devices
            .into_iter()
            .filter(|d| !online.contains(&d.user))
            .collect())
    }

    /// Enqueues the first device page of a `tenant` message (counted pending first);
    /// answers whether it did. What the queue refuses is logged: the push is best-effort,
    /// the posts go on.
    async fn start_devices(
        &self,
        at: &Settling<'_>,
        notice: Notice,
        report: &mut MessageReport,
    ) -> bool {
        let page = at
            .item
            .with_notice(notice)
            .next_hop(Work::Devices { start: None }, 1);
        self.record(at.track, Progress::pending(1), report).await;
        let body = page.to_body();
        match self
            .enqueue_once_more(&page.id, &body, None, at.deadline)
            .await
        {
            Ok(()) => true,
            Err(error) => {
                self.record(at.track, Progress::pending(-1), report).await;
                tracing::warn!(id = %page.id, %error, "device pages not enqueued: nothing pushed");
                report.error = Some(format!("device pages not enqueued: {error}"));
                false
            }
        }
    }

    /// Hands the devices of `users` to `Sends` items carrying `notice` (attempt 1);
    /// answers whether any was enqueued. A failed lookup is logged: the posts go on.
    async fn hand_users(
        &self,
        at: &Settling<'_>,
        users: &[UserId],
        notice: Notice,
        report: &mut MessageReport,
    ) -> bool {
        let (Some(push), Some(tenant)) = (&self.push, &at.item.tenant) else {
            return false;
        };
        if users.is_empty() {
            return false;
        }
        let devices = match push.devices.list_users(tenant, users).await {
            Ok(devices) => devices,
            Err(error) => {
                // Best-effort: nothing is known to count.
                tracing::warn!(id = %at.item.id, %error, "device lookup failed: nothing pushed");
                return false;
            }
        };
        if devices.is_empty() {
            return false;
        }
        let item = at.item.with_notice(notice);
        let sends_at = Settling { item: &item, ..*at };
        self.hand_sends(&sends_at, devices, 1, None, report).await > 0
    }

    /// Sends `item`'s notification to every device, at most `fanout_concurrency` at a time.
    async fn send_all(
        &self,
        item: &WorkItem,
        devices: Vec<Device>,
        deadline: Option<Instant>,
    ) -> Sending {
        let (Some(push), Some(notice)) = (&self.push, &item.push) else {
            return Sending::default();
        };
        let notification = notification(notice, item.expires_at);
        let mut sends = stream::iter(devices)
            .map(|device| self.send(push, device, &notification, deadline))
            .buffer_unordered(self.config.fanout_concurrency);
        let mut sending = Sending::default();
        while let Some((device, result)) = sends.next().await {
            match result {
                SendResult::Sent => sending.pushed += 1,
                SendResult::Pruned => sending.pruned += 1,
                SendResult::Failed(error) => {
                    tracing::debug!(id = %item.id, device = %device.id, %error, "send failed");
                    if error.is_retryable() {
                        sending.failed.push(device);
                    } else {
                        sending.fatal += 1;
                    }
                    sending.last_error = Some(error);
                }
                SendResult::Unstarted => sending.unstarted.push(device),
            }
        }
        sending
    }

    /// One send, retried in process while retrying may help and time allows.
    async fn send(
        &self,
        push: &WebPush,
        device: Device,
        notification: &Notification,
        deadline: Option<Instant>,
    ) -> (Device, SendResult) {
        let policy = &self.config.retry;
        let mut retries = 0;
        let mut last_error = None;
        loop {
            if self.out_of_time(deadline, Duration::ZERO) {
                let result = last_error.map_or(SendResult::Unstarted, SendResult::Failed);
                return (device, result);
            }
            let sent = push.sender.send(&device, notification);
            let result = match deadline {
                // Within a deadline one attempt fits the margin, whatever PUSH_TIMEOUT_SECS.
                Some(_) => tokio::time::timeout(POST_ATTEMPT_TIMEOUT, sent)
                    .await
                    .unwrap_or(Err(SendError::Timeout)),
                None => sent.await,
            };
            let error = match result {
                Ok(()) => return (device, SendResult::Sent),
                Err(SendError::Gone) => {
                    if let Err(error) = push
                        .devices
                        .remove(&device.tenant, &device.user, &device.id)
                        .await
                    {
                        tracing::warn!(device = %device.id, %error, "could not remove gone device");
                    }
                    return (device, SendResult::Pruned);
                }
                Err(error) => error,
            };
            let delay = policy.delay(retries + 1);
            if !error.is_retryable()
                || retries + 1 >= policy.max_attempts
                || self.out_of_time(deadline, delay)
            {
                return (device, SendResult::Failed(error));
            }
            retries += 1;
            last_error = Some(error);
            tokio::time::sleep(delay).await;
        }
    }

    /// Counts `sending` in `report` and hands what it left over to items of their own:
    /// unstarted devices to a remainder, failing ones to a delayed retry (or, after the
    /// last attempt, `push_failed`). What the queue refuses counts as `push_failed`.
    async fn settle_sends(&self, at: &Settling<'_>, sending: Sending, report: &mut MessageReport) {
        let item = at.item;
        report.pushed += sending.pushed;
        report.devices_pruned += sending.pruned;
        report.push_failed += sending.fatal;
        if !sending.unstarted.is_empty() {
            self.hand_sends(at, sending.unstarted, item.attempt, None, report)
                .await;
        }
        if !sending.failed.is_empty() {
            let next_attempt = item.attempt + 1;
            let last = sending
                .last_error
                .map(|e| e.to_string())
                .unwrap_or_default();
            if next_attempt > MAX_WORK_ATTEMPTS {
                tracing::warn!(
                    id = %item.id,
                    devices = sending.failed.len(),
                    attempts = item.attempt,
                    last,
                    "sends still failing after the last attempt"
                );
                report.push_failed += sending.failed.len();
            } else {
                let delay = Some(self.config.retry_item_delay(next_attempt));
                self.hand_sends(at, sending.failed, next_attempt, delay, report)
                    .await;
            }
        }
    }

    /// Enqueues `Sends` items for `devices` (counted pending first, taken back for any the
    /// queue refuses twice: those devices count as `push_failed`). Answers the devices
    /// enqueued.
    async fn hand_sends(
        &self,
        at: &Settling<'_>,
        devices: Vec<Device>,
        attempt: u32,
        delay: Option<Duration>,
        report: &mut MessageReport,
    ) -> usize {
        let item = at.item;
        let bodies = item.send_items(devices, attempt);
        let total = i64::try_from(bodies.len()).unwrap_or(i64::MAX);
        self.record(at.track, Progress::pending(total), report)
            .await;
        let mut refused = 0;
        let mut queued = 0;
        for (count, body) in bodies {
            match self
                .enqueue_once_more(&item.id, &body, delay, at.deadline)
                .await
            {
                Ok(()) => {
                    report.deferred_sends += count;
                    queued += count;
                }
                Err(error) => {
                    tracing::warn!(id = %item.id, devices = count, %error, "sends not enqueued");
                    report.push_failed += count;
                    refused += 1;
                }
            }
        }
        if refused > 0 {
            self.record(at.track, Progress::pending(-refused), report)
                .await;
        }
        queued
    }

    /// Ends a sends unit: its counts on the receipt and in usage.
    async fn sends_done(&self, at: &Settling<'_>, mut report: MessageReport) -> MessageReport {
        report.outcome = if report.deferred_sends > 0 {
            Outcome::Deferred
        } else {
            Outcome::Delivered
        };
        let done = Progress::sent(&report);
        self.record_usage(at.item, &done).await;
        self.record(at.track, done, &mut report).await;
        report
    }
}

fn retry(mut report: MessageReport, error: String) -> MessageReport {
    report.outcome = Outcome::Retry;
    report.error = Some(error);
    report
}

/// The notification of `notice`, its `TTL` never past the message's `expires_at`.
fn notification(notice: &Notice, expires_at: Option<OffsetDateTime>) -> Notification {
    let left = expires_at.map(|at| {
        let secs = (at - OffsetDateTime::now_utc()).whole_seconds().max(0);
        u32::try_from(secs).unwrap_or(u32::MAX)
    });
    Notification {
        payload: notice.payload.clone(),
        ttl_secs: left.map_or(notice.ttl_secs, |left| left.min(notice.ttl_secs)),
        urgency: notice.urgency,
        topic: notice.topic.clone(),
    }
}

/// Whether a message id can be the `Topic` header: 1–32 base64url characters.
fn is_topic(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_TOPIC_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
