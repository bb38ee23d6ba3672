//! The events function (docs/design.md: Events): `user.online` and `user.offline` on
//! AWS, from two inputs, told apart by their records' `eventSource`:
//!
//! - `aws:dynamodb`: a batch of the roster table's stream (`NEW_AND_OLD_IMAGES`). `INSERT`
//!   of a connection → [`PresenceEvents::connected`] (`user.online` to EventBridge);
//!   `REMOVE` (a `$disconnect`, a sweep, or the Time to Live process) →
//!   [`PresenceEvents::disconnected`], and when the user has no connection left an
//!   [`OfflineCheck`] sent to `EVENTS_QUEUE_URL` with `DelaySeconds` =
//!   `EVENTS_OFFLINE_DELAY_SECS`; `MODIFY` is ignored. An item that is not a connection
//!   (another writer's) is skipped, logged and counted; it never fails the batch.
//! - `aws:sqs`: those checks once the delay has passed → [`PresenceEvents::check_offline`]
//!   (`user.offline` iff nothing changed meanwhile).
//!
//! Every step is idempotent (the online store's conditional writes, deterministic event
//! ids), so a redelivered record or message changes nothing and at most repeats an event
//! with the same id. One step needs more than the online store for that: an `INSERT`
//! delivered again after its connection's `REMOVE` was applied (a whole batch retried after
//! a timeout) would add the connection back. So an `INSERT` counts only while the
//! connection's roster item still exists ([`DynamoRosterStore::holds`], a consistent read;
//! connection ids are never reused): a connection that is gone when its `INSERT` is handled (a
//! replay, or one that lived less than the stream's lag) announces nothing, and its `REMOVE` then
//! finds nothing to remove.
//!
//! The answer is a partial batch response (`ReportBatchItemFailures` on both event source
//! mappings): SQS gets the failed messages' `messageId`s; the stream the `SequenceNumber` of
//! the first record that failed and of every record after it (Lambda retries from the
//! lowest sequence number reported;
//! <https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html>).
//! A stream batch runs each user's records in order, [`STREAM_USER_CONCURRENCY`] users at
//! once, and a user's records stop at its first failure: a user's `REMOVE` never runs
//! before the `INSERT` that preceded it.
//!
//! One EMF document per invocation (`Target` `stream` or `offline`): `Online`, `Offline`
//! (events put), `EventsPut`, `EventsFailed` (events EventBridge did not take), `Skipped`
//! (records that are no connection, checks that do not parse), `ItemFailures` (records or
//! messages handed back for a retry).

mod stream;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_aws::config::{validate_endpoint, with_store_timeouts};
use switchboard_aws::dynamo::{DynamoRosterStore, DynamoStores};
use switchboard_aws::{load_sdk_config, DynamoConfig, EventBridgeSink, LocalDefaults, SqsQueue};
use switchboard_core::config::{optional, required, ConfigError};
use switchboard_core::events::presence::PresenceError;
use switchboard_core::events::{offline_delay, EventError, OfflineCheck, PresenceEvents};
use switchboard_core::queue::{MessageQueue, QueueError};
use switchboard_core::roster::{ConnectionRecord, RosterError};
use switchboard_model::{TenantId, UserId};
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::emf::Metrics;
use crate::publish_api::StartupError;

pub use stream::{StreamChange, StreamRecord, UserIdentity};

/// The `eventSource` of a DynamoDB Streams record.
pub const STREAM_SOURCE: &str = "aws:dynamodb";
/// The `eventSource` of an SQS record.
pub const SQS_SOURCE: &str = "aws:sqs";
/// A record is only started with at least this much of the invocation left (its steps are
/// each bounded by the store and `PutEvents` timeouts); the rest are handed back.
pub const RECORD_BUDGET: Duration = Duration::from_secs(5);
/// Users whose stream records run at once within a batch (each user's in order).
pub const STREAM_USER_CONCURRENCY: usize = 16;
/// Longest `EVENT_BUS_NAME`: an event bus ARN.
const MAX_BUS_NAME_CHARS: usize = 1_600;

/// `EVENT_BUS_NAME`: the EventBridge bus events go to (a name or an ARN); `None`: unset,
/// no events (the publisher's `message.settled`).
pub fn event_bus_name(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, ConfigError> {
    let Some(name) = optional::<String>(lookup, "EVENT_BUS_NAME")? else {
        return Ok(None);
    };
    let valid = name.chars().count() <= MAX_BUS_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | ':'));
    if !valid {
        return Err(ConfigError::Invalid {
            name: "EVENT_BUS_NAME",
            value: name,
            reason: "an event bus name (A-Z a-z 0-9 . - _ /) or ARN".into(),
        });
    }
    Ok(Some(name))
}

