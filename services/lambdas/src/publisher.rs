//! The SQS-triggered publisher (SPEC §5): maps an SQS batch to the core's
//! [`InboundMessage`]s, runs [`Publisher::handle_batch`], and answers a partial batch
//! response naming the messages SQS must redeliver (`batchItemFailures`; the event source
//! mapping has `ReportBatchItemFailures` on). Every message's report also becomes one EMF
//! document ([`Metrics::message_report`]).

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use switchboard_core::config::{required, ConfigError};
use switchboard_core::publisher::{Publisher, PublisherConfig};
use switchboard_core::queue::InboundMessage;

use crate::emf::Metrics;

/// The publisher function's settings (SPEC §9), read once at init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherSettings {
    /// `CALLBACK_URL`: the management API base URL including the stage (required: an SQS
    /// event does not say which API its connections belong to).
    pub callback_url: String,
    /// `DLQ_URL`: where malformed bodies go at once (required).
    pub dlq_url: String,
    pub publisher: PublisherConfig,
}

impl PublisherSettings {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let callback_url: String = required(&lookup, "CALLBACK_URL")?;
        let callback_url =
            switchboard_aws::config::validate_endpoint("CALLBACK_URL", &callback_url)?;
        let dlq_url: String = required(&lookup, "DLQ_URL")?;
        let dlq_url = switchboard_aws::config::validate_endpoint("DLQ_URL", &dlq_url)?;
        Ok(Self {
            callback_url,
            dlq_url,
            publisher: PublisherConfig::from_lookup(&lookup)?,
        })
    }
}

/// One SQS record as the core sees it. A missing or unparseable
/// `ApproximateReceiveCount` counts as the first receive.
pub fn inbound_message(record: &SqsMessage) -> InboundMessage {
    InboundMessage {
        message_id: record.message_id.clone().unwrap_or_default(),
        body: record.body.clone().unwrap_or_default(),
        receive_count: record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or(1),
    }
}

/// Handles one SQS batch: every message not fully handled is listed in
/// `batchItemFailures` so SQS redelivers it (and, after five receives, moves it to the DLQ).
/// One EMF document per message goes to `metrics`.
pub async fn handle(
    publisher: &Publisher,
    metrics: &Metrics,
    event: &SqsEvent,
) -> SqsBatchResponse {
    let batch: Vec<InboundMessage> = event.records.iter().map(inbound_message).collect();
    let outcome = publisher.handle_batch(&batch).await;
    for report in &outcome.reports {
        metrics.message_report(report);
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = outcome
        .failed_message_ids
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}
