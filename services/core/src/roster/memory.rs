//! In-process roster: the default for `switchboard serve` and for tests.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::RwLock;

use async_trait::async_trait;
use switchboard_model::{ConnectionId, TenantId, UserId};
use time::OffsetDateTime;

use super::{ConnectionRecord, PageScope, RosterError, RosterPage, RosterStore, Tally};

#[derive(Default)]
struct Tables {
    /// tenant → connection → record (the table's PK/SK).
    by_tenant: BTreeMap<TenantId, BTreeMap<ConnectionId, ConnectionRecord>>,
    /// (tenant, user) → connections (the `byUser` index).
    by_user: HashMap<(TenantId, UserId), BTreeSet<ConnectionId>>,
}

/// A roster held in memory, indexed like the DynamoDB table.
#[derive(Default)]
pub struct MemoryRosterStore {
    tables: RwLock<Tables>,
}

impl MemoryRosterStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, Tables>, RosterError> {
        self.tables
            .read()
            .map_err(|_| RosterError::Unavailable("memory roster lock poisoned".into()))
    }

    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, Tables>, RosterError> {
        self.tables
            .write()
            .map_err(|_| RosterError::Unavailable("memory roster lock poisoned".into()))
    }
}

/// Where a memory page ends: the last (tenant, connection) it visited.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MemoryContinuation {
    t: TenantId,
    c: ConnectionId,
}

impl MemoryContinuation {
    fn decode(text: &str) -> Result<Self, RosterError> {
        serde_json::from_str(text).map_err(|e| RosterError::InvalidContinuation(e.to_string()))
    }

    fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The scan segment a connection belongs to, out of `total`: a stable hash (FNV-1a) of its
/// id, so the segments partition the roster as DynamoDB's parallel scan does.
fn segment_of(connection: &ConnectionId, total: u32) -> u32 {
    let hash = connection
        .as_str()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    u32::try_from(hash % u64::from(total.max(1))).unwrap_or(0)
}

fn live(records: impl Iterator<Item = ConnectionRecord>) -> Vec<ConnectionRecord> {
    let now = OffsetDateTime::now_utc();
    records.filter(|r| !r.is_expired_at(now)).collect()
}

#[async_trait]
impl RosterStore for MemoryRosterStore {
    async fn put(&self, record: &ConnectionRecord) -> Result<(), RosterError> {
        let mut tables = self.write()?;
        let previous = tables
            .by_tenant
            .entry(record.tenant.clone())
            .or_default()
            .insert(record.connection_id.clone(), record.clone());
        if let Some(previous) = previous {
            let key = (previous.tenant, previous.user);
            if let Some(set) = tables.by_user.get_mut(&key) {
                set.remove(&previous.connection_id);
            }
        }
        tables
            .by_user
            .entry((record.tenant.clone(), record.user.clone()))
            .or_default()
            .insert(record.connection_id.clone());
        Ok(())
    }

    async fn set_token_expiry(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        token_expires_at: i64,
    ) -> Result<bool, RosterError> {
        let mut tables = self.write()?;
        let record = tables
            .by_tenant
            .get_mut(tenant)
            .and_then(|connections| connections.get_mut(connection));
        Ok(match record {
            Some(record) => {
                record.token_expires_at = Some(token_expires_at);
                true
            }
            None => false,
        })
    }

