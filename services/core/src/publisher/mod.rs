//! The publisher: takes SQS-shaped batches, resolves each message's target through the
//! roster, fans the frame out through the [`ConnectionPusher`] with bounded concurrency and
//! retries, and reports which messages must be redelivered (`batchItemFailures`).
//!
//! - Messages of a batch run concurrently; each message's posts run at most
//!   `fanout_concurrency` at a time.
//! - `Gone` removes the roster item and counts `gone`; `Throttled`, `Timeout`, `Transient`
//!   are retried with exponential backoff and full jitter; a message left with failed posts
//!   is reported for redelivery (delivery is at least once; clients dedupe by `id`).
//! - A malformed body (or one whose frame can never be delivered) goes to the
//!   [`DeadLetterSink`] at once and is acknowledged; if the sink itself fails, the message is
//!   reported for redelivery rather than lost. Expired messages are dropped and counted.
//! - One structured log line per message (SPEC §5 fields).

mod config;
mod fanout;
mod report;

#[cfg(test)]
mod tests;

pub use config::{PublisherConfig, RetryPolicy};
pub use report::{BatchOutcome, MessageReport, Outcome};

use std::sync::Arc;
use std::time::Instant;

use switchboard_model::{Envelope, Target, MAX_FRAME_BYTES};
use time::OffsetDateTime;

use crate::pusher::ConnectionPusher;
use crate::queue::{DeadLetter, DeadLetterSink, InboundMessage};
use crate::roster::{ConnectionRecord, RosterError, RosterStore};

/// The publisher's dependencies, built once and shared by every invocation.
#[derive(Clone)]
pub struct Publisher {
    roster: Arc<dyn RosterStore>,
    pusher: Arc<dyn ConnectionPusher>,
    dead_letters: Arc<dyn DeadLetterSink>,
    config: PublisherConfig,
}

impl Publisher {
    pub fn new(
        roster: Arc<dyn RosterStore>,
        pusher: Arc<dyn ConnectionPusher>,
        dead_letters: Arc<dyn DeadLetterSink>,
        config: PublisherConfig,
    ) -> Self {
        Self {
            roster,
            pusher,
            dead_letters,
            config,
        }
    }

    /// Handles one batch; the messages run concurrently.
    pub async fn handle_batch(&self, batch: &[InboundMessage]) -> BatchOutcome {
        let reports = futures::future::join_all(batch.iter().map(|m| self.handle_message(m))).await;
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
    pub async fn handle_message(&self, message: &InboundMessage) -> MessageReport {
        let started = Instant::now();
        let mut report = self.process(message).await;
        report.duration = started.elapsed();
        report.log();
        report
    }

    async fn process(&self, message: &InboundMessage) -> MessageReport {
        let body = message.body.as_bytes();
        let envelope = match Envelope::parse(body) {
            Ok(envelope) => envelope,
            Err(_) if self.config.legacy_broadcast && !Envelope::looks_like_envelope(body) => {
                let report = MessageReport::new(message, message.message_id.clone(), "legacy");
                return self.deliver_legacy(message, report).await;
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
        if envelope.is_expired(OffsetDateTime::now_utc()) {
            report.outcome = Outcome::Expired;
            return report;
        }
        let frame = envelope.frame(&id);
        if frame.len() > MAX_FRAME_BYTES {
            let error = format!(
                "frame is {} bytes, over the {MAX_FRAME_BYTES}-byte limit",
                frame.len()
            );
            return self.dead_letter(message, report, error).await;
        }
        match self.resolve(&envelope.target).await {
            Ok(records) => self.fan_out(records, &frame, report).await,
            Err(error) => {
                report.outcome = Outcome::Retry;
                report.error = Some(format!("roster lookup failed: {error}"));
                report
            }
        }
    }

    async fn resolve(&self, target: &Target) -> Result<Vec<ConnectionRecord>, RosterError> {
        match target {
            Target::Users { tenant, users } => self.roster.list_users(tenant, users).await,
            Target::Tenant { tenant } => self.roster.list_tenant(tenant).await,
            Target::Connections {
                tenant,
                connection_ids,
            } => self.roster.list_connections(tenant, connection_ids).await,
            Target::Broadcast => self.roster.list_all().await,
        }
    }

    async fn deliver_legacy(
        &self,
        message: &InboundMessage,
        mut report: MessageReport,
    ) -> MessageReport {
        if message.body.len() > MAX_FRAME_BYTES {
            let error = format!("legacy body over the {MAX_FRAME_BYTES}-byte limit");
            return self.dead_letter(message, report, error).await;
        }
        match self.roster.list_all().await {
            Ok(records) => self.fan_out(records, &message.body, report).await,
            Err(error) => {
                report.outcome = Outcome::Retry;
                report.error = Some(format!("roster lookup failed: {error}"));
                report
            }
        }
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
