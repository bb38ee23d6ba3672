//! Shares of shared bounds (docs/design.md: Tenants): one tenant's share of a process-wide
//! bound ([`share_of`]), the bound and share a memory store keeps ([`Bounds`]), and the state
//! behind its lock with them ([`BoundedState`]), as every memory store (devices, online users,
//! receipts, usage, the work log) holds it.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Default `TENANT_SHARE_PERCENT`: the part of every shared bound one tenant may hold.
pub const DEFAULT_SHARE_PERCENT: u8 = 25;

/// One tenant's share of a bound of `capacity`: `percent` of it, at least 1 (docs/design.md:
/// Tenants, "Shares of shared bounds").
pub fn share_of(capacity: usize, percent: u8) -> usize {
    (capacity / 100)
        .saturating_mul(usize::from(percent))
        .saturating_add(capacity % 100 * usize::from(percent) / 100)
        .clamp(1, capacity.max(1))
}

/// A shared bound and each tenant's share of it, as the memory stores keep them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Entries held at most (at least 1).
    pub capacity: usize,
    /// Entries one tenant (or `*`) may hold (1 to `capacity`).
    pub share: usize,
}

impl Bounds {
    /// At most `capacity` entries, each tenant at most `tenant_share`.
    pub fn new(capacity: usize, tenant_share: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            share: tenant_share.clamp(1, capacity),
        }
    }
}

/// A memory store's state behind its lock, with the bound it keeps and each tenant's share.
pub struct BoundedState<S> {
    bounds: Bounds,
    state: Mutex<S>,
}

impl<S: Default> BoundedState<S> {
    /// Empty state, at most `capacity` entries, each tenant at most `tenant_share`.
    pub fn new(capacity: usize, tenant_share: usize) -> Self {
        Self {
            bounds: Bounds::new(capacity, tenant_share),
            state: Mutex::new(S::default()),
        }
    }
}

impl<S> BoundedState<S> {
    /// The bound and each tenant's share.
    pub fn bounds(&self) -> Bounds {
        self.bounds
    }

    /// The state, or "memory `store` lock poisoned" when a panic left the lock poisoned.
    pub fn lock(&self, store: &str) -> Result<MutexGuard<'_, S>, String> {
        self.state
            .lock()
            .map_err(|_| format!("memory {store} lock poisoned"))
    }

    /// The state, even after a panic while it was held: for a state no panic can leave
    /// half-updated.
    pub fn lock_through_poison(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