/// The events function's settings, read once at init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsSettings {
    /// `EVENT_BUS_NAME` (required here).
    pub bus_name: String,
    /// `EVENTS_QUEUE_URL`: the queue of offline checks, which also triggers this function
    /// (required).
    pub queue_url: String,
    /// `EVENTS_OFFLINE_DELAY_SECS`.
    pub offline_delay: Duration,
}

impl EventsSettings {
    /// Also requires `ROSTER_TABLE` and `HISTORY_TABLE` to be set (their values are read
    /// by [`DynamoConfig`]): the other functions fall back to the default table names, but
    /// this one reads the roster's items and keeps the online items, so a stack that forgot
    /// either must stop at init, not fail every record.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        for name in ["ROSTER_TABLE", "HISTORY_TABLE"] {
            let _: String = required(&lookup, name)?;
        }
        let bus_name = event_bus_name(&lookup)?.ok_or(ConfigError::Missing("EVENT_BUS_NAME"))?;
        let queue_url: String = required(&lookup, "EVENTS_QUEUE_URL")?;
        Ok(Self {
            bus_name,
            queue_url: validate_endpoint("EVENTS_QUEUE_URL", &queue_url)?,
            offline_delay: offline_delay(&lookup)?,
        })
    }
}

/// The function's dependencies: the presence steps (the online store on the history
/// table, EventBridge), the roster check and the queue of offline checks.
pub struct EventsFunction {
    pub presence: PresenceEvents,
    /// The roster table: whether an `INSERT`'s item still exists
    /// ([`DynamoRosterStore::holds`]).
    pub roster: DynamoRosterStore,
    pub checks: Arc<dyn MessageQueue>,
    pub offline_delay: Duration,
}

/// Builds the function from the environment: `ROSTER_TABLE`, `HISTORY_TABLE` (the online items),
/// `EVENT_BUS_NAME`, `EVENTS_QUEUE_URL`, `EVENTS_OFFLINE_DELAY_SECS`, `DYNAMODB_ENDPOINT`,
/// `METRICS_NAMESPACE`. A missing or invalid variable is an error naming it.
pub async fn build(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(EventsFunction, Metrics), StartupError> {
    let dynamo = DynamoConfig::from_lookup(&lookup)?;
    let settings = EventsSettings::from_lookup(&lookup)?;
    let metrics = Metrics::from_lookup(&lookup)?;
    let sdk = with_store_timeouts(&load_sdk_config(LocalDefaults::NONE).await);
    let stores = DynamoStores::connect_bounded(&dynamo).await;
    tracing::info!(
        roster_table = %dynamo.roster_table,
        history_table = %dynamo.history_table,
        bus = %settings.bus_name,
        queue_url = %settings.queue_url,
        offline_delay_secs = settings.offline_delay.as_secs(),
        metrics_namespace = metrics.namespace(),
        "events function ready"
    );
    let function = EventsFunction {
        presence: PresenceEvents::new(
            Arc::new(stores.online()),
            Arc::new(EventBridgeSink::from_sdk_config(&sdk, settings.bus_name)),
        ),
        roster: stores.roster(),
        checks: Arc::new(SqsQueue::from_sdk_config(&sdk, settings.queue_url)),
        offline_delay: settings.offline_delay,
    };
    Ok((function, metrics))
}

/// One record or message handed back for a retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemFailure {
    pub item_identifier: String,
}

/// The partial batch response, the same shape for a stream and a queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub batch_item_failures: Vec<ItemFailure>,
}

/// The batch is neither a DynamoDB Streams nor an SQS batch.
#[derive(Debug, thiserror::Error)]
#[error("events function input: {0}")]
pub struct InputError(String);

/// What one invocation did (its EMF document).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub online: u32,
    pub offline: u32,
    pub events_put: u32,
    pub events_failed: u32,
    pub skipped: u32,
    pub item_failures: u32,
}

