//! The SQS-triggered publisher: maps an SQS batch to the core's [`InboundMessage`]s, runs
//! [`Publisher::handle_batch_until`] with the invocation's deadline, and answers a partial
//! batch response naming the messages SQS must redeliver (`batchItemFailures`; the event
//! source mapping has `ReportBatchItemFailures` on). Work items (continuations, retries)
//! go back on the function's own queue, `QUEUE_URL`. Every message's report also becomes
//! one EMF document ([`Metrics::message_report`]).
//!
//! Web Push (docs/design.md: Web Push): with `VAPID_*` set, users of a message's `users` or
//! `tenant` target with no live connection get a push to each of their devices (on the
//! history table), sent from this function over the internet (it is in no VPC); without
//! them push is off ([`crate::push`]).
//!
//! Events: with `EVENT_BUS_NAME` set, a message whose receipt turns final emits
//! `message.settled` to that EventBridge bus ([`EventBridgeSink`]; receipts must be on).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use switchboard_aws::config::with_store_timeouts;
use switchboard_aws::dynamo::DynamoStores;
use switchboard_aws::{
    load_sdk_config, ApiGatewayPoster, DynamoConfig, EventBridgeSink, LocalDefaults, SqsQueue,
};
use switchboard_core::config::{required, ConfigError};
use switchboard_core::history::HistoryConfig;
use switchboard_core::publisher::{Publisher, PublisherConfig, PublisherPorts};
use switchboard_core::queue::InboundMessage;
use switchboard_core::receipts::{ReceiptConfig, Receipts};
use switchboard_core::tenants::Tenants;
use switchboard_core::usage::{Usage, UsageConfig};
use tokio::time::Instant;

use crate::emf::Metrics;
use crate::publish_api::StartupError;

/// The publisher function's settings (docs/design.md: Configuration), read once at init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherSettings {
    /// `CALLBACK_URL`: the management API base URL including the stage (required: an SQS
    /// event does not say which API its connections belong to).
    pub callback_url: String,
    /// `DLQ_URL`: where malformed bodies go at once (required).
    pub dlq_url: String,
    /// `QUEUE_URL`: the queue this function drains, where its work items go (required).
    pub queue_url: String,
    pub publisher: PublisherConfig,
}

impl PublisherSettings {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let callback_url: String = required(&lookup, "CALLBACK_URL")?;
        let callback_url =
            switchboard_aws::config::validate_endpoint("CALLBACK_URL", &callback_url)?;
        let dlq_url: String = required(&lookup, "DLQ_URL")?;
        let dlq_url = switchboard_aws::config::validate_endpoint("DLQ_URL", &dlq_url)?;
        let queue_url: String = required(&lookup, "QUEUE_URL")?;
        let queue_url = switchboard_aws::config::validate_endpoint("QUEUE_URL", &queue_url)?;
        Ok(Self {
            callback_url,
            dlq_url,
            queue_url,
            publisher: PublisherConfig::from_lookup(&lookup)?,
        })
    }
}

/// Builds the publisher from the environment: the roster table, the management API at
/// `CALLBACK_URL`, the dead-letter queue, the work queue, the EMF metrics writer, and Web
/// Push (`VAPID_*`, `PUSH_*`; off without them). A missing or invalid variable is an error
/// naming it (the function then fails its init).
pub async fn build(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(Publisher, Metrics), StartupError> {
    let dynamo = DynamoConfig::from_lookup(&lookup)?;
    let settings = PublisherSettings::from_lookup(&lookup)?;
    let metrics = Metrics::from_lookup(&lookup)?;
    let history = HistoryConfig::from_lookup(&lookup)?;
    let receipts = ReceiptConfig::from_lookup(&lookup)?;
    let usage = UsageConfig::from_lookup(&lookup)?;
    // Tenant settings: a tenant's `historyTtlSecs` (docs/design.md: Tenants).
    let tenants = Tenants::from_lookup(&lookup)?;
    // Every SQS and DynamoDB call is bounded, so settling fits the deadline margin
    // (docs/design.md: Fan-out at any size, "Time budget"); the poster sets its own
    // per-attempt timeout.
    let sdk = with_store_timeouts(&load_sdk_config(LocalDefaults::NONE).await);
    let stores = DynamoStores::connect_bounded(&dynamo).await;
    let push = crate::push::web_push(&lookup, || Arc::new(stores.devices()))?;
    // `message.settled` to EventBridge when `EVENT_BUS_NAME` is set (docs/design.md: Events).
    let bus_name = crate::events::event_bus_name(&lookup)?;
    let ports = PublisherPorts {
        roster: Arc::new(stores.roster()),
        poster: Arc::new(ApiGatewayPoster::new(&sdk, &settings.callback_url)),
        dead_letters: Arc::new(SqsQueue::from_sdk_config(&sdk, settings.dlq_url.clone())),
        work_queue: Arc::new(SqsQueue::from_sdk_config(&sdk, settings.queue_url.clone())),
    };
    tracing::info!(
        table = %dynamo.roster_table,
        callback_url = %settings.callback_url,
        page_size = settings.publisher.page_size,
        max_hops = settings.publisher.max_hops(),
        fanout_rate = settings.publisher.fanout_rate,
        metrics_namespace = metrics.namespace(),
        history_table = %dynamo.history_table,
        history_ttl_secs = history.ttl.as_secs(),
        receipt_ttl_secs = receipts.ttl.as_secs(),
        event_bus = bus_name.as_deref().unwrap_or("(none: no events)"),
        "publisher ready"
    );
    let publisher = Publisher::new(ports, settings.publisher)
        .with_history(Arc::new(stores.history()), &history)
        .with_receipts(Receipts::new(Arc::new(stores.receipts()), &receipts))
        .with_history_ttls(tenants)
        .with_usage(Some(Usage::new(
            Arc::new(stores.usage(usage.retention)),
            &usage,
        )))
        .with_work_log(Arc::new(stores.work_log()))
        .with_push(push);
    let publisher = match bus_name {
        Some(bus_name) => {
            publisher.with_events(Arc::new(EventBridgeSink::from_sdk_config(&sdk, bus_name)))
        }
        None => publisher,
    };
    Ok((publisher, metrics))
}

/// The invocation's deadline (`Lambda-Runtime-Deadline-Ms`, epoch milliseconds) as a
/// monotonic instant; `None` when it is missing or already past.
pub fn deadline_instant(deadline_epoch_ms: u64) -> Option<Instant> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .ok()?;
    if deadline_epoch_ms == 0 {
        return None;
    }
    let left = Duration::from_millis(deadline_epoch_ms.saturating_sub(now_ms));
    Some(Instant::now() + left)
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

/// Handles one SQS batch before `deadline`: every message not fully handled is listed in
/// `batchItemFailures` so SQS redelivers it (and, after five receives, moves it to the DLQ).
/// One EMF document per message goes to `metrics`.
pub async fn handle(
    publisher: &Publisher,
    metrics: &Metrics,
    event: &SqsEvent,
    deadline: Option<Instant>,
) -> SqsBatchResponse {
    let batch: Vec<InboundMessage> = event.records.iter().map(inbound_message).collect();
    let outcome = publisher.handle_batch_until(&batch, deadline).await;
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
