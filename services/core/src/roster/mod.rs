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
pub use record::{token_expired, ConnectionRecord, RecordError, DEFAULT_CONNECTION_TTL_SECS};

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
    /// A page continuation this store did not issue (or for another scope).
    #[error("invalid page continuation: {0}")]
    InvalidContinuation(String),
}

/// What one paged read walks: a tenant's connections (a `Query`) or one segment of every
/// tenant's connections (a parallel `Scan` segment).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum PageScope {
    Tenant(TenantId),
    /// Segment `segment` of `total` (`0 <= segment < total`).
    Segment {
        segment: u32,
        total: u32,
    },
}

impl PageScope {
    /// Checks the segment numbers of a scope read from outside (a work item).
    pub fn validate(&self) -> Result<(), RosterError> {
        match self {
            PageScope::Segment { segment, total } if *total == 0 || segment >= total => Err(
                RosterError::InvalidContinuation(format!("segment {segment} of {total}")),
            ),
            _ => Ok(()),
        }
    }
}

/// One page of a paged read: at most `limit` live records, and where the next page starts
/// (`None` once the scope is exhausted). `skipped` counts items that could not be read as
/// connection records (logged by the adapter, never failing the page).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RosterPage {
    pub records: Vec<ConnectionRecord>,
    /// Opaque: pass it back unchanged to read the next page.
    pub next: Option<String>,
    pub skipped: usize,
}

/// A tenant's live connections and distinct users, as [`RosterStore::tally`] counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub connections: u64,
    pub users: u64,
    /// `false` when the tenant holds more live connections than were counted: both
    /// numbers are then lower bounds.
    pub complete: bool,
}

impl Tally {
    /// The tally of `users` (one per live connection, in any order) read so far, `more`
    /// saying whether live connections were left uncounted.
    pub fn of<'a>(users: impl Iterator<Item = &'a UserId>, more: bool) -> Self {
        let mut distinct = std::collections::HashSet::new();
        let mut connections = 0_u64;
        for user in users {
            connections += 1;
            distinct.insert(user);
        }
        Self {
            connections,
            users: u64::try_from(distinct.len()).unwrap_or(u64::MAX),
            complete: !more,
        }
    }
}

/// The roster port: the few verbs the domain needs. Lookups never return expired records
/// (an item past `expiresAt` is treated as gone even before the store's TTL removes it).
#[async_trait]
pub trait RosterStore: Send + Sync {
    /// Adds or replaces one connection.
    async fn put(&self, record: &ConnectionRecord) -> Result<(), RosterError>;
    /// Sets the `tokenExpiresAt` of one existing connection (a `refresh`). Never creates an
    /// item: `Ok(false)` when the connection is not in the roster (it ended meanwhile).
    async fn set_token_expiry(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        token_expires_at: i64,
    ) -> Result<bool, RosterError>;
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
    /// How many live connections the tenant holds, or `user` holds within it, counting no
    /// further than `up_to`: `min(live, up_to)`. A tenant's connection cap asks with
    /// `up_to` = the cap, so a tenant of any size costs a bounded read (on DynamoDB a `Query`
    /// with `Select=COUNT` stops once `up_to` items are counted).
    async fn count(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        up_to: u64,
    ) -> Result<u64, RosterError>;
    /// The tenant's live connections and distinct users, counting at most `up_to`
    /// connections: `complete` is `false` when it holds more (the counts are then lower
    /// bounds). A bounded read of the tenant's partition, never a scan. The default follows
    /// [`RosterStore::list_page`]; adapters answer from an index (memory) or a `Query`
    /// projecting only what a tally needs (DynamoDB).
    async fn tally(&self, tenant: &TenantId, up_to: u64) -> Result<Tally, RosterError> {
        let scope = PageScope::Tenant(tenant.clone());
        let wanted = usize::try_from(up_to).unwrap_or(usize::MAX);
        let mut users: Vec<UserId> = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let room = wanted.saturating_add(1).saturating_sub(users.len());
            let page = self
                .list_page(&scope, start.as_deref(), room.min(1_000))
                .await?;
            users.extend(page.records.into_iter().map(|r| r.user));
            match page.next {
                Some(next) if users.len() <= wanted => start = Some(next),
                _ => break,
            }
        }
        let more = users.len() > wanted;
        Ok(Tally::of(users.iter().take(wanted), more))
    }
    /// The tenants holding a live connection, in name order, at most `limit` — when the
    /// store can list them without a scan. `Ok(None)`: it cannot (DynamoDB: tenants are
    /// partition keys, listing them is a table scan), the default.
    async fn live_tenants(&self, limit: usize) -> Result<Option<Vec<TenantId>>, RosterError> {
        let _ = limit;
        Ok(None)
    }
    /// Every live connection of every tenant.
    async fn list_all(&self) -> Result<Vec<ConnectionRecord>, RosterError>;
    /// One page of `scope`, starting after `start` (a previous page's `next`; `None` for
    /// the first page), at most `limit` records (`limit >= 1`). Following `next` until it is
    /// `None` visits every live record of the scope exactly once; the segments of one
    /// `total` partition every tenant's records.
    async fn list_page(
        &self,
        scope: &PageScope,
        start: Option<&str>,
        limit: usize,
    ) -> Result<RosterPage, RosterError>;
}
