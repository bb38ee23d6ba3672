//! In-process receipts, bounded both ways: each until its `expiresAt` (expired ones leave
//! from the oldest end of their tenant's list at each write, and by a sweep of every
//! receipt once per [`SWEEP_EVERY`] writes), and at most `capacity` of them, each tenant
//! (`*` for broadcasts) at most its share. A tenant at its share evicts its own oldest; a
//! full store evicts the oldest of the tenant holding the most, so one tenant's flood never
//! pushes out another's receipts (and with them the idempotency of its retries). Eviction
//! is O(log tenants) per write: an insertion-ordered list per tenant and the tenants
//! ordered by what they hold. Every operation holds one lock, so `create` is an
//! insert-if-absent and `record` an atomic add.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::MutexGuard;

use async_trait::async_trait;
use switchboard_model::TenantId;
use time::OffsetDateTime;

use super::{Created, Progress, Receipt, ReceiptError, ReceiptKey, ReceiptStore, Seed};
use crate::tenants::{BoundedState, Bounds};

/// Writes between two sweeps of expired receipts.
const SWEEP_EVERY: u64 = 4_096;

/// Whose receipt: a tenant, or `None` for a broadcast (the group `*`).
type Group = Option<TenantId>;

/// One receipt and its place in its tenant's order.
struct Held {
    receipt: Receipt,
    /// Its write number: an order entry with another number is stale.
    seq: u64,
}

/// One tenant's receipts in insertion order (storage key and write number). Entries of
/// receipts gone since (deleted, expired, written again) are skipped when met and
/// compacted away once they outnumber the live ones.
#[derive(Default)]
struct Order {
    keys: VecDeque<(String, u64)>,
    held: usize,
}

#[derive(Default)]
struct State {
    receipts: HashMap<String, Held>,
    orders: HashMap<Group, Order>,
    /// `(held, group)` of every group holding something: the last is the largest holder.
    by_size: BTreeSet<(usize, Group)>,
    writes: u64,
}

impl State {
    fn set_held(&mut self, group: &Group, held: usize) {
        let Some(order) = self.orders.get_mut(group) else {
            return;
        };
        self.by_size.remove(&(order.held, group.clone()));
        order.held = held;
        if held > 0 {
            self.by_size.insert((held, group.clone()));
        } else {
            // Nothing live left: every entry of its order is stale.
            self.orders.remove(group);
        }
    }

    fn held(&self, group: &Group) -> usize {
        self.orders.get(group).map_or(0, |o| o.held)
    }

    /// Removes a receipt (its order entry goes stale).
    fn remove(&mut self, key: &str) -> Option<Receipt> {
        let held = self.receipts.remove(key)?;
        let group = held.receipt.key.tenant.clone();
        let count = self.held(&group);
        self.set_held(&group, count.saturating_sub(1));
        Some(held.receipt)
    }

    /// The oldest live receipt of `group`, stale entries before it dropped.
    fn oldest(&mut self, group: &Group) -> Option<(String, u64)> {
        let order = self.orders.get_mut(group)?;
        while let Some((key, seq)) = order.keys.front() {
            if self.receipts.get(key).is_some_and(|h| h.seq == *seq) {
                return Some((key.clone(), *seq));
            }
            order.keys.pop_front();
        }
        None
    }

    /// Drops `group`'s expired receipts from its oldest end.
    fn expire_front(&mut self, group: &Group, now: OffsetDateTime) {
        while let Some((key, _)) = self.oldest(group) {
            if !self
                .receipts
                .get(&key)
                .is_some_and(|h| h.receipt.is_expired_at(now))
            {
                break;
            }
            self.remove(&key);
        }
    }

    fn evict_oldest(&mut self, group: &Group) -> bool {
        match self.oldest(group) {
            Some((key, _)) => self.remove(&key).is_some(),
            None => false,
        }
    }

    fn sweep(&mut self, now: OffsetDateTime) {
        let expired: Vec<String> = self
            .receipts
            .iter()
            .filter(|(_, h)| h.receipt.is_expired_at(now))
            .map(|(key, _)| key.clone())
            .collect();
        for key in expired {
            self.remove(&key);
        }
    }

