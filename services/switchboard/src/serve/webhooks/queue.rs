//! The bound of pending deliveries: every event waiting or in flight, all endpoints
//! together, holds a [`Slot`] of the [`Queue`] — one entry and its bytes — from the moment
//! it is taken until it is delivered or dropped (the slot is released on drop, so no path
//! can leak one). At most `WEBHOOK_QUEUE_CAPACITY` entries and [`MAX_QUEUE_BYTES`]; each
//! tenant (`*` for a broadcast's events) at most `TENANT_SHARE_PERCENT` of both. A full
//! queue refuses at once: the caller drops the event, never waits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus_client::metrics::gauge::Gauge;
use switchboard_core::tenants::share_of;
use switchboard_model::TenantId;

/// Bytes of pending deliveries held at most (bodies and ids, plus [`ENTRY_OVERHEAD`] each).
pub const MAX_QUEUE_BYTES: usize = 64 * 1024 * 1024;
/// What one entry costs besides its body and id (its bookkeeping).
pub const ENTRY_OVERHEAD: usize = 128;

/// Why an event was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The queue holds its capacity of entries or bytes.
    Queue,
    /// The event's tenant (or `*`) holds its share of entries or bytes.
    Share,
}

impl Full {
    pub fn as_str(self) -> &'static str {
        match self {
            Full::Queue => "queue full",
            Full::Share => "tenant share full",
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Held {
    entries: usize,
    bytes: usize,
}

#[derive(Default)]
struct State {
    total: Held,
    /// Per tenant, `None` = `*`; a tenant holding nothing has no entry.
    tenants: HashMap<Option<TenantId>, Held>,
}

/// The bound, shared by the sink (which takes slots) and the endpoints (which drop them).
pub struct Queue {
    state: Mutex<State>,
    capacity: Held,
    share: Held,
    /// `switchboard_webhook_queue_events`.
    gauge: Gauge,
}

impl Queue {
    /// At most `capacity` entries and `max_bytes`; each tenant `share_percent` of both.
    pub fn new(capacity: usize, max_bytes: usize, share_percent: u8, gauge: Gauge) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::default(),
            capacity: Held {
                entries: capacity.max(1),
                bytes: max_bytes.max(1),
            },
            share: Held {
                entries: share_of(capacity, share_percent),
                bytes: share_of(max_bytes, share_percent),
            },
            gauge,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Counters only: a panic elsewhere cannot leave them worse than stopping would.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot for an entry of `tenant` costing `bytes`, or why not.
    pub fn take(self: &Arc<Self>, tenant: Option<&TenantId>, bytes: usize) -> Result<Slot, Full> {
        let mut state = self.state();
        let held = state
            .tenants
            .get(&tenant.cloned())
            .copied()
            .unwrap_or_default();
        if held.entries + 1 > self.share.entries || held.bytes + bytes > self.share.bytes {
            return Err(Full::Share);
        }
        if state.total.entries + 1 > self.capacity.entries
            || state.total.bytes + bytes > self.capacity.bytes
        {
            return Err(Full::Queue);
        }
        state.total.entries += 1;
        state.total.bytes += bytes;
        let tenant_held = state.tenants.entry(tenant.cloned()).or_default();
        tenant_held.entries += 1;
        tenant_held.bytes += bytes;
        self.gauge.set(gauge_value(state.total.entries));
        Ok(Slot {
            queue: self.clone(),
            tenant: tenant.cloned(),
            bytes,
        })
    }

    fn release(&self, tenant: &Option<TenantId>, bytes: usize) {
        let mut state = self.state();
        state.total.entries = state.total.entries.saturating_sub(1);
        state.total.bytes = state.total.bytes.saturating_sub(bytes);
        if let Some(held) = state.tenants.get_mut(tenant) {
            held.entries = held.entries.saturating_sub(1);
            held.bytes = held.bytes.saturating_sub(bytes);
            if held.entries == 0 {
                state.tenants.remove(tenant);
            }
        }
        self.gauge.set(gauge_value(state.total.entries));
    }

    /// Entries held (waiting or in flight).
    pub fn len(&self) -> usize {
        self.state().total.entries
    }

    /// Bytes held.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.state().total.bytes
    }
}

fn gauge_value(entries: usize) -> i64 {
    i64::try_from(entries).unwrap_or(i64::MAX)
}

/// One entry's hold on the [`Queue`], released when dropped.
pub struct Slot {
    queue: Arc<Queue>,
    tenant: Option<TenantId>,
    bytes: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.queue.release(&self.tenant, self.bytes);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    #[test]
    fn entries_are_bounded_whole_and_per_tenant() {
        let gauge = Gauge::default();
        let queue = Queue::new(4, MAX_QUEUE_BYTES, 50, gauge.clone());
        let (acme, globex, initech) = (tenant("acme"), tenant("globex"), tenant("initech"));
        let a1 = queue.take(Some(&acme), 10).unwrap();
        let _a2 = queue.take(Some(&acme), 10).unwrap();
        assert_eq!(queue.take(Some(&acme), 10).err(), Some(Full::Share));
        let _g1 = queue.take(Some(&globex), 10).unwrap();
        let _b1 = queue.take(None, 10).unwrap();
        assert_eq!(gauge.get(), 4);
        assert_eq!(queue.take(Some(&initech), 10).err(), Some(Full::Queue));
        drop(a1);
        assert_eq!(gauge.get(), 3);
        assert_eq!(queue.len(), 3);
        assert!(queue.take(Some(&initech), 10).is_ok());
        assert_eq!(
            queue.len(),
            3,
            "the slot taken and dropped at once is released"
        );
    }

    #[test]
    fn bytes_are_bounded_whole_and_per_tenant() {
        let queue = Queue::new(1_000, 1_000, 50, Gauge::default());
        let (acme, globex, initech) = (tenant("acme"), tenant("globex"), tenant("initech"));
        let _a = queue.take(Some(&acme), 400).unwrap();
        assert_eq!(queue.take(Some(&acme), 101).err(), Some(Full::Share));
        let _g = queue.take(Some(&globex), 500).unwrap();
        assert_eq!(queue.take(Some(&initech), 101).err(), Some(Full::Queue));
        let _i = queue.take(Some(&initech), 100).unwrap();
        assert_eq!(queue.bytes(), 1_000);
    }
}
