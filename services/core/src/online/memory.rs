//! The in-process [`OnlineStore`] (`serve` without DynamoDB, and tests): every user under
//! one lock, so each change is atomic. Every operation is O(1) or O(log n).
//!
//! Bounded: at most `capacity` users, each tenant at most its share ([`Bounds`]). A user
//! with a live connection, or with none but still reported online (its offline check is
//! pending), is never evicted: its versions and its pending `user.offline` depend on it.
//! When a new user does not fit because the store (or its tenant's share) holds only such
//! users, `add` answers [`OnlineError::Full`] (the caller logs and counts it; the
//! connection itself is not refused). Users reported offline with no connection may be
//! evicted, the oldest reported first: the tenant's own when it is at its share, else those
//! of the tenant holding the most users among the tenants that have one to evict.
//!
//! Versions stay strictly increasing per user across an eviction: each tenant keeps a
//! floor, the highest version of a user it evicted, and a user created again starts above
//! it. When a tenant holds no user any more its floor joins one floor for the whole store
//! (so tenants gone entirely take no memory), which every user created after starts above.
//! An evicted user answers as one never seen: a `remove` is `Unknown` at version 0,
//! reported `Nothing`, and a repeated offline check is `Stale` (its event is not emitted
//! again; the first was).
//!
//! Memory: a user takes a few hundred bytes (two ids of at most 128 characters, its
//! entries in the maps) plus about 150 bytes per live connection; live connections are
//! bounded by the process's connection limit, users by `capacity`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::MutexGuard;

use async_trait::async_trait;
use switchboard_model::{ConnectionId, TenantId, UserId};

use super::{Added, Marked, OnlineError, OnlineStore, Removed, Reported};
use crate::tenants::{BoundedState, Bounds};

/// Users the memory store holds at most by default.
pub const MAX_MEMORY_ONLINE_USERS: usize = 200_000;

struct UserState {
    /// Each live connection and the version its add was given.
    connections: HashMap<ConnectionId, u64>,
    version: u64,
    reported: Reported,
    /// Its key in its tenant's eviction order while it may be evicted (reported offline,
    /// no connection).
    idle: Option<u64>,
}

impl UserState {
    /// A user seen for the first time, or again after an eviction: above `floor`.
    fn new(floor: u64) -> Self {
        Self {
            connections: HashMap::new(),
            version: floor,
            reported: Reported::Nothing,
            idle: None,
        }
    }

    fn connections(&self) -> u64 {
        self.connections.len() as u64
    }
}

#[derive(Default)]
struct TenantState {
    users: HashMap<UserId, UserState>,
    /// The users that may be evicted, oldest reported offline first.
    idle: BTreeMap<u64, UserId>,
    /// The highest version of a user of this tenant ever evicted.
    floor: u64,
}

#[derive(Default)]
struct State {
    tenants: HashMap<TenantId, TenantState>,
    /// Users held, in every tenant.
    held: usize,
    /// `(users held, tenant)` of every tenant with a user to evict: the last holds the most.
    evictable: BTreeSet<(usize, TenantId)>,
    /// The highest version evicted from a tenant that holds no user any more.
    floor: u64,
    /// The last key given in an eviction order.
    stamp: u64,
}

impl State {
    fn user(&self, tenant: &TenantId, user: &UserId) -> Option<&UserState> {
        self.tenants.get(tenant)?.users.get(user)
    }

    fn held_by(&self, tenant: &TenantId) -> usize {
        self.tenants.get(tenant).map_or(0, |t| t.users.len())
    }

    /// Applies `change` to `tenant`'s state (empty if it holds nothing) and keeps the
    /// counts, the evictable tenants and the floors true afterwards.
    fn change<R>(&mut self, tenant: &TenantId, change: impl FnOnce(&mut TenantState) -> R) -> R {
        let mut entry = self.tenants.remove(tenant).unwrap_or_default();
        let before = entry.users.len();
        if !entry.idle.is_empty() {
            self.evictable.remove(&(before, tenant.clone()));
        }
        let answer = change(&mut entry);
        let after = entry.users.len();
        self.held = (self.held + after).saturating_sub(before);
        if after == 0 {
            self.floor = self.floor.max(entry.floor);
        } else {
            if !entry.idle.is_empty() {
                self.evictable.insert((after, tenant.clone()));
            }
            self.tenants.insert(tenant.clone(), entry);
        }
        answer
    }

