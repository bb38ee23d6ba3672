//! The live sockets of this process, by connection id, and the `ConnectionPoster` that
//! posts to them (what API Gateway's connection table and `PostToConnection` are in AWS).
//! Each socket is a [`LiveConnection`] (its outbox and close request: `live.rs`).
//!
//! Registration checks every cap and inserts in one critical section (the table's write
//! lock), counting live sockets per user and per tenant: the tenant's own caps from its
//! tenant settings, its share of `MAX_CONNECTIONS` (`TENANT_SHARE_PERCENT`), the
//! per-user cap and the server's cap, in that order.

mod live;
#[cfg(test)]
mod tests;

pub use live::{CloseRequest, LiveConnection, Next, Outgoing, CLOSE_SLOW_CONSUMER};

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use switchboard_core::poster::{ConnectionPoster, Frame, PostError};
use switchboard_model::close::CLOSE_TOKEN_EXPIRED;
use switchboard_model::{Claims, ConnectionId, TenantId, UserId, MAX_FRAME_BYTES};

/// Connection caps (docs/design.md: The one-machine binary).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// `MAX_CONNECTIONS`: live sockets of this process (503 at the handshake beyond).
    pub max_connections: usize,
    /// `MAX_CONNECTIONS_PER_USER`: live sockets of one tenant's user (429 beyond).
    pub max_per_user: usize,
    /// Live sockets one tenant may hold: its share of `MAX_CONNECTIONS`
    /// (`TENANT_SHARE_PERCENT`; 429 beyond, other tenants still connect).
    pub tenant_share: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 100_000,
            max_per_user: 100,
            tenant_share: 100_000,
        }
    }
}

/// One tenant's own caps, from its tenant settings (`None`: it has none of its own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantCaps {
    /// `maxConnections`: live sockets of the whole tenant.
    pub max_connections: Option<usize>,
    /// `maxConnectionsPerUser`: live sockets of one of its users, in place of
    /// `MAX_CONNECTIONS_PER_USER`.
    pub max_per_user: Option<usize>,
}

/// Why a socket was not registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error("the server holds its maximum of {0} connections")]
    ServerFull(usize),
    #[error("this user already holds the maximum of {0} connections")]
    UserFull(usize),
    #[error("this tenant already holds its maximum of {0} connections")]
    TenantFull(usize),
    #[error("this user already holds the tenant's maximum of {0} connections")]
    TenantUserFull(usize),
    #[error("this tenant already holds its share of {0} of this server's connections")]
    TenantShare(usize),
}

#[derive(Default)]
struct Table {
    live: HashMap<ConnectionId, Arc<LiveConnection>>,
    per_user: HashMap<(TenantId, UserId), usize>,
    per_tenant: HashMap<TenantId, usize>,
}

/// Counts one more (`up`) or one fewer under `key`, dropping a key counted down to zero.
fn count<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: K, up: bool) {
    if up {
        *counts.entry(key).or_default() += 1;
    } else if let Some(n) = counts.get_mut(&key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(&key);
        }
    }
}

/// The table of live sockets.
#[derive(Default)]
pub struct Registry {
    table: RwLock<Table>,
    limits: ConnectionLimits,
}

impl Registry {
    pub fn new(limits: ConnectionLimits) -> Self {
        Self {
            table: RwLock::default(),
            limits,
        }
    }

    /// Whether the server is at `MAX_CONNECTIONS` (checked before a token is verified).
    pub fn is_full(&self) -> bool {
        self.table
            .read()
            .map(|t| t.live.len() >= self.limits.max_connections)
            .unwrap_or(true)
    }

    /// Registers a socket within the caps — the tenant's own (`caps`), its share, the
    /// user's and the server's, checked and counted in one critical section — and
    /// returns what its task drains.
    pub fn register(
        &self,
        id: ConnectionId,
        claims: Claims,
        caps: TenantCaps,
        source_ip: IpAddr,
        user_agent: String,
    ) -> Result<Arc<LiveConnection>, RegisterError> {
        let mut table = self
            .table
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let tenant_held = table.per_tenant.get(&claims.tenant).copied().unwrap_or(0);
        if let Some(max) = caps.max_connections {
            if tenant_held >= max {
                return Err(RegisterError::TenantFull(max));
            }
        }
        if tenant_held >= self.limits.tenant_share {
            return Err(RegisterError::TenantShare(self.limits.tenant_share));
        }
        let user = (claims.tenant.clone(), claims.user.clone());
        let user_held = table.per_user.get(&user).copied().unwrap_or(0);
        match caps.max_per_user {
            Some(max) if user_held >= max => return Err(RegisterError::TenantUserFull(max)),
            None if user_held >= self.limits.max_per_user => {
                return Err(RegisterError::UserFull(self.limits.max_per_user))
            }
            _ => {}
        }
        if table.live.len() >= self.limits.max_connections {
            return Err(RegisterError::ServerFull(self.limits.max_connections));
        }
        count(&mut table.per_tenant, claims.tenant.clone(), true);
        count(&mut table.per_user, user, true);
        let connection = Arc::new(LiveConnection::new(claims, source_ip, user_agent));
        table.live.insert(id, connection.clone());
        Ok(connection)
    }

