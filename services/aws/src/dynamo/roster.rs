//! `DynamoRosterStore`: the roster port on one DynamoDB table (docs/design.md: Roster).
//!
//! - Tenant lookups `Query` the table (`PK = T#<tenant>`); user lookups `Query` the
//!   `byUser` index once per user, concurrently (at most [`USER_QUERY_CONCURRENCY`] in
//!   flight); connection lookups use `BatchGetItem` (100 keys a request, unprocessed keys
//!   retried with backoff). Only [`RosterStore::list_all`] scans, as a parallel scan.
//! - Every query and scan follows `LastEvaluatedKey` to the end.
//! - No `FilterExpression` in lookups: expired items are dropped client-side, so for
//!   targeted lookups `ScannedCount == Count` and [`LookupStats`] shows exactly what was
//!   read. The one exception is a count ([`RosterStore::count`], `count.rs`): `Select=COUNT`
//!   returns no items, so it filters `expiresAt > now` in DynamoDB.

mod count;
mod pages;

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_dynamodb::Client;
use futures::{stream, StreamExt, TryStreamExt};
use switchboard_core::roster::{
    ConnectionRecord, PageScope, RosterError, RosterPage, RosterStore, Tally,
};
use switchboard_model::{ConnectionId, TenantId, UserId};

use super::{
    applied, backoff, primary_key, put_items, record_to_item, tenant_key, unavailable, user_key,
    Table, BATCH_ATTEMPTS, BATCH_WRITE_LIMIT, BY_USER_INDEX, GSI1PK, PK, TOKEN_EXPIRES_AT,
};
use pages::{keep, readable, DynamoContinuation, PageSet};

/// How many `byUser` queries one `list_users` call runs at once.
pub const USER_QUERY_CONCURRENCY: usize = 16;
/// Keys per `BatchGetItem` request (the service's limit).
pub const BATCH_GET_LIMIT: usize = 100;

/// What a lookup cost: requests made, items DynamoDB read (`ScannedCount`; for
/// `BatchGetItem`, items returned), items it matched (`Count`), records handed back after
/// dropping expired ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LookupStats {
    pub requests: u64,
    pub scanned_count: u64,
    pub count: u64,
    pub returned: u64,
    /// Items that were not valid connection records: logged and left out.
    pub skipped: u64,
}

impl LookupStats {
    fn add(&mut self, other: LookupStats) {
        self.requests += other.requests;
        self.scanned_count += other.scanned_count;
        self.count += other.count;
        self.returned += other.returned;
        self.skipped += other.skipped;
    }
}

/// The roster on DynamoDB. Cheap to clone (the SDK client is an `Arc` inside).
#[derive(Debug, Clone)]
pub struct DynamoRosterStore {
    table: Table,
    scan_segments: usize,
}

impl DynamoRosterStore {
    /// A store on the table `name`, scanning with `scan_segments` parallel segments (at
    /// least 1; [`DEFAULT_SCAN_SEGMENTS`](super::DEFAULT_SCAN_SEGMENTS) is the usual choice).
    pub fn new(client: Client, name: impl Into<String>, scan_segments: usize) -> Self {
        Self::on(Table::new(client, name), scan_segments)
    }

    /// A store on `table`, scanning with `scan_segments` parallel segments (at least 1).
    pub fn on(table: Table, scan_segments: usize) -> Self {
        Self {
            table,
            scan_segments: scan_segments.max(1),
        }
    }

    pub fn table_name(&self) -> &str {
        self.table.name()
    }

    pub fn scan_segments(&self) -> usize {
        self.scan_segments
    }

    /// Every live connection of a tenant: one `Query` on the table, all pages.
    pub async fn list_tenant_with_stats(
        &self,
        tenant: &TenantId,
    ) -> Result<(Vec<ConnectionRecord>, LookupStats), RosterError> {
        let (records, mut stats) = self.query_all(None, PK, tenant_key(tenant)).await?;
        let records = keep(records, |r| &r.tenant == tenant);
        stats.returned = records.len() as u64;
        Ok((records, stats))
    }