    /// Makes room for one more receipt of `group`: its own oldest at its share, the
    /// largest holder's oldest when the store is full.
    fn make_room(&mut self, group: &Group, bounds: Bounds, now: OffsetDateTime) {
        self.writes += 1;
        if self.writes % SWEEP_EVERY == 0 {
            self.sweep(now);
        }
        self.expire_front(group, now);
        while self.held(group) >= bounds.share {
            if !self.evict_oldest(group) {
                break;
            }
        }
        while self.receipts.len() >= bounds.capacity {
            let Some((_, largest)) = self.by_size.last().cloned() else {
                break;
            };
            if !self.evict_oldest(&largest) {
                break;
            }
        }
    }

    fn insert(&mut self, key: String, receipt: Receipt) {
        let group = receipt.key.tenant.clone();
        let seq = self.writes;
        // A key written over (callers remove first) is counted once.
        if self
            .receipts
            .insert(key.clone(), Held { receipt, seq })
            .is_none()
        {
            let held = self.held(&group);
            self.orders.entry(group.clone()).or_default();
            self.set_held(&group, held + 1);
        }
        let Some(order) = self.orders.get_mut(&group) else {
            return;
        };
        order.keys.push_back((key, seq));
        if order.keys.len() > 2 * order.held + 16 {
            let receipts = &self.receipts;
            order
                .keys
                .retain(|(k, s)| receipts.get(k).is_some_and(|h| h.seq == *s));
        }
    }
}

/// Receipts in this process's memory.
pub struct MemoryReceiptStore {
    state: BoundedState<State>,
}

impl MemoryReceiptStore {
    /// A store of at most `capacity` receipts, any tenant up to all of them.
    pub fn new(capacity: usize) -> Self {
        Self::shared(capacity, capacity)
    }

