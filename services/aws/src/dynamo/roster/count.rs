//! Counting a tenant's (or one user's) live connections for the connection caps: a `Query`
//! with `Select=COUNT` on the tenant's partition (strongly consistent) or on the user's
//! `byUser` partition (a global index: eventually consistent), stopping once `up_to`
//! items are counted.
//!
//! The one filter expression of the roster (docs/design.md: Roster): a count returns no
//! items to drop in code, so `expiresAt > now` is filtered by DynamoDB. Items the filter
//! drops are still read (`ScannedCount`, and billed): [`LookupStats`] shows both.
//!
//! The tally of presence (a tenant's live connections and distinct users) reads the same
//! partition projecting only `user` and `expiresAt`, and drops expired items in code.

use aws_sdk_dynamodb::types::{AttributeValue, Select};
use switchboard_core::roster::{RosterError, Tally};
use switchboard_model::{TenantId, UserId};
use time::OffsetDateTime;

use super::super::item::USER;
use super::super::{tenant_key, unavailable, user_key, BY_USER_INDEX, GSI1PK, PK, TTL_ATTRIBUTE};
use super::{DynamoRosterStore, LookupStats};

/// Requests one count may make, whatever the pages hold (each page reads at least one
/// item, so a count ends anyway; this bounds a partition full of expired items).
pub const MAX_COUNT_REQUESTS: u64 = 1_000;

impl DynamoRosterStore {
    /// `min(live connections, up_to)` of the tenant, or of `user` within it, and what the
    /// count read. Each request asks for at most the items still to count (`Limit`), so a
    /// partition far over `up_to` is read only as far as `up_to` (plus expired items met on
    /// the way) in pages of at most 1 MB.
    pub async fn count_with_stats(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        up_to: u64,
    ) -> Result<(u64, LookupStats), RosterError> {
        let (index, key_name, key_value) = match user {
            None => (None, PK, tenant_key(tenant)),
            Some(user) => (Some(BY_USER_INDEX), GSI1PK, user_key(tenant, user)),
        };
        let mut stats = LookupStats::default();
        let mut counted = 0_u64;
        let mut start = None;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        while counted < up_to {
            if stats.requests >= MAX_COUNT_REQUESTS {
                return Err(RosterError::Unavailable(format!(
                    "count of {key_value}: still paging after {MAX_COUNT_REQUESTS} requests"
                )));
            }
            let limit = i32::try_from(up_to - counted).unwrap_or(i32::MAX);
            let output = self
                .table
                .client()
                .query()
                .table_name(self.table.name())
                .set_index_name(index.map(str::to_string))
                // A strongly consistent count of the table (an index cannot be).
                .consistent_read(index.is_none())
                .select(Select::Count)
                .key_condition_expression("#k = :v")
                .filter_expression("#e > :now")
                .expression_attribute_names("#k", key_name)
                .expression_attribute_names("#e", TTL_ATTRIBUTE)
                .expression_attribute_values(":v", AttributeValue::S(key_value.clone()))
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .set_exclusive_start_key(start)
                .limit(limit)
                .send()
                .await
                .map_err(|e| unavailable("Query", e))?;
            stats.requests += 1;
            let scanned = u64::try_from(output.scanned_count).unwrap_or(0);
            let count = u64::try_from(output.count).unwrap_or(0);
            stats.scanned_count += scanned;
            stats.count += count;
            counted = counted.saturating_add(count).min(up_to);
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        stats.returned = counted;
        Ok((counted, stats))
    }
}

impl DynamoRosterStore {
    /// The tenant's live connections and distinct users, counting at most `up_to` (see
    /// [`RosterStore::tally`](switchboard_core::roster::RosterStore::tally)), and what it
    /// read: a strongly consistent `Query` of the tenant's partition projecting only `user`
    /// and `expiresAt`, expired items dropped in code (no filter: `ScannedCount == Count`),
    /// each request asking for no more items than are still wanted (`up_to + 1`, the one
    /// past the bound saying whether the tally is complete).
    pub async fn tally_with_stats(
        &self,
        tenant: &TenantId,
        up_to: u64,
    ) -> Result<(Tally, LookupStats), RosterError> {
        let wanted = usize::try_from(up_to).unwrap_or(usize::MAX);
        let mut stats = LookupStats::default();
        let mut users: Vec<UserId> = Vec::new();
        let mut start = None;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        while users.len() <= wanted {
            if stats.requests >= MAX_COUNT_REQUESTS {
                return Err(RosterError::Unavailable(format!(
                    "tally of {tenant}: still paging after {MAX_COUNT_REQUESTS} requests"
                )));
            }
            let room = wanted.saturating_add(1).saturating_sub(users.len());
            let output = self
                .table
                .client()
                .query()
                .table_name(self.table.name())
                .consistent_read(true)
                .key_condition_expression("#k = :v")
                .projection_expression("#u, #e")
                .expression_attribute_names("#k", PK)
                .expression_attribute_names("#u", USER)
                .expression_attribute_names("#e", TTL_ATTRIBUTE)
                .expression_attribute_values(":v", AttributeValue::S(tenant_key(tenant)))
                .set_exclusive_start_key(start)
                .limit(i32::try_from(room).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(|e| unavailable("Query", e))?;
            stats.requests += 1;
            stats.scanned_count += u64::try_from(output.scanned_count).unwrap_or(0);
            stats.count += u64::try_from(output.count).unwrap_or(0);
            for item in output.items.unwrap_or_default() {
                let user = item
                    .get(USER)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|s| UserId::parse(s.as_str()).ok());
                let expires_at = item
                    .get(TTL_ATTRIBUTE)
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse::<i64>().ok());
                match (user, expires_at) {
                    (Some(user), Some(at)) if at > now => users.push(user),
                    (Some(_), Some(_)) => {}
                    _ => stats.skipped += 1,
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        let more = users.len() > wanted;
        let tally = Tally::of(users.iter().take(wanted), more);
        stats.returned = tally.connections;
        Ok((tally, stats))
    }
}