    /// Evicts `tenant`'s user reported offline the longest ago, if it has one.
    fn evict_oldest(&mut self, tenant: &TenantId) -> bool {
        self.change(tenant, |t| {
            let Some((_, user)) = t.idle.pop_first() else {
                return false;
            };
            if let Some(state) = t.users.remove(&user) {
                t.floor = t.floor.max(state.version);
            }
            true
        })
    }

    /// Room for one more user of `tenant`, evicting a user reported offline if needed.
    fn make_room(&mut self, tenant: &TenantId, bounds: Bounds) -> Result<(), OnlineError> {
        if self.held_by(tenant) >= bounds.share && !self.evict_oldest(tenant) {
            return Err(OnlineError::Full(format!(
                "tenant {tenant} holds its share of {} users, all online or pending offline",
                bounds.share
            )));
        }
        if self.held >= bounds.capacity {
            let largest = self.evictable.last().map(|(_, t)| t.clone());
            if !largest.is_some_and(|largest| self.evict_oldest(&largest)) {
                return Err(OnlineError::Full(format!(
                    "{} users, all online or pending offline",
                    bounds.capacity
                )));
            }
        }
        Ok(())
    }
}

/// Online state in this process's memory.
pub struct MemoryOnlineStore {
    state: BoundedState<State>,
}

impl MemoryOnlineStore {
    /// A store of at most `capacity` users, any tenant up to all of them.
    pub fn new(capacity: usize) -> Self {
        Self::shared(capacity, capacity)
    }

    /// A store of at most `capacity` users, each tenant at most `tenant_share`.
    pub fn shared(capacity: usize, tenant_share: usize) -> Self {
        Self {
            state: BoundedState::new(capacity, tenant_share),
        }
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, OnlineError> {
        self.state.lock("online").map_err(OnlineError::Unavailable)
    }

    /// Users held (for tests of the bound).
    pub fn len(&self) -> usize {
        self.state().map_or(0, |s| s.held)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        let mut state = self.state()?;
        match state.user(tenant, user) {
            Some(known) => {
                if let Some(version) = known.connections.get(connection) {
                    return Ok(Added::Known {
                        connections: known.connections(),
                        version: *version,
                    });
                }
            }
            None => state.make_room(tenant, self.state.bounds())?,
        }
        let floor = state.floor;
        Ok(state.change(tenant, |t| {
            let start = t.floor.max(floor);
            let entry = t
                .users
                .entry(user.clone())
                .or_insert_with(|| UserState::new(start));
            if let Some(stamp) = entry.idle.take() {
                t.idle.remove(&stamp);
            }
            let before = entry.reported;
            let connections_before = entry.connections();
            entry.version += 1;
            entry.connections.insert(connection.clone(), entry.version);
            entry.reported = Reported::Online;
            Added::New {
                connections: entry.connections(),
                version: entry.version,
                connections_before,
                before,
            }
        }))
    }

    async fn remove(
        &self,
        tenant: &TenantId,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<Removed, OnlineError> {
        let mut state = self.state()?;
        let Some(known) = state.user(tenant, user) else {
            return Ok(Removed::Unknown {
                connections: 0,
                version: 0,
                reported: Reported::Nothing,
            });
        };
        if !known.connections.contains_key(connection) {
            return Ok(Removed::Unknown {
                connections: known.connections(),
                version: known.version,
                reported: known.reported,
            });
        }
        Ok(state.change(tenant, |t| match t.users.get_mut(user) {
            Some(entry) => {
                entry.connections.remove(connection);
                entry.version += 1;
                Removed::Removed {
                    connections: entry.connections(),
                    version: entry.version,
                }
            }
            // Not reached: the user was found under the same lock.
            None => Removed::Unknown {
                connections: 0,
                version: 0,
                reported: Reported::Nothing,
            },
        }))
    }

    async fn mark_offline(
        &self,
        tenant: &TenantId,
        user: &UserId,
        version: u64,
    ) -> Result<Marked, OnlineError> {
        let mut state = self.state()?;
        let Some(known) = state.user(tenant, user) else {
            return Ok(Marked::Stale);
        };
        if known.version != version || !known.connections.is_empty() {
            return Ok(Marked::Stale);
        }
        match known.reported {
            Reported::Offline => return Ok(Marked::Already),
            Reported::Nothing => return Ok(Marked::Stale),
            Reported::Online => {}
        }
        state.stamp += 1;
        let stamp = state.stamp;
        state.change(tenant, |t| {
            if let Some(entry) = t.users.get_mut(user) {
                entry.reported = Reported::Offline;
                entry.idle = Some(stamp);
                t.idle.insert(stamp, user.clone());
            }
        });
        Ok(Marked::Marked)
    }
}

#[cfg(test)]
mod tests;