    async fn remove(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<(), RosterError> {
        let mut tables = self.write()?;
        let Some(connections) = tables.by_tenant.get_mut(tenant) else {
            return Ok(());
        };
        let Some(record) = connections.remove(connection) else {
            return Ok(());
        };
        if connections.is_empty() {
            tables.by_tenant.remove(tenant);
        }
        let key = (record.tenant, record.user);
        if let Some(set) = tables.by_user.get_mut(&key) {
            set.remove(connection);
            if set.is_empty() {
                tables.by_user.remove(&key);
            }
        }
        Ok(())
    }

    async fn list_tenant(&self, tenant: &TenantId) -> Result<Vec<ConnectionRecord>, RosterError> {
        let tables = self.read()?;
        Ok(live(
            tables
                .by_tenant
                .get(tenant)
                .into_iter()
                .flat_map(|m| m.values().cloned()),
        ))
    }

    async fn list_users(
        &self,
        tenant: &TenantId,
        users: &[UserId],
    ) -> Result<Vec<ConnectionRecord>, RosterError> {
        let tables = self.read()?;
        let Some(connections) = tables.by_tenant.get(tenant) else {
            return Ok(Vec::new());
        };
        let unique: BTreeSet<&UserId> = users.iter().collect();
        let mut found = Vec::new();
        for user in unique {
            let key = (tenant.clone(), user.clone());
            for id in tables.by_user.get(&key).into_iter().flatten() {
                if let Some(record) = connections.get(id) {
                    found.push(record.clone());
                }
            }
        }
        Ok(live(found.into_iter()))
    }

    async fn list_connections(
        &self,
        tenant: &TenantId,
        connections: &[ConnectionId],
    ) -> Result<Vec<ConnectionRecord>, RosterError> {
        let tables = self.read()?;
        let Some(known) = tables.by_tenant.get(tenant) else {
            return Ok(Vec::new());
        };
        let unique: BTreeSet<&ConnectionId> = connections.iter().collect();
        Ok(live(
            unique.into_iter().filter_map(|id| known.get(id).cloned()),
        ))
    }

    async fn count(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        up_to: u64,
    ) -> Result<u64, RosterError> {
        let tables = self.read()?;
        let Some(connections) = tables.by_tenant.get(tenant) else {
            return Ok(0);
        };
        let now = OffsetDateTime::now_utc();
        let live = |record: &&ConnectionRecord| !record.is_expired_at(now);
        let limit = usize::try_from(up_to).unwrap_or(usize::MAX);
        let counted = match user {
            None => connections.values().filter(live).take(limit).count(),
            Some(user) => tables
                .by_user
                .get(&(tenant.clone(), user.clone()))
                .into_iter()
                .flatten()
                .filter_map(|id| connections.get(id))
                .filter(live)
                .take(limit)
                .count(),
        };
        Ok(u64::try_from(counted).unwrap_or(u64::MAX))
    }

    async fn tally(&self, tenant: &TenantId, up_to: u64) -> Result<Tally, RosterError> {
        let tables = self.read()?;
        let now = OffsetDateTime::now_utc();
        let wanted = usize::try_from(up_to).unwrap_or(usize::MAX);
        let mut live = tables
            .by_tenant
            .get(tenant)
            .into_iter()
            .flat_map(|m| m.values())
            .filter(|r| !r.is_expired_at(now));
        let counted = live.by_ref().take(wanted).map(|r| &r.user);
        let users: Vec<&UserId> = counted.collect();
        let more = live.next().is_some();
        Ok(Tally::of(users.into_iter(), more))
    }

    async fn live_tenants(&self, limit: usize) -> Result<Option<Vec<TenantId>>, RosterError> {
        let tables = self.read()?;
        let now = OffsetDateTime::now_utc();
        Ok(Some(
            tables
                .by_tenant
                .iter()
                .filter(|(_, connections)| connections.values().any(|r| !r.is_expired_at(now)))
                .map(|(tenant, _)| tenant.clone())
                .take(limit)
                .collect(),
        ))
    }

    async fn list_all(&self) -> Result<Vec<ConnectionRecord>, RosterError> {
        let tables = self.read()?;
        Ok(live(
            tables.by_tenant.values().flat_map(|m| m.values().cloned()),
        ))
    }

    async fn list_page(
        &self,
        scope: &PageScope,
        start: Option<&str>,
        limit: usize,
    ) -> Result<RosterPage, RosterError> {
        scope.validate()?;
        let start = start.map(MemoryContinuation::decode).transpose()?;
        let limit = limit.max(1);
        let tables = self.read()?;
        let now = OffsetDateTime::now_utc();
        // Walk (tenant, connection) in key order from just after `start`.
        let tenants: Box<
            dyn Iterator<Item = (&TenantId, &BTreeMap<ConnectionId, ConnectionRecord>)>,
        > = match (scope, &start) {
            (PageScope::Tenant(tenant), Some(from)) if &from.t != tenant => {
                return Err(RosterError::InvalidContinuation(
                    "continuation of another tenant".into(),
                ))
            }
            (PageScope::Tenant(tenant), _) => {
                Box::new(tables.by_tenant.get_key_value(tenant).into_iter())
            }
            (PageScope::Segment { .. }, Some(from)) => Box::new(
                tables
                    .by_tenant
                    .range((Bound::Included(&from.t), Bound::Unbounded)),
            ),
            (PageScope::Segment { .. }, None) => Box::new(tables.by_tenant.iter()),
        };
        let mut page = RosterPage::default();
        let mut last = None;
        for (tenant, connections) in tenants {
            let after = match &start {
                Some(from) if &from.t == tenant => Bound::Excluded(&from.c),
                _ => Bound::Unbounded,
            };
            for (id, record) in connections.range((after, Bound::Unbounded)) {
                if let PageScope::Segment { segment, total } = scope {
                    if segment_of(id, *total) != *segment {
                        continue;
                    }
                }
                if page.records.len() == limit {
                    page.next = last.map(|(t, c): (&TenantId, &ConnectionId)| {
                        MemoryContinuation {
                            t: t.clone(),
                            c: c.clone(),
                        }
                        .encode()
                    });
                    return Ok(page);
                }
                last = Some((tenant, id));
                if !record.is_expired_at(now) {
                    page.records.push(record.clone());
                }
            }
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_passes_the_roster_contract() {
        super::super::contract::run_all(|| async { MemoryRosterStore::new() }).await;
    }
}