/// Why one record or message must be retried.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Presence(#[from] PresenceError),
    #[error(transparent)]
    Roster(#[from] RosterError),
    #[error("offline check not queued: {0}")]
    Queue(#[from] QueueError),
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.online += other.online;
        self.offline += other.offline;
        self.events_put += other.events_put;
        self.events_failed += other.events_failed;
        self.skipped += other.skipped;
        self.item_failures += other.item_failures;
    }

    fn emitted(&mut self, kind: fn(&mut Self) -> &mut u32) {
        *kind(self) += 1;
        self.events_put += 1;
    }

    fn failed(&mut self, error: &StepError) {
        if let StepError::Presence(PresenceError::Sink(error)) = error {
            let lost = match error {
                EventError::Unavailable { failed, .. } => *failed,
                EventError::Full { dropped } => *dropped,
            };
            self.events_failed += u32::try_from(lost).unwrap_or(u32::MAX);
        }
    }
}

/// A connection's `INSERT` or `REMOVE`, at `index` in its batch.
struct Step {
    index: usize,
    record: StreamRecord,
    connection: ConnectionRecord,
}

/// The record and its connection when it is an `INSERT` or `REMOVE` of one; `None` for a
/// `MODIFY`, and for a record that does not parse or holds no connection (skipped: logged,
/// counted).
fn relevant(
    raw: &Value,
    sequence: &str,
    counts: &mut Counts,
) -> Option<(StreamRecord, ConnectionRecord)> {
    let record: StreamRecord = match serde_json::from_value(raw.clone()) {
        Ok(record) => record,
        Err(error) => {
            tracing::warn!(sequence, %error, "skipped a stream record that does not parse");
            counts.skipped += 1;
            return None;
        }
    };
    let image = match record.event_name.as_str() {
        "INSERT" => record.dynamodb.new_image.as_ref(),
        "REMOVE" => record.dynamodb.old_image.as_ref(),
        _ => return None,
    };
    match stream::connection(image) {
        Ok(connection) => Some((record, connection)),
        Err(error) => {
            tracing::warn!(
                sequence,
                event = %record.event_name,
                %error,
                "skipped a stream record that is not a connection"
            );
            counts.skipped += 1;
            None
        }
    }
}

fn left(deadline: Option<Instant>) -> bool {
    deadline
        .is_none_or(|deadline| deadline.saturating_duration_since(Instant::now()) >= RECORD_BUDGET)
}

impl EventsFunction {
    /// One invocation: dispatches on the records' `eventSource` and writes one EMF
    /// document. An empty batch answers no failures; any other input is an error.
    pub async fn handle(
        &self,
        metrics: &Metrics,
        payload: &Value,
        deadline: Option<Instant>,
    ) -> Result<BatchResponse, InputError> {
        let records = payload
            .get("Records")
            .and_then(Value::as_array)
            .ok_or_else(|| InputError("no Records".into()))?;
        let Some(first) = records.first() else {
            return Ok(BatchResponse::default());
        };
        let mut counts = Counts::default();
        let (target, failures) = match first.get("eventSource").and_then(Value::as_str) {
            Some(STREAM_SOURCE) => ("stream", self.stream(records, deadline, &mut counts).await),
            Some(SQS_SOURCE) => {
                let batch: SqsEvent = serde_json::from_value(payload.clone())
                    .map_err(|e| InputError(format!("an SQS batch that does not parse: {e}")))?;
                ("offline", self.offline(&batch, deadline, &mut counts).await)
            }
            other => return Err(InputError(format!("unknown eventSource {other:?}"))),
        };
        counts.item_failures = u32::try_from(failures.len()).unwrap_or(u32::MAX);
        metrics.events_report(target, &counts, records.len());
        Ok(BatchResponse {
            batch_item_failures: failures
                .into_iter()
                .map(|item_identifier| ItemFailure { item_identifier })
                .collect(),
        })
    }

