//! A memory roster for the Lambda tests that watches its `count` calls (`tenant_limits.rs`)
//! and, answering only the port's required verbs, stands in for a roster that cannot name
//! its tenants without a scan (`console_routes.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use switchboard_core::roster::{
    ConnectionRecord, MemoryRosterStore, PageScope, RosterError, RosterPage, RosterStore,
};
use switchboard_model::{ConnectionId, TenantId, UserId};
use tokio::sync::Barrier;

/// A memory roster that counts `count` calls and, with a gate, holds every count until
/// `gate` callers have counted (so concurrent connects all count before any writes). Like
/// DynamoDB's it cannot name its live tenants (`live_tenants` and `tally` are the port's
/// defaults: "cannot list without a scan", a paged read).
#[derive(Default)]
pub struct Roster {
    pub inner: MemoryRosterStore,
    pub counts: AtomicUsize,
    pub gate: Option<Barrier>,
}

#[async_trait]
impl RosterStore for Roster {
    async fn put(&self, record: &ConnectionRecord) -> Result<(), RosterError> {
        self.inner.put(record).await
    }
    async fn set_token_expiry(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        token_expires_at: i64,
    ) -> Result<bool, RosterError> {
        self.inner
            .set_token_expiry(tenant, connection, token_expires_at)
            .await
    }
    async fn remove(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> Result<(), RosterError> {
        self.inner.remove(tenant, connection).await
    }
    async fn list_tenant(&self, tenant: &TenantId) -> Result<Vec<ConnectionRecord>, RosterError> {
        self.inner.list_tenant(tenant).await
    }
    async fn list_users(
        &self,
        tenant: &TenantId,
        users: &[UserId],
    ) -> Result<Vec<ConnectionRecord>, RosterError> {
        self.inner.list_users(tenant, users).await
    }
    async fn list_connections(
        &self,
        tenant: &TenantId,
        connections: &[ConnectionId],
    ) -> Result<Vec<ConnectionRecord>, RosterError> {
        self.inner.list_connections(tenant, connections).await
    }
    async fn count(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        up_to: u64,
    ) -> Result<u64, RosterError> {
        self.counts.fetch_add(1, Ordering::SeqCst);
        let counted = self.inner.count(tenant, user, up_to).await;
        if let Some(gate) = &self.gate {
            gate.wait().await;
        }
        counted
    }
    async fn list_all(&self) -> Result<Vec<ConnectionRecord>, RosterError> {
        self.inner.list_all().await
    }
    async fn list_page(
        &self,
        scope: &PageScope,
        start: Option<&str>,
        limit: usize,
    ) -> Result<RosterPage, RosterError> {
        self.inner.list_page(scope, start, limit).await
    }
}
