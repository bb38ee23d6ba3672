//! In-process receipts, bounded both ways: each until its `expiresAt` (expired ones are
//! swept once per [`SWEEP_EVERY`] writes, and whenever the store is full), and at most
//! `capacity` of them (when full after a sweep, the oldest go first). Every operation
//! holds one lock, so `create` is an insert-if-absent and `record` an atomic add.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{Created, Progress, Receipt, ReceiptError, ReceiptKey, ReceiptStore, Seed};

/// Writes between two sweeps of expired receipts.
const SWEEP_EVERY: u64 = 4_096;

#[derive(Default)]
struct State {
    receipts: HashMap<String, Receipt>,
    /// Storage keys in insertion order (may name receipts already gone).
    order: VecDeque<String>,
    writes: u64,
}

impl State {
    fn sweep(&mut self, now: OffsetDateTime) {
        self.receipts.retain(|_, r| !r.is_expired_at(now));
        let receipts = &self.receipts;
        self.order.retain(|key| receipts.contains_key(key));
    }

    /// Makes room for one more receipt.
    fn make_room(&mut self, capacity: usize, now: OffsetDateTime) {
        self.writes += 1;
        if self.writes % SWEEP_EVERY == 0 || self.receipts.len() >= capacity {
            self.sweep(now);
        }
        while self.receipts.len() >= capacity {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.receipts.remove(&oldest);
                }
                None => break,
            }
        }
    }

    fn insert(&mut self, key: String, receipt: Receipt) {
        // A key written again (after an expiry or an undo) is already in the order list
        // unless a sweep dropped it; the list never outgrows twice the receipts held.
        if self.order.len() > 2 * self.receipts.len() + 16 {
            let receipts = &self.receipts;
            self.order.retain(|k| receipts.contains_key(k));
        }
        self.order.push_back(key.clone());
        self.receipts.insert(key, receipt);
    }
}

/// Receipts in this process's memory.
pub struct MemoryReceiptStore {
    capacity: usize,
    state: Mutex<State>,
}

impl MemoryReceiptStore {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, ReceiptError> {
        self.state
            .lock()
            .map_err(|_| ReceiptError::Unavailable("memory receipt lock poisoned".into()))
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
            if !existing.is_expired_at(now) {
                return Ok(Created::Existing(existing.clone()));
            }
            state.receipts.remove(&key);
        }
        state.make_room(self.capacity, now);
        state.insert(key, receipt.clone());
        Ok(Created::New)
    }

    async fn get(&self, key: &ReceiptKey) -> Result<Option<Receipt>, ReceiptError> {
        let now = OffsetDateTime::now_utc();
        let state = self.state()?;
        Ok(state
            .receipts
            .get(&key.storage_key())
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
            state.make_room(self.capacity, seed.now);
            state.insert(storage_key.clone(), Receipt::from_seed(key.clone(), seed));
        }
        match state.receipts.get_mut(&storage_key) {
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
            .is_some_and(|r| r.status() == super::ReceiptStatus::Queued);
        if queued {
            state.receipts.remove(&storage_key);
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

    #[tokio::test]
    async fn a_full_store_drops_the_oldest() {
        let store = MemoryReceiptStore::new(3);
        let acme = TenantId::parse("acme").unwrap();
        let target = Target::Tenant {
            tenant: acme.clone(),
        };
        for i in 0..5 {
            let key = ReceiptKey::new(Some(acme.clone()), format!("m{i}"));
            let receipt = Receipt::queued(
                key,
                &target,
                OffsetDateTime::now_utc(),
                Duration::from_secs(60),
            );
            assert_eq!(store.create(&receipt).await.unwrap(), Created::New);
        }
        assert_eq!(store.len(), 3);
        let gone = ReceiptKey::new(Some(acme.clone()), "m0");
        assert!(store.get(&gone).await.unwrap().is_none());
        let kept = ReceiptKey::new(Some(acme), "m4");
        assert!(store.get(&kept).await.unwrap().is_some());
    }
}
