//! `publishesPerSecond`: one token bucket per tenant (governor's GCRA), made on the tenant's
//! first publish with its own quota. The table is bounded: when it holds
//! [`MAX_RATE_TENANTS`] buckets, the buckets that have refilled (idle for longer than a full
//! refill, so forgetting them changes nothing) go first, then the least recently used.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use switchboard_model::TenantId;

/// Most tenants with a bucket at once.
pub const MAX_RATE_TENANTS: usize = 100_000;

type Bucket = RateLimiter<NotKeyed, InMemoryState, MonotonicClock, NoOpMiddleware<Instant>>;

struct Entry {
    bucket: Arc<Bucket>,
    quota: (u32, u32),
    /// When a full bucket is refilled after `last_used`.
    refilled_at: Instant,
}

/// The per-tenant publish buckets of one process.
pub struct PublishRates {
    entries: Mutex<HashMap<TenantId, Entry>>,
    capacity: usize,
    clock: MonotonicClock,
}

impl Default for PublishRates {
    fn default() -> Self {
        Self::with_capacity(MAX_RATE_TENANTS)
    }
}

impl PublishRates {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Mutex::default(),
            capacity: capacity.max(1),
            clock: MonotonicClock,
        }
    }

    /// Takes one publish from `tenant`'s bucket of `per_second` (size `burst`): `Err` with the
    /// wait before the next one fits.
    pub fn take(&self, tenant: &TenantId, per_second: u32, burst: u32) -> Result<(), Duration> {
        let (Some(rate), Some(size)) = (NonZeroU32::new(per_second), NonZeroU32::new(burst)) else {
            return Ok(());
        };
        let now = Instant::now();
        // A full refill: `burst` tokens at `per_second`.
        let refill = Duration::from_secs_f64(f64::from(burst) / f64::from(per_second));
        let bucket = {
            let mut entries = self
                .entries
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let fresh = || Entry {
                bucket: Arc::new(RateLimiter::direct_with_clock(
                    Quota::per_second(rate).allow_burst(size),
                    MonotonicClock,
                )),
                quota: (per_second, burst),
                refilled_at: now + refill,
            };
            if !entries.contains_key(tenant) && entries.len() >= self.capacity {
                make_room(&mut entries, now, self.capacity);
            }
            let entry = entries.entry(tenant.clone()).or_insert_with(fresh);
            if entry.quota != (per_second, burst) {
                *entry = fresh();
            }
            entry.refilled_at = now + refill;
            entry.bucket.clone()
        };
        bucket
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Buckets held (for tests).
    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops refilled buckets; if none, the least recently used sixteenth.
fn make_room(entries: &mut HashMap<TenantId, Entry>, now: Instant, capacity: usize) {
    entries.retain(|_, entry| entry.refilled_at > now);
    if entries.len() < capacity {
        return;
    }
    let mut by_age: Vec<(Instant, TenantId)> = entries
        .iter()
        .map(|(tenant, entry)| (entry.refilled_at, tenant.clone()))
        .collect();
    by_age.sort_unstable();
    for (_, tenant) in by_age.into_iter().take((capacity / 16).max(1)) {
        entries.remove(&tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    #[test]
    fn a_tenant_past_its_burst_waits_and_others_do_not() {
        let rates = PublishRates::default();
        let acme = tenant("acme");
        for _ in 0..5 {
            assert!(rates.take(&acme, 1, 5).is_ok());
        }
        let wait = rates.take(&acme, 1, 5).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(rates.take(&tenant("globex"), 1, 5).is_ok());
        // A changed quota starts a new bucket.
        assert!(rates.take(&acme, 10, 10).is_ok());
    }

    #[test]
    fn the_table_stays_within_its_capacity() {
        let rates = PublishRates::with_capacity(32);
        for n in 0..100 {
            let _ = rates.take(&tenant(&format!("t{n}")), 1, 1_000);
        }
        assert!(rates.len() <= 32, "{}", rates.len());
    }
}
