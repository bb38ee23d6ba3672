//! In-process devices (`serve` without DynamoDB, and tests), ordered like the DynamoDB
//! items (tenant, then user, then device id). Bounded: at most `capacity` devices, each
//! tenant at most its share; a `put` that would grow past either answers
//! [`DeviceError::Unavailable`] ("… full") after dropping expired devices, rather than
//! pushing out another user's devices. Each device is itself bounded (an endpoint of at
//! most 2,048 bytes, two keys, ids of at most 128 characters: under 3.5 KB), so the store
//! holds at most about `capacity` × 3.5 KB. Expired devices are never answered and leave at
//! the next write of their user, or when a bound is reached.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use switchboard_model::{TenantId, UserId};
use time::OffsetDateTime;

use super::{oldest_beyond, Device, DeviceError, DeviceId, DevicePage, DeviceStore};
use crate::tenants::{BoundedState, Bounds};

/// Default capacity of [`MemoryDeviceStore`] for `serve` (about 175 MB at the worst, a
/// few tens of MB with real push services' endpoints).
pub const MAX_MEMORY_DEVICES: usize = 50_000;

/// The least time between two sweeps of every device when the store is full (a store that
/// stays full does not scan itself on every refused `put`).
const FULL_SWEEP_EVERY: Duration = Duration::from_secs(1);

/// One user's devices by id.
type UserDevices = BTreeMap<DeviceId, Device>;

/// One tenant's devices by user, and how many it holds.
#[derive(Default)]
struct TenantDevices {
    users: BTreeMap<UserId, UserDevices>,
    held: usize,
}

#[derive(Default)]
struct State {
    tenants: HashMap<TenantId, TenantDevices>,
    total: usize,
    last_full_sweep: Option<Instant>,
}

impl State {
    fn held(&self, tenant: &TenantId) -> usize {
        self.tenants.get(tenant).map_or(0, |t| t.held)
    }

    fn user(&self, tenant: &TenantId, user: &UserId) -> Option<&UserDevices> {
        self.tenants.get(tenant)?.users.get(user)
    }

    /// Inserts or replaces a device.
    fn insert(&mut self, device: Device) {
        let entry = self.tenants.entry(device.tenant.clone()).or_default();
        let devices = entry.users.entry(device.user.clone()).or_default();
        if devices.insert(device.id.clone(), device).is_none() {
            entry.held += 1;
            self.total += 1;
        }
    }

    /// Removes the user's devices for which `drop` holds; answers them.
    fn remove_where(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        drop: impl Fn(&Device) -> bool,
    ) -> Vec<Device> {
        let Some(entry) = self.tenants.get_mut(tenant) else {
            return Vec::new();
        };
        let Some(devices) = entry.users.get_mut(user) else {
            return Vec::new();
        };
        let ids: Vec<DeviceId> = devices
            .values()
            .filter(|d| drop(d))
            .map(|d| d.id.clone())
            .collect();
        let removed: Vec<Device> = ids.iter().filter_map(|id| devices.remove(id)).collect();
        if devices.is_empty() {
            entry.users.remove(user);
        }
        entry.held = entry.held.saturating_sub(removed.len());
        self.total = self.total.saturating_sub(removed.len());
        if entry.held == 0 {
            self.tenants.remove(tenant);
        }
        removed
    }

    fn sweep_tenant(&mut self, tenant: &TenantId, now: i64) {
        let users: Vec<UserId> = self
            .tenants
            .get(tenant)
            .map(|t| t.users.keys().cloned().collect())
            .unwrap_or_default();
        for user in users {
            self.remove_where(tenant, &user, |d| is_expired(d, now));
        }
    }

    fn sweep_all(&mut self, now: i64) {
        let clock = Instant::now();
        if self
            .last_full_sweep
            .is_some_and(|last| clock.duration_since(last) < FULL_SWEEP_EVERY)
        {
            return;
        }
        self.last_full_sweep = Some(clock);
        let tenants: Vec<TenantId> = self.tenants.keys().cloned().collect();
        for tenant in tenants {
            self.sweep_tenant(&tenant, now);
        }
    }

    /// Room for one more device of `tenant`, expired devices dropped first when at a bound.
    fn make_room(
        &mut self,
        tenant: &TenantId,
        bounds: Bounds,
        now: i64,
    ) -> Result<(), DeviceError> {
        if self.held(tenant) >= bounds.share {
            self.sweep_tenant(tenant, now);
            if self.held(tenant) >= bounds.share {
                return Err(DeviceError::Unavailable(format!(
                    "device store full: tenant {tenant} holds its share of {} devices",
                    bounds.share
                )));
            }
        }
        if self.total >= bounds.capacity {
            self.sweep_all(now);
            if self.total >= bounds.capacity {
                return Err(DeviceError::Unavailable(format!(
                    "device store full: {} devices",
                    bounds.capacity
                )));
            }
        }
        Ok(())
    }
}

/// Devices in this process's memory.
pub struct MemoryDeviceStore {
    state: BoundedState<State>,
}

impl MemoryDeviceStore {
    /// A store of at most `capacity` devices, any tenant up to all of them.
    pub fn new(capacity: usize) -> Self {
        Self::shared(capacity, capacity)
    }

