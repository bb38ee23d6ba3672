//! The DynamoDB adapters, and what they share: the roster on its own table (`roster.rs`:
//! [`DynamoRosterStore`], with the key layout and item mapping in `item.rs` and counts in
//! `count.rs`), and on the history table the history, receipts, usage, work log, Web
//! Push devices, online state and `serve` leases (`history.rs`, `receipts.rs`, `usage.rs`,
//! `worklog.rs`, `devices.rs`, `online.rs`, `leases.rs`); all of them built from one client
//! and the two tables in `stores.rs` ([`DynamoStores`]); the [`Table`] each adapter holds,
//! and making tables, in `table.rs`. Shared here: batch writes with retried unprocessed
//! items, their backoff, whether a conditional write was applied, the mapping of SDK
//! failures, and page continuations (`continuation.rs`).

mod continuation;
mod devices;
mod history;
mod item;
mod leases;
mod online;
mod receipts;
mod roster;
mod stores;
mod table;
mod usage;
mod worklog;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use aws_smithy_types::error::display::DisplayErrorContext;
use switchboard_core::publisher::RetryPolicy;
use switchboard_core::roster::RosterError;

pub use devices::{DynamoDeviceStore, DEVICE_PREFIX};
pub use history::DynamoHistoryStore;
pub use item::{
    connection_key, item_to_record, parse_connection_key, parse_tenant_key, parse_user_key,
    primary_key, record_to_item, tenant_key, user_key, BY_USER_INDEX, GSI1PK, GSI1SK, PK, SK,
    TOKEN_EXPIRES_AT, TTL_ATTRIBUTE,
};
pub use leases::{DynamoLeaseStore, LEASE_PK};
pub use online::{DynamoOnlineStore, ONLINE_PREFIX};
pub use receipts::{DynamoReceiptStore, RECEIPT_SK};
pub use roster::{DynamoRosterStore, LookupStats, BATCH_GET_LIMIT, USER_QUERY_CONCURRENCY};
pub use stores::{CreateTables, CreateTablesError, DynamoStores};
pub use table::{create_history_table, create_table, delete_table, Table};
pub use usage::{DynamoUsageStore, LIVE_SK};
pub use worklog::{DynamoWorkLog, CLAIM_RETENTION};

/// Default number of parallel scan segments for [`RosterStore::list_all`] (`SCAN_SEGMENTS`).
pub use switchboard_core::config::DEFAULT_SCAN_SEGMENTS;
/// Default table name (`ROSTER_TABLE`).
pub const DEFAULT_TABLE_NAME: &str = "SocketRoster";
/// Default history table name (`HISTORY_TABLE`).
pub const DEFAULT_HISTORY_TABLE: &str = "SocketHistory";
/// Items per `BatchWriteItem` request (the service's limit).
pub const BATCH_WRITE_LIMIT: usize = 25;
/// Attempts at a batch request whose unprocessed keys/items keep coming back.
pub(crate) const BATCH_ATTEMPTS: u32 = 8;

/// Writes up to [`BATCH_WRITE_LIMIT`] items with one `BatchWriteItem`, retrying the
/// unprocessed ones with backoff (at most [`BATCH_ATTEMPTS`] requests).
pub(crate) async fn put_items(
    client: &Client,
    table: &str,
    items: Vec<HashMap<String, AttributeValue>>,
) -> Result<(), RosterError> {
    let mut requests = items
        .into_iter()
        .map(|item| {
            PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map(|put| WriteRequest::builder().put_request(put).build())
                .map_err(|e| RosterError::Unavailable(format!("BatchWriteItem request: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for attempt in 0..BATCH_ATTEMPTS {
        if requests.is_empty() {
            return Ok(());
        }
        if attempt > 0 {
            tokio::time::sleep(backoff(attempt)).await;
        }
        let output = client
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .map_err(|e| unavailable("BatchWriteItem", e))?;
        requests = output
            .unprocessed_items
            .and_then(|mut m| m.remove(table))
            .unwrap_or_default();
    }
    if requests.is_empty() {
        Ok(())
    } else {
        Err(RosterError::Unavailable(format!(
            "BatchWriteItem: {} items still unprocessed after {BATCH_ATTEMPTS} attempts",
            requests.len()
        )))
    }
}

/// Backoff between retries of unprocessed batch items: the publisher's policy (exponential
/// with full jitter), from 25 ms, ceilings capped at 2 s.
const BATCH_BACKOFF: RetryPolicy = RetryPolicy {
    max_attempts: BATCH_ATTEMPTS,
    base_delay: Duration::from_millis(25),
    max_delay: Duration::from_secs(2),
};

/// The wait before retry `attempt` (1-based) of a batch call.
pub(crate) fn backoff(attempt: u32) -> Duration {
    BATCH_BACKOFF.delay(attempt)
}

/// Logs an item a lookup skipped because it is not a valid `what`: its key and why. One odd
/// item written by another tool never fails the lookup for the others.
pub(crate) fn log_skipped(
    item: &HashMap<String, AttributeValue>,
    what: &str,
    error: &dyn std::fmt::Display,
) {
    let key = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    tracing::warn!(
        pk = key(PK),
        sk = key(SK),
        %error,
        "skipped an item that is not a valid {what}"
    );
}

/// A write whose `ConditionExpression` can fail.
pub(crate) trait ConditionalWrite {
    /// The write was refused because its condition did not hold.
    fn condition_failed(&self) -> bool;
}

impl ConditionalWrite for DeleteItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionalWrite for UpdateItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

/// Whether a conditional write was applied: `Ok(false)` when its condition did not hold,
/// any other failure as it came.
pub(crate) fn applied<O, E: ConditionalWrite, R>(
    sent: Result<O, SdkError<E, R>>,
) -> Result<bool, SdkError<E, R>> {
    match sent {
        Ok(_) => Ok(true),
        Err(SdkError::ServiceError(failure)) if failure.err().condition_failed() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Any SDK failure means the roster could not be read or written: the caller retries the
/// whole message (the publisher) or fails the request. The message keeps the SDK's
/// error chain for the logs.
pub(crate) fn unavailable<E, R>(operation: &str, error: SdkError<E, R>) -> RosterError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    RosterError::Unavailable(format!("{operation}: {}", DisplayErrorContext(&error)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 0..20 {
            let d = backoff(attempt);
            assert!(d <= Duration::from_secs(2), "{attempt}: {d:?}");
        }
        assert!(backoff(1) <= Duration::from_millis(25));
        // Full jitter: the sixth retry's ceiling is 800 ms; over many draws some exceed 400.
        assert!((0..200).any(|_| backoff(6) > Duration::from_millis(400)));
    }
}