    /// Every live connection of these users within the tenant: one `byUser` query per
    /// distinct user, [`USER_QUERY_CONCURRENCY`] at a time.
    pub async fn list_users_with_stats(
        &self,
        tenant: &TenantId,
        users: &[UserId],
    ) -> Result<(Vec<ConnectionRecord>, LookupStats), RosterError> {
        let keys: BTreeSet<String> = users.iter().map(|u| user_key(tenant, u)).collect();
        let pages: Vec<(Vec<ConnectionRecord>, LookupStats)> = stream::iter(keys)
            .map(|key| self.query_all(Some(BY_USER_INDEX), GSI1PK, key))
            .buffer_unordered(USER_QUERY_CONCURRENCY)
            .try_collect()
            .await?;
        let mut stats = LookupStats::default();
        let mut records = Vec::new();
        for (found, page_stats) in pages {
            stats.add(page_stats);
            records.extend(found);
        }
        let wanted: BTreeSet<&UserId> = users.iter().collect();
        let records = keep(records, |r| &r.tenant == tenant && wanted.contains(&r.user));
        stats.returned = records.len() as u64;
        Ok((records, stats))
    }

    /// Whether the roster holds an item of this connection, expired or not: one strongly
    /// consistent `GetItem`, key only. The events function asks it for a stream `INSERT`
    /// (the write is committed before its stream record exists, so a consistent read
    /// always sees it, unless the connection ended since); lookups that deliver read
    /// eventually consistent batches instead.
    pub async fn holds(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<bool, RosterError> {
        let output = self
            .table
            .get_item()
            .set_key(Some(primary_key(tenant, connection)))
            .projection_expression("#pk")
            .expression_attribute_names("#pk", PK)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("GetItem", e))?;
        Ok(output.item.is_some())
    }