    /// A store of at most `capacity` receipts, each tenant (and `*`) at most `tenant_share`.
    pub fn shared(capacity: usize, tenant_share: usize) -> Self {
        Self {
            state: BoundedState::new(capacity, tenant_share),
        }
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, ReceiptError> {
        self.state
            .lock("receipt")
            .map_err(ReceiptError::Unavailable)
    }

    /// Receipts currently held, live or not yet swept (for tests of the bound).
    pub fn len(&self) -> usize {
        self.state().map_or(0, |s| s.receipts.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl ReceiptStore for MemoryReceiptStore {
    async fn create(&self, receipt: &Receipt) -> Result<Created, ReceiptError> {
        let now = OffsetDateTime::now_utc();
        let key = receipt.key.storage_key();
        let mut state = self.state()?;
        if let Some(existing) = state.receipts.get(&key) {
            if !existing.receipt.is_expired_at(now) {
                return Ok(Created::Existing(existing.receipt.clone()));
            }
            state.remove(&key);
        }
        state.make_room(&receipt.key.tenant, self.state.bounds(), now);
        state.insert(key, receipt.clone());
        Ok(Created::New)
    }

    async fn get(&self, key: &ReceiptKey) -> Result<Option<Receipt>, ReceiptError> {
        let now = OffsetDateTime::now_utc();
        let state = self.state()?;
        Ok(state
            .receipts
            .get(&key.storage_key())
            .map(|h| &h.receipt)
            .filter(|r| !r.is_expired_at(now))
            .cloned())
    }

    async fn record(
        &self,
        key: &ReceiptKey,
        seed: &Seed,
        progress: &Progress,
    ) -> Result<Receipt, ReceiptError> {
        let storage_key = key.storage_key();
        let mut state = self.state()?;
        if !state.receipts.contains_key(&storage_key) {
            state.make_room(&key.tenant, self.state.bounds(), seed.now);
            state.insert(storage_key.clone(), Receipt::from_seed(key.clone(), seed));
        }
        match state.receipts.get_mut(&storage_key).map(|h| &mut h.receipt) {
            Some(receipt) => {
                if receipt.target.is_none() {
                    receipt.target = seed.target.clone();
                }
                receipt.apply(progress, seed.now);
                Ok(receipt.clone())
            }
            None => Err(ReceiptError::Unavailable("receipt vanished".into())),
        }
    }

    async fn delete_if_queued(&self, key: &ReceiptKey) -> Result<bool, ReceiptError> {
        let storage_key = key.storage_key();
        let mut state = self.state()?;
        let queued = state
            .receipts
            .get(&storage_key)
            .is_some_and(|h| h.receipt.status() == super::ReceiptStatus::Queued);
        if queued {
            state.remove(&storage_key);
        }
        Ok(queued)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use switchboard_model::{Target, TenantId};

    use super::*;

    #[tokio::test]
    async fn memory_store_passes_the_receipt_contract() {
        super::super::contract::run_all(|| async { MemoryReceiptStore::new(1_000) }).await;
    }

    fn queued(tenant: Option<&str>, id: &str) -> Receipt {
        let tenant = tenant.map(|t| TenantId::parse(t).unwrap());
        let target = match &tenant {
            Some(tenant) => Target::Tenant {
                tenant: tenant.clone(),
            },
            None => Target::Broadcast,
        };
        Receipt::queued(
            ReceiptKey::new(tenant, id),
            &target,
            OffsetDateTime::now_utc(),
            Duration::from_secs(60),
        )
    }

    async fn held(store: &MemoryReceiptStore, tenant: Option<&str>, id: &str) -> bool {
        let key = ReceiptKey::new(tenant.map(|t| TenantId::parse(t).unwrap()), id);
        store.get(&key).await.unwrap().is_some()
    }

    #[tokio::test]
    async fn a_full_store_drops_the_oldest() {
        let store = MemoryReceiptStore::new(3);
        for i in 0..5 {
            let receipt = queued(Some("acme"), &format!("m{i}"));
            assert_eq!(store.create(&receipt).await.unwrap(), Created::New);
        }
        assert_eq!(store.len(), 3);
        assert!(!held(&store, Some("acme"), "m0").await);
        assert!(held(&store, Some("acme"), "m4").await);
    }

    /// The noisy-neighbour case: one tenant's flood evicts only its own receipts, so
    /// another tenant's stays and a retry of its id still finds it.
    #[tokio::test]
    async fn a_tenant_at_its_share_evicts_only_its_own_oldest() {
        let store = MemoryReceiptStore::shared(100, 25);
        store.create(&queued(Some("quiet"), "q-1")).await.unwrap();
        store.create(&queued(None, "all-1")).await.unwrap();
        for i in 0..10_000 {
            store
                .create(&queued(Some("loud"), &format!("m{i}")))
                .await
                .unwrap();
        }
        assert!(held(&store, Some("quiet"), "q-1").await);
        assert!(held(&store, None, "all-1").await);
        assert!(!held(&store, Some("loud"), "m9974").await);
        assert!(held(&store, Some("loud"), "m9975").await);
        assert_eq!(store.len(), 27);
        assert!(matches!(
            store.create(&queued(Some("quiet"), "q-1")).await.unwrap(),
            Created::Existing(_)
        ));
    }

    /// Many tenants below their share fill the store: the one holding the most gives up
    /// its oldest, never a small one.
    #[tokio::test]
    async fn a_full_store_evicts_the_largest_holders_oldest() {
        let store = MemoryReceiptStore::shared(10, 5);
        for i in 0..5 {
            store
                .create(&queued(Some("big"), &format!("b{i}")))
                .await
                .unwrap();
        }
        for tenant in ["t1", "t2", "t3", "t4", "t5"] {
            store.create(&queued(Some(tenant), "x")).await.unwrap();
        }
        assert_eq!(store.len(), 10);
        store.create(&queued(Some("t6"), "x")).await.unwrap();
        assert!(!held(&store, Some("big"), "b0").await);
        assert!(held(&store, Some("big"), "b1").await);
        for tenant in ["t1", "t2", "t3", "t4", "t5", "t6"] {
            assert!(held(&store, Some(tenant), "x").await, "{tenant}");
        }
        // A deleted receipt frees its tenant's count; the stale order entry is skipped.
        let key = ReceiptKey::new(Some(TenantId::parse("t1").unwrap()), "x");
        assert!(store.delete_if_queued(&key).await.unwrap());
        store.create(&queued(Some("t1"), "x")).await.unwrap();
        assert_eq!(store.len(), 10);
        assert!(held(&store, Some("big"), "b1").await);
    }

    /// Recording into a missing receipt counts against its tenant's share too.
    #[tokio::test]
    async fn records_of_missing_receipts_count_against_the_share() {
        let store = MemoryReceiptStore::shared(100, 10);
        store.create(&queued(Some("quiet"), "q-1")).await.unwrap();
        let seed = Seed::new(None, OffsetDateTime::now_utc(), Duration::from_secs(60));
        for i in 0..1_000 {
            let key = ReceiptKey::new(Some(TenantId::parse("loud").unwrap()), format!("m{i}"));
            store
                .record(&key, &seed, &Progress::pending(1))
                .await
                .unwrap();
        }
        assert_eq!(store.len(), 11);
        assert!(held(&store, Some("quiet"), "q-1").await);
    }
}
