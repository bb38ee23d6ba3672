//! In-process usage, bounded both ways: minute buckets older than the retention go (swept
//! once per [`SWEEP_EVERY`] writes, and whenever the store is full; never read), and at
//! most `capacity` buckets are held. A tenant (or `*`) holds at most its `share` of them:
//! at its share it drops its own oldest bucket for a new one; when the whole store is full
//! the tenant holding the most drops its own oldest — never a small tenant for a big one.
//! Every operation holds one lock, so an add is atomic.

use std::collections::{BTreeMap, HashMap};
use std::sync::MutexGuard;
use std::time::Duration;

use async_trait::async_trait;
use switchboard_model::TenantId;
use time::OffsetDateTime;

use super::{group, minute_range, Bucket, Counts, Unit, UsageError, UsageStore};
use crate::tenants::{BoundedState, Bounds};

/// Writes between two sweeps of buckets past the retention.
const SWEEP_EVERY: u64 = 4_096;

#[derive(Default)]
struct State {
    /// Per group (`*` or a tenant), minute start (epoch seconds) → counts.
    buckets: HashMap<String, BTreeMap<i64, Counts>>,
    held: usize,
    live: HashMap<String, i64>,
    writes: u64,
}

impl State {
    fn sweep(&mut self, cutoff: i64) {
        let mut held = 0;
        self.buckets.retain(|_, minutes| {
            *minutes = minutes.split_off(&cutoff);
            held += minutes.len();
            !minutes.is_empty()
        });
        self.held = held;
    }

    fn drop_oldest_of(&mut self, name: &str) {
        if let Some(minutes) = self.buckets.get_mut(name) {
            if minutes.pop_first().is_some() {
                self.held -= 1;
            }
            if minutes.is_empty() {
                self.buckets.remove(name);
            }
        }
    }

    /// Makes room for one more bucket of `name`.
    fn make_room(&mut self, name: &str, bounds: Bounds, cutoff: i64) {
        let Bounds { capacity, share } = bounds;
        self.writes += 1;
        if self.writes % SWEEP_EVERY == 0 || self.held >= capacity {
            self.sweep(cutoff);
        }
        if self.buckets.get(name).map_or(0, BTreeMap::len) >= share {
            self.drop_oldest_of(name);
        } else if self.held >= capacity {
            let largest = self
                .buckets
                .iter()
                .max_by_key(|(_, minutes)| minutes.len())
                .map(|(largest, _)| largest.clone());
            if let Some(largest) = largest {
                self.drop_oldest_of(&largest);
            }
        }
    }
}

/// Usage in this process's memory.
pub struct MemoryUsageStore {
    retention: Duration,
    state: BoundedState<State>,
}