    /// These connections of the tenant: `BatchGetItem` by primary key, 100 keys a request.
    /// A connection id of another tenant is simply not found (its key names this tenant).
    pub async fn list_connections_with_stats(
        &self,
        tenant: &TenantId,
        connections: &[ConnectionId],
    ) -> Result<(Vec<ConnectionRecord>, LookupStats), RosterError> {
        let unique: Vec<&ConnectionId> = connections
            .iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let chunks: Vec<(Vec<ConnectionRecord>, LookupStats)> = stream::iter(
            unique
                .chunks(BATCH_GET_LIMIT)
                .map(|chunk| {
                    chunk
                        .iter()
                        .map(|c| primary_key(tenant, c))
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>(),
        )
        .map(|keys| self.batch_get(keys))
        .buffer_unordered(4)
        .try_collect()
        .await?;
        let mut stats = LookupStats::default();
        let mut records = Vec::new();
        for (found, chunk_stats) in chunks {
            stats.add(chunk_stats);
            records.extend(found);
        }
        let records = keep(records, |r| &r.tenant == tenant);
        stats.returned = records.len() as u64;
        Ok((records, stats))
    }

    /// Every live connection of every tenant: a parallel `Scan` of `scan_segments`
    /// segments, each followed to its end.
    pub async fn list_all_with_stats(
        &self,
    ) -> Result<(Vec<ConnectionRecord>, LookupStats), RosterError> {
        let total = i32::try_from(self.scan_segments).unwrap_or(i32::MAX);
        let segments = futures::future::try_join_all(
            (0..total).map(|segment| self.scan_segment(segment, total)),
        )
        .await?;
        let mut stats = LookupStats::default();
        let mut records = Vec::new();
        for (found, segment_stats) in segments {
            stats.add(segment_stats);
            records.extend(found);
        }
        let records = keep(records, |_| true);
        stats.returned = records.len() as u64;
        Ok((records, stats))
    }

    /// One page of a tenant (`Query` on the table) or of a scan segment (`Scan` with
    /// `Segment`/`TotalSegments`): one request with `Limit = limit`, started at the
    /// continuation's key. No filter, so `ScannedCount == Count`.
    pub async fn list_page_with_stats(
        &self,
        scope: &PageScope,
        start: Option<&str>,
        limit: usize,
    ) -> Result<(RosterPage, LookupStats), RosterError> {
        scope.validate()?;
        let start_key = start
            .map(|text| DynamoContinuation::start_key(text, scope))
            .transpose()?;
        let limit = i32::try_from(limit.max(1)).unwrap_or(i32::MAX);
        let (scanned, count, items, last_key) = match scope {
            PageScope::Tenant(tenant) => {
                let output = self
                    .table
                    .client()
                    .query()
                    .table_name(self.table.name())
                    .key_condition_expression("#k = :v")
                    .expression_attribute_names("#k", PK)
                    .expression_attribute_values(":v", AttributeValue::S(tenant_key(tenant)))
                    .set_exclusive_start_key(start_key)
                    .limit(limit)
                    .send()
                    .await
                    .map_err(|e| unavailable("Query", e))?;
                (
                    output.scanned_count,
                    output.count,
                    output.items,
                    output.last_evaluated_key,
                )
            }
            PageScope::Segment { segment, total } => {
                let output = self
                    .table
                    .scan()
                    .segment(i32::try_from(*segment).unwrap_or(i32::MAX))
                    .total_segments(i32::try_from(*total).unwrap_or(i32::MAX))
                    .set_exclusive_start_key(start_key)
                    .limit(limit)
                    .send()
                    .await
                    .map_err(|e| unavailable("Scan", e))?;
                (
                    output.scanned_count,
                    output.count,
                    output.items,
                    output.last_evaluated_key,
                )
            }
        };
        let mut page_set = PageSet::default();
        page_set.add(scanned, count, items)?;
        let (records, mut stats) = page_set.finish();
        let records = match scope {
            PageScope::Tenant(tenant) => keep(records, |r| &r.tenant == tenant),
            PageScope::Segment { .. } => keep(records, |_| true),
        };
        stats.returned = records.len() as u64;
        let next = match last_key {
            Some(key) if !key.is_empty() => Some(DynamoContinuation::from_last_key(&key)?),
            _ => None,
        };
        Ok((
            RosterPage {
                records,
                next,
                skipped: usize::try_from(stats.skipped).unwrap_or(usize::MAX),
            },
            stats,
        ))
    }

    /// Writes many records with `BatchWriteItem` (25 a request, `concurrency` requests in
    /// flight, unprocessed items retried with backoff). For loading benchmarks and fixtures.
    pub async fn put_batch(
        &self,
        records: &[ConnectionRecord],
        concurrency: usize,
    ) -> Result<(), RosterError> {
        stream::iter(records.chunks(BATCH_WRITE_LIMIT))
            .map(|chunk| self.batch_write(chunk))
            .buffer_unordered(concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn batch_write(&self, chunk: &[ConnectionRecord]) -> Result<(), RosterError> {
        let items = chunk.iter().map(record_to_item).collect();
        put_items(self.table.client(), self.table.name(), items).await
    }

    /// One `Query` with `key_name = :v` on the table or an index, every page (the SDK's
    /// paginator follows `LastEvaluatedKey` to the end).
    async fn query_all(
        &self,
        index: Option<&str>,
        key_name: &str,
        key_value: String,
    ) -> Result<(Vec<ConnectionRecord>, LookupStats), RosterError> {
        let mut pages = self
            .table
            .client()
            .query()
            .table_name(self.table.name())
            .set_index_name(index.map(str::to_string))
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", key_name)
            .expression_attribute_values(":v", AttributeValue::S(key_value))
            .into_paginator()
            .send();
        let mut page_set = PageSet::default();
        while let Some(page) = pages.next().await {
            let output = page.map_err(|e| unavailable("Query", e))?;
            page_set.add(output.scanned_count, output.count, output.items)?;
        }
        Ok(page_set.finish())
    }

    /// One segment of a parallel `Scan`, every page.
    async fn scan_segment(
        &self,
        segment: i32,
        total: i32,
    ) -> Result<(Vec<ConnectionRecord>, LookupStats), RosterError> {
        let mut pages = self
            .table
            .scan()
            .segment(segment)
            .total_segments(total)
            .into_paginator()
            .send();
        let mut page_set = PageSet::default();
        while let Some(page) = pages.next().await {
            let output = page.map_err(|e| unavailable("Scan", e))?;
            page_set.add(output.scanned_count, output.count, output.items)?;
        }
        Ok(page_set.finish())
    }

    async fn batch_get(
        &self,
        keys: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<(Vec<ConnectionRecord>, LookupStats), RosterError> {
        let mut stats = LookupStats::default();
        let mut records = Vec::new();
        let mut pending = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .build()
                .map_err(|e| RosterError::Unavailable(format!("BatchGetItem request: {e}")))?,
        );
        let mut attempt = 0;
        while let Some(request) = pending.take() {
            if request.keys().is_empty() {
                break;
            }
            if attempt >= BATCH_ATTEMPTS {
                return Err(RosterError::Unavailable(format!(
                    "BatchGetItem: {} keys still unprocessed after {BATCH_ATTEMPTS} attempts",
                    request.keys().len()
                )));
            }
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            attempt += 1;
            let output = self
                .table
                .client()
                .batch_get_item()
                .request_items(self.table.name(), request)
                .send()
                .await
                .map_err(|e| unavailable("BatchGetItem", e))?;
            stats.requests += 1;
            let items = output
                .responses
                .and_then(|mut m| m.remove(self.table.name()))
                .unwrap_or_default();
            stats.scanned_count += items.len() as u64;
            stats.count += items.len() as u64;
            for item in items {
                match readable(&item) {
                    Some(record) => records.push(record),
                    None => stats.skipped += 1,
                }
            }
            pending = output
                .unprocessed_keys
                .and_then(|mut m| m.remove(self.table.name()));
        }
        Ok((records, stats))
    }
}

#[async_trait]
impl RosterStore for DynamoRosterStore {
    async fn put(&self, record: &ConnectionRecord) -> Result<(), RosterError> {
        self.table
            .put_item()
            .set_item(Some(record_to_item(record)))
            .send()
            .await
            .map_err(|e| unavailable("PutItem", e))?;
        Ok(())
    }

    async fn set_token_expiry(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        token_expires_at: i64,
    ) -> Result<bool, RosterError> {
        // The condition keeps UpdateItem from recreating a connection `$disconnect` (or a
        // 410) already deleted: an item of keys and `tokenExpiresAt` alone.
        let result = self
            .table
            .update_item()
            .set_key(Some(primary_key(tenant, connection)))
            .update_expression("SET #t = :t")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#t", TOKEN_EXPIRES_AT)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":t", AttributeValue::N(token_expires_at.to_string()))
            .send()
            .await;
        applied(result).map_err(|error| unavailable("UpdateItem", error))
    }

    async fn remove(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<(), RosterError> {
        // DeleteItem on an absent key succeeds: removal is idempotent by construction.
        self.table
            .delete_item()
            .set_key(Some(primary_key(tenant, connection)))
            .send()
            .await
            .map_err(|e| unavailable("DeleteItem", e))?;
        Ok(())
    }

    async fn list_tenant(&self, tenant: &TenantId) -> Result<Vec<ConnectionRecord>, RosterError> {
        Ok(self.list_tenant_with_stats(tenant).await?.0)
    }

    async fn list_users(
        &self,
        tenant: &TenantId,
        users: &[UserId],
    ) -> Result<Vec<ConnectionRecord>, RosterError> {
        Ok(self.list_users_with_stats(tenant, users).await?.0)
    }

    async fn list_connections(
        &self,
        tenant: &TenantId,
        connections: &[ConnectionId],
    ) -> Result<Vec<ConnectionRecord>, RosterError> {
        Ok(self
            .list_connections_with_stats(tenant, connections)
            .await?
            .0)
    }

    async fn count(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        up_to: u64,
    ) -> Result<u64, RosterError> {
        Ok(self.count_with_stats(tenant, user, up_to).await?.0)
    }

    async fn tally(&self, tenant: &TenantId, up_to: u64) -> Result<Tally, RosterError> {
        Ok(self.tally_with_stats(tenant, up_to).await?.0)
    }

    // `live_tenants`: the default `None`. Tenants are partition keys: naming them is a scan.

    async fn list_all(&self) -> Result<Vec<ConnectionRecord>, RosterError> {
        Ok(self.list_all_with_stats().await?.0)
    }

    async fn list_page(
        &self,
        scope: &PageScope,
        start: Option<&str>,
        limit: usize,
    ) -> Result<RosterPage, RosterError> {
        Ok(self.list_page_with_stats(scope, start, limit).await?.0)
    }
}
