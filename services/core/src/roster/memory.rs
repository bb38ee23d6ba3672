//! In-process roster: the default for `switchboard serve` and for tests.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::RwLock;

use async_trait::async_trait;
use switchboard_model::{ConnectionId, TenantId, UserId};
use time::OffsetDateTime;

use super::{ConnectionRecord, RosterError, RosterStore};

#[derive(Default)]
struct Tables {
    /// tenant → connection → record (the table's PK/SK).
    by_tenant: HashMap<TenantId, BTreeMap<ConnectionId, ConnectionRecord>>,
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

    async fn list_all(&self) -> Result<Vec<ConnectionRecord>, RosterError> {
        let tables = self.read()?;
        Ok(live(
            tables.by_tenant.values().flat_map(|m| m.values().cloned()),
        ))
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
