//! The roster: which connections are live, for which tenant and user.
//!
//! [`RosterStore`] is the port; [`MemoryRosterStore`] is the in-process adapter (the
//! DynamoDB one lives in `switchboard-aws`). [`contract`] is the behaviour suite every
//! adapter must pass.

mod memory;
mod record;

#[cfg(any(test, feature = "testkit"))]
pub mod contract;

pub use memory::MemoryRosterStore;
pub use record::{ConnectionRecord, RecordError, DEFAULT_CONNECTION_TTL_SECS};

use async_trait::async_trait;
use switchboard_model::{ConnectionId, TenantId, UserId};

/// Why a roster operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    /// The backing store failed or could not be reached.
    #[error("roster store unavailable: {0}")]
    Unavailable(String),
    /// The store held an item that is not a valid connection record.
    #[error("corrupt roster item: {0}")]
    Corrupt(String),
}

/// The roster port: the few verbs the domain needs. Lookups never return expired records
/// (an item past `expiresAt` is treated as gone even before the store's TTL removes it).
#[async_trait]
pub trait RosterStore: Send + Sync {
    /// Adds or replaces one connection.
    async fn put(&self, record: &ConnectionRecord) -> Result<(), RosterError>;
    /// Removes one connection; removing an absent one is not an error.
    async fn remove(&self, tenant: &TenantId, connection: &ConnectionId)
        -> Result<(), RosterError>;
    /// Every live connection of a tenant.
    async fn list_tenant(&self, tenant: &TenantId) -> Result<Vec<ConnectionRecord>, RosterError>;
    /// Every live connection of these users within one tenant.
    async fn list_users(
        &self,
        tenant: &TenantId,
        users: &[UserId],
    ) -> Result<Vec<ConnectionRecord>, RosterError>;
    /// These connections, when they are live and belong to the tenant.
    async fn list_connections(
        &self,
        tenant: &TenantId,
        connections: &[ConnectionId],
    ) -> Result<Vec<ConnectionRecord>, RosterError>;
    /// Every live connection of every tenant.
    async fn list_all(&self) -> Result<Vec<ConnectionRecord>, RosterError>;
}
