//! The in-process [`OnlineStore`]: one map under one lock.
//!
//! (Lead's first cut: the bound and per-tenant share are added by its owner.)

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use switchboard_model::{ConnectionId, TenantId, UserId};

use super::{Added, Marked, OnlineError, OnlineStore, Removed, Reported};

/// Users the memory store holds at most by default.
pub const MAX_MEMORY_ONLINE_USERS: usize = 200_000;

#[derive(Default)]
struct UserState {
    /// Each live connection and the version its add was given.
    connections: HashMap<ConnectionId, u64>,
    version: u64,
    reported: Option<bool>,
}

impl UserState {
    fn reported(&self) -> Reported {
        match self.reported {
            None => Reported::Nothing,
            Some(true) => Reported::Online,
            Some(false) => Reported::Offline,
        }
    }
}

/// Online state in this process.
#[derive(Default)]
pub struct MemoryOnlineStore {
    users: Mutex<HashMap<(TenantId, UserId), UserState>>,
}

impl MemoryOnlineStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl OnlineStore for MemoryOnlineStore {
    async fn add(
        &self,
        tenant: &TenantId,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<Added, OnlineError> {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let state = users.entry((tenant.clone(), user.clone())).or_default();
        if let Some(version) = state.connections.get(connection) {
            return Ok(Added::Known {
                connections: state.connections.len() as u64,
                version: *version,
            });
        }
        let before = state.reported();
        let connections_before = state.connections.len() as u64;
        state.version += 1;
        state.connections.insert(connection.clone(), state.version);
        state.reported = Some(true);
        Ok(Added::New {
            connections: state.connections.len() as u64,
            version: state.version,
            connections_before,
            before,
        })
    }

    async fn remove(
        &self,
        tenant: &TenantId,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<Removed, OnlineError> {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let state = users.entry((tenant.clone(), user.clone())).or_default();
        if state.connections.remove(connection).is_none() {
            return Ok(Removed::Unknown {
                connections: state.connections.len() as u64,
                version: state.version,
                reported: state.reported(),
            });
        }
        state.version += 1;
        Ok(Removed::Removed {
            connections: state.connections.len() as u64,
            version: state.version,
        })
    }

    async fn mark_offline(
        &self,
        tenant: &TenantId,
        user: &UserId,
        version: u64,
    ) -> Result<Marked, OnlineError> {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let Some(state) = users.get_mut(&(tenant.clone(), user.clone())) else {
            return Ok(Marked::Stale);
        };
        if state.version != version || !state.connections.is_empty() {
            return Ok(Marked::Stale);
        }
        Ok(match state.reported() {
            Reported::Online => {
                state.reported = Some(false);
                Marked::Marked
            }
            Reported::Offline => Marked::Already,
            Reported::Nothing => Marked::Stale,
        })
    }
}