impl MemoryUsageStore {
    /// At most `capacity` minute buckets, `share` of them per tenant (both at least 1),
    /// each kept for `retention`.
    pub fn new(capacity: usize, share: usize, retention: Duration) -> Self {
        Self {
            retention,
            state: BoundedState::new(capacity, share),
        }
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, UsageError> {
        self.state.lock("usage").map_err(UsageError::Unavailable)
    }

    /// The start (epoch seconds) of the oldest minute still within the retention.
    fn cutoff(&self) -> i64 {
        let retention = i64::try_from(self.retention.as_secs()).unwrap_or(i64::MAX);
        OffsetDateTime::now_utc()
            .unix_timestamp()
            .saturating_sub(retention)
    }

    /// Buckets held (for tests of the bound).
    pub fn len(&self) -> usize {
        self.state().map_or(0, |s| s.held)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl UsageStore for MemoryUsageStore {
    async fn add(
        &self,
        tenant: Option<&TenantId>,
        at: OffsetDateTime,
        counts: &Counts,
    ) -> Result<(), UsageError> {
        let minute = Unit::Minute.floor(at).unix_timestamp();
        let cutoff = self.cutoff();
        if minute < cutoff {
            return Ok(());
        }
        let name = group(tenant);
        let mut state = self.state()?;
        let exists = state
            .buckets
            .get(name)
            .is_some_and(|minutes| minutes.contains_key(&minute));
        if !exists {
            state.make_room(name, self.state.bounds(), cutoff);
            state.held += 1;
        }
        state
            .buckets
            .entry(name.to_string())
            .or_default()
            .entry(minute)
            .or_default()
            .add(counts);
        Ok(())
    }

    async fn minutes(
        &self,
        tenant: Option<&TenantId>,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<Bucket>, UsageError> {
        let Some((first, last)) = minute_range(from, to) else {
            return Ok(Vec::new());
        };
        let first = first.max(self.cutoff());
        let state = self.state()?;
        let Some(minutes) = state.buckets.get(group(tenant)) else {
            return Ok(Vec::new());
        };
        if first > last {
            return Ok(Vec::new());
        }
        Ok(minutes
            .range(first..=last)
            .filter(|(_, counts)| !counts.is_empty())
            .filter_map(|(start, counts)| {
                Some(Bucket {
                    start: OffsetDateTime::from_unix_timestamp(*start).ok()?,
                    counts: *counts,
                })
            })
            .collect())
    }

    async fn add_live(&self, tenant: &TenantId, delta: i64) -> Result<i64, UsageError> {
        let mut state = self.state()?;
        if !state.live.contains_key(tenant.as_str())
            && state.live.len() >= self.state.bounds().capacity
        {
            return Err(UsageError::Unavailable(
                "memory usage store: too many live counters".into(),
            ));
        }
        let live = state.live.entry(tenant.to_string()).or_default();
        *live = live.saturating_add(delta);
        let now = *live;
        if now == 0 {
            state.live.remove(tenant.as_str());
        }
        Ok(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MONTH: Duration = Duration::from_secs(35 * 86_400);

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    fn one() -> Counts {
        Counts {
            delivered: 1,
            ..Counts::default()
        }
    }

    fn minute(i: i64) -> OffsetDateTime {
        Unit::Minute.floor(OffsetDateTime::now_utc()) - time::Duration::minutes(1_000 - i)
    }

    #[tokio::test]
    async fn memory_store_passes_the_usage_contract() {
        super::super::contract::run_all(|retention| async move {
            MemoryUsageStore::new(1_000, 1_000, retention)
        })
        .await;
    }

    #[tokio::test]
    async fn a_tenant_at_its_share_drops_its_own_oldest_only() {
        let store = MemoryUsageStore::new(10, 3, MONTH);
        let (big, small) = (tenant("big"), tenant("small"));
        store.add(Some(&small), minute(0), &one()).await.unwrap();
        for i in 0..6 {
            store.add(Some(&big), minute(i), &one()).await.unwrap();
        }
        let (from, to) = (minute(-1), minute(100));
        let kept = store.minutes(Some(&big), from, to).await.unwrap();
        assert_eq!(kept.len(), 3);
        assert_eq!(kept[0].start, minute(3), "the oldest went");
        assert_eq!(
            store.minutes(Some(&small), from, to).await.unwrap().len(),
            1
        );
    }

    #[tokio::test]
    async fn a_full_store_takes_from_the_tenant_holding_the_most() {
        let store = MemoryUsageStore::new(4, 3, MONTH);
        let (big, small, new) = (tenant("big"), tenant("small"), tenant("new"));
        for i in 0..3 {
            store.add(Some(&big), minute(i), &one()).await.unwrap();
        }
        store.add(Some(&small), minute(0), &one()).await.unwrap();
        store.add(Some(&new), minute(9), &one()).await.unwrap();
        assert_eq!(store.len(), 4);
        let (from, to) = (minute(-1), minute(100));
        assert_eq!(store.minutes(Some(&big), from, to).await.unwrap().len(), 2);
        assert_eq!(
            store.minutes(Some(&small), from, to).await.unwrap().len(),
            1
        );
        assert_eq!(store.minutes(Some(&new), from, to).await.unwrap().len(), 1);
    }
}
