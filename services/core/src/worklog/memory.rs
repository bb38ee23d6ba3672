//! The work log in this process's memory, bounded: finished units are remembered until
//! their `expires_at` and at most [`MAX_MEMORY_UNITS`] units are kept (when full, expired
//! ones are swept, then the oldest go first — a copy of a forgotten unit runs again, at
//! least once as SQS itself). Each unit is held as a 128-bit digest of its key, so an entry
//! is a few dozen bytes whatever the ids (about 8 MB at the bound). Every operation holds one
//! lock, so `begin` is a compare-and-set.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{Begun, UnitKey, WorkLog, WorkLogError};

/// Most units the memory log keeps (under 100 bytes each).
pub const MAX_MEMORY_UNITS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// Claimed until this time.
    Running(OffsetDateTime),
    /// Finished; remembered until this time.
    Done(OffsetDateTime),
}

/// A unit's key as the memory log holds it: the first 128 bits of a SHA-256 of the
/// storage key and the unit.
type Digest = u128;

fn digest(key: &UnitKey) -> Digest {
    use sha2::{Digest as _, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(key.storage_key().as_bytes());
    hasher.update([0]);
    hasher.update(key.unit.as_bytes());
    let hash = hasher.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&hash[..16]);
    u128::from_be_bytes(first)
}

#[derive(Default)]
struct State {
    units: HashMap<Digest, Entry>,
    /// Digests in insertion order (may name units already gone).
    order: VecDeque<Digest>,
}

impl State {
    fn make_room(&mut self, capacity: usize, now: OffsetDateTime) {
        if self.units.len() < capacity {
            return;
        }
        self.units
            .retain(|_, entry| !matches!(entry, Entry::Done(until) if *until <= now));
        let units = &self.units;
        self.order.retain(|key| units.contains_key(key));
        while self.units.len() >= capacity {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.units.remove(&oldest);
                }
                None => break,
            }
        }
    }
}

/// The work log in this process's memory.
pub struct MemoryWorkLog {
    capacity: usize,
    state: Mutex<State>,
}

impl Default for MemoryWorkLog {
    fn default() -> Self {
        Self::new(MAX_MEMORY_UNITS)
    }
}

impl MemoryWorkLog {
    /// A log keeping at most `capacity` units (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Units held now (finished or claimed).
    pub fn len(&self) -> usize {
        self.state().units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl WorkLog for MemoryWorkLog {
    async fn begin(
        &self,
        key: &UnitKey,
        lease_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Begun, WorkLogError> {
        let key = digest(key);
        let mut state = self.state();
        match state.units.get(&key) {
            Some(Entry::Done(until)) if *until > now => return Ok(Begun::Done),
            Some(Entry::Running(until)) if *until > now => return Ok(Begun::Running),
            Some(_) => {
                state.units.insert(key, Entry::Running(lease_until));
            }
            None => {
                state.make_room(self.capacity, now);
                state.order.push_back(key);
                state.units.insert(key, Entry::Running(lease_until));
            }
        }
        Ok(Begun::Claimed)
    }

    async fn finish(&self, key: &UnitKey, expires_at: OffsetDateTime) -> Result<(), WorkLogError> {
        let key = digest(key);
        let mut state = self.state();
        if !state.units.contains_key(&key) {
            state.make_room(self.capacity, OffsetDateTime::now_utc());
            state.order.push_back(key);
        }
        state.units.insert(key, Entry::Done(expires_at));
        Ok(())
    }

    async fn abandon(
        &self,
        key: &UnitKey,
        lease_until: OffsetDateTime,
    ) -> Result<(), WorkLogError> {
        let key = digest(key);
        let mut state = self.state();
        if state.units.get(&key) == Some(&Entry::Running(lease_until)) {
            state.units.remove(&key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! contract_test {
        ($name:ident) => {
            #[tokio::test]
            async fn $name() {
                super::super::contract::$name(&MemoryWorkLog::default()).await;
            }
        };
    }

    contract_test!(a_unit_is_claimed_once_then_done);

    contract_test!(a_passed_lease_is_claimed_again);
    contract_test!(abandon_gives_back_only_its_own_claim);
    contract_test!(units_of_other_messages_and_tenants_are_separate);
    contract_test!(a_done_unit_is_forgotten_after_it_expires);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_begins_claim_exactly_once() {
        super::super::contract::concurrent_begins_claim_exactly_once(std::sync::Arc::new(
            MemoryWorkLog::default(),
        ))
        .await;
    }

    #[tokio::test]
    async fn the_oldest_units_go_when_full() {
        let log = MemoryWorkLog::new(3);
        let now = OffsetDateTime::now_utc();
        let later = now + time::Duration::minutes(5);
        for i in 0..5 {
            let key = UnitKey::message(None, &format!("m-{i}"));
            assert_eq!(log.begin(&key, later, now).await.unwrap(), Begun::Claimed);
            log.finish(&key, later).await.unwrap();
        }
        assert_eq!(log.len(), 3);
        // The newest are remembered; the oldest were forgotten and would run again.
        let newest = UnitKey::message(None, "m-4");
        assert_eq!(log.begin(&newest, later, now).await.unwrap(), Begun::Done);
        let oldest = UnitKey::message(None, "m-0");
        assert_eq!(
            log.begin(&oldest, later, now).await.unwrap(),
            Begun::Claimed
        );
    }
}
