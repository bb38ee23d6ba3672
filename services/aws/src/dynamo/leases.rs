//! `DynamoLeaseStore`: the lease port (`switchboard_core::leases`) on the history table
//! (`HISTORY_TABLE`), beside the other kinds of items there, which never share its key. One
//! item per `serve` process:
//!
//! - `PK` = `L#serve`, `SK` = `<instance tag>` (the prefix of the process's connection
//!   ids);
//! - `until` (epoch milliseconds: when the lease ends), `expiresAt` (epoch seconds, the
//!   table's TTL attribute: a day after `until`, so a lease nobody claimed, its process and
//!   every other gone, leaves the table).
//!
//! - `renew` is one unconditional `PutItem`.
//! - `expired` is one strongly consistent `Query` of `L#serve` (every page, at most
//!   [`MAX_QUERY_PAGES`]), filtered in code: a few processes share a roster, so the
//!   partition is small.
//! - `claim` is one `DeleteItem` conditional on `until = :seen`: true only for the caller
//!   whose delete happened; a lease renewed since (or claimed by another) fails the
//!   condition.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use switchboard_core::leases::{Lease, LeaseError, LeaseStore};

use super::table::table_adapter;
use super::{applied, log_skipped, unavailable, PK, SK, TTL_ATTRIBUTE};

/// The partition key of every lease item.
pub const LEASE_PK: &str = "L#serve";

const UNTIL: &str = "until";

/// How long past its end a lease item stays before TTL removes it, in seconds (a day).
const RETENTION_SECS: i64 = 24 * 60 * 60;

/// Pages one `expired` call reads at most (1 MB each: far more leases than processes).
const MAX_QUERY_PAGES: usize = 16;

type Item = HashMap<String, AttributeValue>;

table_adapter! {
    /// Leases on DynamoDB (the history table). Cheap to clone.
    DynamoLeaseStore
}

fn key(tag: &str) -> Item {
    HashMap::from([
        (PK.to_string(), AttributeValue::S(LEASE_PK.into())),
        (SK.to_string(), AttributeValue::S(tag.into())),
    ])
}

fn number(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn error<E, R>(operation: &str, e: SdkError<E, R>) -> LeaseError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    LeaseError::Unavailable(unavailable(operation, e).to_string())
}

/// The lease an item holds, or `None` when it is not one.
fn lease(item: &Item) -> Option<Lease> {
    Some(Lease {
        tag: item.get(SK)?.as_s().ok()?.clone(),
        until_ms: item.get(UNTIL)?.as_n().ok()?.parse().ok()?,
    })
}

#[async_trait]
impl LeaseStore for DynamoLeaseStore {
    async fn renew(&self, tag: &str, until_ms: i64) -> Result<(), LeaseError> {
        // Epoch seconds of `until`, rounded up, plus the retention.
        let expires_at = until_ms
            .div_euclid(1_000)
            .saturating_add(i64::from(until_ms.rem_euclid(1_000) > 0))
            .saturating_add(RETENTION_SECS);
        let mut item = key(tag);
        item.insert(UNTIL.into(), number(until_ms));
        item.insert(TTL_ATTRIBUTE.into(), number(expires_at));
        self.table
            .put_item()
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| error("PutItem", e))?;
        Ok(())
    }

    async fn expired(&self, now_ms: i64) -> Result<Vec<Lease>, LeaseError> {
        let mut expired = Vec::new();
        let mut start: Option<Item> = None;
        for _ in 0..MAX_QUERY_PAGES {
            let output = self
                .table
                .query(LEASE_PK)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| error("Query", e))?;
            for item in output.items() {
                match lease(item) {
                    Some(lease) if lease.until_ms <= now_ms => expired.push(lease),
                    Some(_) => {}
                    None => log_skipped(item, "lease", &"no tag or until"),
                }
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(expired);
            }
        }
        tracing::warn!(
            pages = MAX_QUERY_PAGES,
            "lease query stopped before its end; the rest waits for the next sweep"
        );
        Ok(expired)
    }

    async fn claim(&self, lease: &Lease) -> Result<bool, LeaseError> {
        let deleted = self
            .table
            .delete_item()
            .set_key(Some(key(&lease.tag)))
            .condition_expression("#until = :seen")
            .expression_attribute_names("#until", UNTIL)
            .expression_attribute_values(":seen", number(lease.until_ms))
            .send()
            .await;
        applied(deleted).map_err(|e| error("DeleteItem", e))
    }
}
