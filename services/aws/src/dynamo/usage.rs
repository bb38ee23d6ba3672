//! `DynamoUsageStore`: the usage port (`switchboard_core::usage`) on the history table
//! (`HISTORY_TABLE`), beside history streams (`S#…`), receipts (`R#…`) and the work log
//! (`W#…`), which never share a key with it:
//!
//! - a minute bucket: `PK` = `U#<tenant|*>`, `SK` = `M#<minute start, RFC 3339 UTC>` (so a
//!   tenant's minutes sort by time), a number attribute per count (`publishesAccepted`,
//!   `publishesRefused`, `matched`, `delivered`, `gone`, `pushed`, `bytesSent`,
//!   `connectionMinutes`, `peakConnections`; absent = 0), and `expiresAt` (the TTL
//!   attribute: the minute plus `USAGE_RETENTION_DAYS`);
//! - the live-connection counter of a tenant (AWS `$connect`/`$disconnect`): `PK` =
//!   `U#<tenant>`, `SK` = `live`, attribute `live` (no TTL).
//!
//! `add` is one `UpdateItem` with `ADD` for the sums (atomic counters), plus — when it
//! carries a peak — a second `UpdateItem` `SET peakConnections = :p` conditional on the
//! stored peak being absent or lower (an update expression has no `max`; a failed condition
//! is the larger peak already there). `minutes` is one strongly consistent `Query` on the
//! `PK` with `SK BETWEEN` the first and last minute, every page; buckets whose `expiresAt`
//! has passed are dropped client-side (TTL deletes lazily). `add_live` is one `UpdateItem`
//! `ADD live :delta` answering the new value.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use switchboard_core::usage::{
    minute_range, storage_key, Bucket, Counts, Unit, UsageError, UsageStore, PEAK,
};
use switchboard_model::TenantId;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{applied, unavailable, Table, PK, SK, TTL_ATTRIBUTE};

/// The sort key of a tenant's live-connection counter.
pub const LIVE_SK: &str = "live";
const LIVE: &str = "live";
const MINUTE_PREFIX: &str = "M#";

/// Usage on DynamoDB (the history table). Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoUsageStore {
    table: Table,
    retention: Duration,
}

impl DynamoUsageStore {
    /// Buckets on the table `name`, each kept for `retention` (`USAGE_RETENTION_DAYS`).
    pub fn new(client: Client, name: impl Into<String>, retention: Duration) -> Self {
        Self::on(Table::new(client, name), retention)
    }

    /// Buckets on `table`, each kept for `retention`.
    pub fn on(table: Table, retention: Duration) -> Self {
        Self { table, retention }
    }

    pub fn table_name(&self) -> &str {
        self.table.name()
    }

    fn key(pk: String, sk: String) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (PK.to_string(), AttributeValue::S(pk)),
            (SK.to_string(), AttributeValue::S(sk)),
        ])
    }
}

fn error<E, R>(operation: &str, e: SdkError<E, R>) -> UsageError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    UsageError::Unavailable(unavailable(operation, e).to_string())
}

fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// `M#<minute start>`.
fn minute_key(start: i64) -> Result<String, UsageError> {
    OffsetDateTime::from_unix_timestamp(start)
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .map(|text| format!("{MINUTE_PREFIX}{text}"))
        .ok_or_else(|| UsageError::Unavailable(format!("minute {start} out of range")))
}

/// The bucket an item holds, or `None` (logged) when it is not one.
fn bucket(item: &HashMap<String, AttributeValue>) -> Option<Bucket> {
    let start = item
        .get(SK)
        .and_then(|v| v.as_s().ok())
        .and_then(|sk| sk.strip_prefix(MINUTE_PREFIX))
        .and_then(|text| OffsetDateTime::parse(text, &Rfc3339).ok());
    let Some(start) = start else {
        tracing::warn!("skipped a usage item that is not a minute bucket");
        return None;
    };
    let mut counts = Counts::default();
    let names = counts.sums().map(|(name, _)| name);
    for name in names.into_iter().chain([PEAK]) {
        let value = item
            .get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        counts.set(name, value);
    }
    Some(Bucket { start, counts })
}