    pub fn unregister(&self, id: &ConnectionId) {
        let mut table = self
            .table
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(connection) = table.live.remove(id) {
            let claims = &connection.claims;
            count(&mut table.per_tenant, claims.tenant.clone(), false);
            count(
                &mut table.per_user,
                (claims.tenant.clone(), claims.user.clone()),
                false,
            );
        }
    }

    /// Live sockets per tenant (for usage sampling).
    pub fn tenant_counts(&self) -> Vec<(TenantId, usize)> {
        self.table
            .read()
            .map(|table| {
                table
                    .per_tenant
                    .iter()
                    .map(|(tenant, n)| (tenant.clone(), *n))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Asks every socket of `tenant` to close with `code` (4003 for a suspended tenant).
    /// A scan of every socket: rare, and never waiting on one.
    pub fn close_tenant(&self, tenant: &TenantId, code: u16, reason: &'static str) {
        if let Ok(table) = self.table.read() {
            for connection in table.live.values() {
                if &connection.claims.tenant == tenant {
                    connection.close(code, reason);
                }
            }
        }
    }

    pub fn get(&self, id: &ConnectionId) -> Option<Arc<LiveConnection>> {
        self.table
            .read()
            .ok()
            .and_then(|table| table.live.get(id).cloned())
    }

    /// Asks every socket to close with `code` (1001 "going away" at shutdown).
    pub fn close_all(&self, code: u16, reason: &'static str) {
        if let Ok(table) = self.table.read() {
            for connection in table.live.values() {
                connection.close(code, reason);
            }
        }
    }
}

/// The first four characters of every connection id this process makes, random per
/// process. Two `serve` processes sharing one DynamoDB roster each find the other's
/// connections there; the tag lets each tell "gone from here" (its own id, no socket:
/// remove the roster item) from "another process's connection" (leave it alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceTag(String);

impl InstanceTag {
    pub fn random() -> Self {
        use base64::Engine;
        let bytes: [u8; 3] = rand::random();
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The tag a lease names (another process's, for the sweep of its connections).
    pub fn of_lease(tag: &str) -> Self {
        Self(tag.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn owns(&self, id: &ConnectionId) -> bool {
        id.as_str().starts_with(&self.0)
    }
}

/// Posts frames to this process's sockets.
pub struct LocalPoster {
    registry: Arc<Registry>,
    instance: InstanceTag,
    foreign_skipped: prometheus_client::metrics::counter::Counter,
}

impl LocalPoster {
    pub fn new(
        registry: Arc<Registry>,
        instance: InstanceTag,
        foreign_skipped: prometheus_client::metrics::counter::Counter,
    ) -> Self {
        Self {
            registry,
            instance,
            foreign_skipped,
        }
    }
}

#[async_trait]
impl ConnectionPoster for LocalPoster {
    async fn post(&self, connection: &ConnectionId, frame: &Frame) -> Result<(), PostError> {
        if frame.len() > MAX_FRAME_BYTES {
            return Err(PostError::PayloadTooLarge);
        }
        match self.registry.get(connection) {
            Some(live) => live.send(Outgoing::Text(frame.to_ws_text())),
            None if self.instance.owns(connection) => Err(PostError::Gone),
            None => {
                // Another process's socket (a shared roster table): not ours to deliver to,
                // and never ours to remove. Each process serves only its own sockets.
                self.foreign_skipped.inc();
                tracing::debug!(connection_id = %connection, "connection of another instance skipped");
                Ok(())
            }
        }
    }

    async fn close(&self, connection: &ConnectionId) -> Result<(), PostError> {
        // Another instance's socket, or one already closed: nothing of ours to end.
        if let Some(live) = self.registry.get(connection) {
            live.close(CLOSE_TOKEN_EXPIRED, "token expired");
        }
        Ok(())
    }
}