    /// A stream batch; answers the sequence numbers to hand back: from the first record
    /// that failed (or found too little time left) to the end of the batch. Each user's
    /// records run in order, [`STREAM_USER_CONCURRENCY`] users at once (a tenant's records
    /// share one partition key, so one shard: in order only, a busy tenant would wait on
    /// one call at a time). A user's records stop at its first failure; other users' later
    /// records may have run and are handed back all the same (Lambda retries from the
    /// lowest sequence number reported), which their idempotent steps allow.
    async fn stream(
        &self,
        records: &[Value],
        deadline: Option<Instant>,
        counts: &mut Counts,
    ) -> Vec<String> {
        let mut sequences = Vec::with_capacity(records.len());
        let mut users: Vec<Vec<Step>> = Vec::new();
        let mut slots: HashMap<(TenantId, UserId), usize> = HashMap::new();
        for raw in records {
            let Some(sequence) = stream::sequence_number(raw) else {
                tracing::warn!("skipped a stream record without a SequenceNumber");
                counts.skipped += 1;
                continue;
            };
            let index = sequences.len();
            sequences.push(sequence.to_string());
            let Some((record, connection)) = relevant(raw, sequence, counts) else {
                continue;
            };
            let key = (connection.tenant.clone(), connection.user.clone());
            let slot = *slots.entry(key).or_insert_with(|| {
                users.push(Vec::new());
                users.len() - 1
            });
            users[slot].push(Step {
                index,
                record,
                connection,
            });
        }
        let outcomes: Vec<(Option<usize>, Counts)> = futures::stream::iter(users)
            .map(|steps| self.user_steps(steps, deadline))
            .buffer_unordered(STREAM_USER_CONCURRENCY)
            .collect()
            .await;
        let mut first_failure: Option<usize> = None;
        for (failed, part) in outcomes {
            counts.add(&part);
            first_failure = match (first_failure, failed) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        first_failure.map_or_else(Vec::new, |index| sequences.split_off(index))
    }

    /// One user's records, in order, until one fails or time runs out: that one's index.
    async fn user_steps(
        &self,
        steps: Vec<Step>,
        deadline: Option<Instant>,
    ) -> (Option<usize>, Counts) {
        let mut counts = Counts::default();
        for step in steps {
            if !left(deadline) {
                return (Some(step.index), counts);
            }
            if let Err(error) = self.apply(&step, &mut counts).await {
                tracing::warn!(
                    sequence = %step.record.dynamodb.sequence_number,
                    event = %step.record.event_name,
                    %error,
                    "stream record failed: it and the rest of the batch are handed back"
                );
                counts.failed(&error);
                return (Some(step.index), counts);
            }
        }
        (None, counts)
    }

    /// One `INSERT` or `REMOVE` of a connection.
    async fn apply(&self, step: &Step, counts: &mut Counts) -> Result<(), StepError> {
        let (record, connection) = (&step.record, &step.connection);
        let (tenant, user, id) = (
            &connection.tenant,
            &connection.user,
            &connection.connection_id,
        );
        if record.event_name == "INSERT" {
            if !self.roster.holds(tenant, id).await? {
                tracing::info!(
                    sequence = %record.dynamodb.sequence_number,
                    %tenant,
                    %user,
                    "skipped an INSERT whose connection is gone (a replay, or a short connection)"
                );
                return Ok(());
            }
            let at = record.changed_at().unwrap_or_else(OffsetDateTime::now_utc);
            if self
                .presence
                .connected(tenant, user, id, at)
                .await?
                .is_some()
            {
                counts.emitted(|c| &mut c.online);
            }
            return Ok(());
        }
        let Some(check) = self.presence.disconnected(tenant, user, id).await? else {
            return Ok(());
        };
        let body = serde_json::to_string(&check).unwrap_or_default();
        let check_id = format!("offline:{}:{}:{}", check.tenant, check.user, check.version);
        self.checks
            .enqueue_delayed(&check_id, &body, self.offline_delay)
            .await?;
        tracing::debug!(%tenant, %user, version = check.version, ttl = record.by_ttl(), "offline check queued");
        Ok(())
    }

    /// An SQS batch of offline checks; answers the `messageId`s to hand back.
    async fn offline(
        &self,
        batch: &SqsEvent,
        deadline: Option<Instant>,
        counts: &mut Counts,
    ) -> Vec<String> {
        let mut failures = Vec::new();
        for message in &batch.records {
            let id = message.message_id.clone().unwrap_or_default();
            if !left(deadline) {
                failures.push(id);
                continue;
            }
            let body = message.body.as_deref().unwrap_or_default();
            let check: OfflineCheck = match serde_json::from_str(body) {
                Ok(check) => check,
                Err(error) => {
                    tracing::warn!(message_id = %id, %error, "skipped a message that is not an offline check");
                    counts.skipped += 1;
                    continue;
                }
            };
            match self
                .presence
                .check_offline(&check, OffsetDateTime::now_utc())
                .await
            {
                Ok(Some(_)) => counts.emitted(|c| &mut c.offline),
                Ok(None) => {}
                Err(error) => {
                    let error = StepError::from(error);
                    tracing::warn!(message_id = %id, %error, "offline check failed: handed back");
                    counts.failed(&error);
                    failures.push(id);
                }
            }
        }
        failures
    }
}