#[async_trait]
impl UsageStore for DynamoUsageStore {
    async fn add(
        &self,
        tenant: Option<&TenantId>,
        at: OffsetDateTime,
        counts: &Counts,
    ) -> Result<(), UsageError> {
        let minute = Unit::Minute.floor(at).unix_timestamp();
        let retention = i64::try_from(self.retention.as_secs()).unwrap_or(i64::MAX);
        let expires_at = number(minute.saturating_add(retention));
        let key = Self::key(storage_key(tenant), minute_key(minute)?);
        let sums: Vec<(&str, u64)> = counts
            .sums()
            .into_iter()
            .filter(|(_, value)| *value > 0)
            .collect();
        if !sums.is_empty() {
            let mut request = self
                .table
                .update_item()
                .set_key(Some(key.clone()))
                .expression_attribute_names("#exp", TTL_ATTRIBUTE)
                .expression_attribute_values(":exp", expires_at.clone());
            let mut adds = Vec::new();
            for (i, (name, value)) in sums.iter().enumerate() {
                adds.push(format!("#c{i} :c{i}"));
                request = request
                    .expression_attribute_names(format!("#c{i}"), *name)
                    .expression_attribute_values(format!(":c{i}"), number(value));
            }
            request
                .update_expression(format!(
                    "SET #exp = if_not_exists(#exp, :exp) ADD {}",
                    adds.join(", ")
                ))
                .send()
                .await
                .map_err(|e| error("UpdateItem", e))?;
        }
        if counts.peak_connections > 0 {
            let raised = self
                .table
                .update_item()
                .set_key(Some(key))
                .update_expression("SET #peak = :peak, #exp = if_not_exists(#exp, :exp)")
                .condition_expression("attribute_not_exists(#peak) OR #peak < :peak")
                .expression_attribute_names("#peak", PEAK)
                .expression_attribute_names("#exp", TTL_ATTRIBUTE)
                .expression_attribute_values(":peak", number(counts.peak_connections))
                .expression_attribute_values(":exp", expires_at)
                .send()
                .await;
            // Not applied: the stored peak is already as high.
            applied(raised).map_err(|e| error("UpdateItem", e))?;
        }
        Ok(())
    }

    async fn minutes(
        &self,
        tenant: Option<&TenantId>,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<Bucket>, UsageError> {
        let Some((first, last)) = minute_range(from, to) else {
            return Ok(Vec::new());
        };
        let mut pages = self
            .table
            .query(storage_key(tenant))
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :first AND :last")
            .consistent_read(true)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":first", AttributeValue::S(minute_key(first)?))
            .expression_attribute_values(":last", AttributeValue::S(minute_key(last)?))
            .into_paginator()
            .send();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut buckets = Vec::new();
        while let Some(page) = pages.next().await {
            let output = page.map_err(|e| error("Query", e))?;
            for item in output.items() {
                let expired = item
                    .get(TTL_ATTRIBUTE)
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse::<i64>().ok())
                    .is_some_and(|at| at <= now);
                if expired {
                    continue;
                }
                if let Some(bucket) = bucket(item).filter(|b| !b.counts.is_empty()) {
                    buckets.push(bucket);
                }
            }
        }
        Ok(buckets)
    }

    async fn add_live(&self, tenant: &TenantId, delta: i64) -> Result<i64, UsageError> {
        let output = self
            .table
            .update_item()
            .set_key(Some(Self::key(
                storage_key(Some(tenant)),
                LIVE_SK.to_string(),
            )))
            .update_expression("ADD #live :delta")
            .expression_attribute_names("#live", LIVE)
            .expression_attribute_values(":delta", number(delta))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| error("UpdateItem", e))?;
        output
            .attributes()
            .and_then(|a| a.get(LIVE))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| UsageError::Unavailable("UpdateItem returned no live count".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minute_keys_sort_by_time_and_read_back() {
        let a = minute_key(1_700_000_040).unwrap();
        let b = minute_key(1_700_000_100).unwrap();
        assert_eq!(a, "M#2023-11-14T22:14:00Z");
        assert!(a < b);
        let item = HashMap::from([
            (SK.to_string(), AttributeValue::S(a)),
            ("delivered".to_string(), number(3)),
            (PEAK.to_string(), number(2)),
        ]);
        let read = bucket(&item).unwrap();
        assert_eq!(read.start.unix_timestamp(), 1_700_000_040);
        assert_eq!(read.counts.delivered, 3);
        assert_eq!(read.counts.peak_connections, 2);
        assert_eq!(read.counts.matched, 0);
    }
}