    /// A store of at most `capacity` devices, each tenant at most `tenant_share`.
    pub fn shared(capacity: usize, tenant_share: usize) -> Self {
        Self {
            state: BoundedState::new(capacity, tenant_share),
        }
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, DeviceError> {
        self.state.lock("device").map_err(DeviceError::Unavailable)
    }

    /// Devices held, live or not yet dropped (for tests of the bound).
    pub fn len(&self) -> usize {
        self.state().map_or(0, |s| s.total)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn is_expired(device: &Device, now: i64) -> bool {
    device.expires_at <= now
}

/// Where a memory page ends: the last (user, device) it visited, and whose.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MemoryContinuation {
    t: TenantId,
    u: UserId,
    d: DeviceId,
}

impl MemoryContinuation {
    fn decode(text: &str, tenant: &TenantId) -> Result<Self, DeviceError> {
        let continuation: Self = serde_json::from_str(text)
            .map_err(|e| DeviceError::InvalidContinuation(e.to_string()))?;
        if &continuation.t != tenant {
            return Err(DeviceError::InvalidContinuation(
                "continuation of another tenant".into(),
            ));
        }
        Ok(continuation)
    }

    fn encode(device: &Device) -> Option<String> {
        serde_json::to_string(&Self {
            t: device.tenant.clone(),
            u: device.user.clone(),
            d: device.id.clone(),
        })
        .ok()
    }
}

#[async_trait]
impl DeviceStore for MemoryDeviceStore {
    async fn put(
        &self,
        device: &Device,
        max_per_user: usize,
    ) -> Result<Vec<DeviceId>, DeviceError> {
        let now = now_secs();
        let max_per_user = max_per_user.max(1);
        let mut state = self.state()?;
        state.remove_where(&device.tenant, &device.user, |d| is_expired(d, now));
        let (known, others) =
            state
                .user(&device.tenant, &device.user)
                .map_or((false, 0), |devices| {
                    let known = devices.contains_key(&device.id);
                    (known, devices.len() - usize::from(known))
                });
        // A new device grows the store unless the user's oldest makes way for it.
        if !known && others < max_per_user {
            state.make_room(&device.tenant, self.state.bounds(), now)?;
        }
        state.insert(device.clone());
        let others = state
            .user(&device.tenant, &device.user)
            .into_iter()
            .flat_map(|devices| devices.values())
            .filter(|d| d.id != device.id);
        let evicted = oldest_beyond(others, max_per_user);
        state.remove_where(&device.tenant, &device.user, |d| evicted.contains(&d.id));
        Ok(evicted)
    }

    async fn remove(
        &self,
        tenant: &TenantId,
        user: &UserId,
        id: &DeviceId,
    ) -> Result<bool, DeviceError> {
        let now = now_secs();
        let mut state = self.state()?;
        let removed = state.remove_where(tenant, user, |d| &d.id == id);
        Ok(removed.iter().any(|d| !is_expired(d, now)))
    }

    async fn list_users(
        &self,
        tenant: &TenantId,
        users: &[UserId],
    ) -> Result<Vec<Device>, DeviceError> {
        let now = now_secs();
        let unique: BTreeSet<&UserId> = users.iter().collect();
        let state = self.state()?;
        Ok(unique
            .into_iter()
            .filter_map(|user| state.user(tenant, user))
            .flat_map(|devices| devices.values())
            .filter(|d| !is_expired(d, now))
            .cloned()
            .collect())
    }

    async fn list_page(
        &self,
        tenant: &TenantId,
        start: Option<&str>,
        limit: usize,
    ) -> Result<DevicePage, DeviceError> {
        let now = now_secs();
        let limit = limit.max(1);
        let after = start
            .map(|text| MemoryContinuation::decode(text, tenant))
            .transpose()?;
        let state = self.state()?;
        let Some(entry) = state.tenants.get(tenant) else {
            return Ok(DevicePage::default());
        };
        let users = match &after {
            Some(after) => entry
                .users
                .range((Bound::Included(&after.u), Bound::Unbounded)),
            None => entry.users.range::<UserId, _>(..),
        };
        // Each user's live devices after the continuation, in order.
        let mut groups = users.map(|(user, devices)| {
            let from = match &after {
                Some(after) if &after.u == user => Bound::Excluded(&after.d),
                _ => Bound::Unbounded,
            };
            devices
                .range((from, Bound::Unbounded))
                .map(|(_, d)| d)
                .filter(|d| !is_expired(d, now))
                .cloned()
                .collect::<Vec<Device>>()
        });
        let mut devices: Vec<Device> = Vec::new();
        let mut more = false;
        for group in groups.by_ref() {
            if group.is_empty() {
                continue;
            }
            if devices.len() + group.len() <= limit {
                devices.extend(group);
            } else {
                // A user is split over pages only when alone on a page it does not fit.
                if devices.is_empty() {
                    devices.extend(group.into_iter().take(limit));
                }
                more = true;
                break;
            }
        }
        let next = if more {
            devices.last().and_then(MemoryContinuation::encode)
        } else {
            None
        };
        Ok(DevicePage {
            devices,
            next,
            skipped: 0,
        })
    }
}

/// The ids of the user's oldest devices (by registration, then id) beyond `max`, never
/// `keep` (the device just registered).
#[cfg(test)]
mod tests;
