//! The work log in this process's memory, bounded: finished units are remembered until
//! their `expires_at` and at most [`MAX_MEMORY_UNITS`] units are kept, a share of them per
//! tenant (docs/design.md: Tenants). Room is made in the tenant's own units when it is at
//! its share, else, when the log is full, in the units of the tenant holding the most:
//! expired ones are swept, then the finished units that expire first go, claims last — a
//! copy of a forgotten unit runs again, at least once as SQS itself. Each unit is held as a 128-bit
//! digest of its key, so an entry is about 40 bytes whatever the ids (about 4 MB at the bound).
//! Every operation holds one lock, so `begin` is a compare-and-set.

use std::collections::{BTreeMap, HashMap};
use std::sync::MutexGuard;

use async_trait::async_trait;
use switchboard_model::TenantId;
use time::OffsetDateTime;

use super::{Begun, UnitKey, WorkLog, WorkLogError};
use crate::tenants::{BoundedState, Bounds};

/// Most units the memory log keeps (about 40 bytes each).
pub const MAX_MEMORY_UNITS: usize = 100_000;

/// A unit's state: claimed (`done` false) until `until`, or finished and remembered until
/// `until` — epoch seconds, as the DynamoDB log keeps them, in 32 bits (to 2106), so an
/// entry is 24 bytes with its digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    until: u32,
    done: bool,
}

impl Entry {
    /// A claim rounds its lease up to the next second: it never ends early.
    fn running(lease_until: OffsetDateTime) -> Self {
        Self {
            until: seconds(lease_until).saturating_add(u32::from(lease_until.nanosecond() > 0)),
            done: false,
        }
    }

    fn done(expires_at: OffsetDateTime) -> Self {
        Self {
            until: seconds(expires_at),
            done: true,
        }
    }

    fn live_at(&self, now: OffsetDateTime) -> bool {
        self.until > seconds(now)
    }
}

/// Epoch seconds in 32 bits (times before 1970 are 0, after 2106 the largest).
fn seconds(at: OffsetDateTime) -> u32 {
    u32::try_from(at.unix_timestamp().max(0)).unwrap_or(u32::MAX)
}

/// A unit's key as the memory log holds it: the first 128 bits of a SHA-256 of the
/// storage key and the unit (two words: 8-byte aligned, unlike `u128`).
type Digest = [u64; 2];

fn digest(key: &UnitKey) -> Digest {
    use sha2::{Digest as _, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(key.storage_key().as_bytes());
    hasher.update([0]);
    hasher.update(key.unit.as_bytes());
    let hash = hasher.finalize();
    let mut words = [0u64; 2];
    for (word, bytes) in words.iter_mut().zip(hash.chunks_exact(8)) {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(bytes);
        *word = u64::from_be_bytes(eight);
    }
    words
}

/// Units by digest. A B-tree grows with its entries (about 35 bytes each), where a hash
/// map doubles its table in one step.
type Units = BTreeMap<Digest, Entry>;

/// Units by tenant (`None`: broadcasts), so a tenant's flood only evicts its own.
#[derive(Default)]
struct State {
    tenants: HashMap<Option<TenantId>, Units>,
    total: usize,
}

impl State {
    fn get(&self, tenant: &Option<TenantId>, key: &Digest) -> Option<&Entry> {
        self.tenants.get(tenant).and_then(|units| units.get(key))
    }

    fn insert(&mut self, tenant: &Option<TenantId>, key: Digest, entry: Entry) {
        let units = self.tenants.entry(tenant.clone()).or_default();
        if units.insert(key, entry).is_none() {
            self.total += 1;
        }
    }

    fn remove(&mut self, tenant: &Option<TenantId>, key: &Digest) {
        if let Some(units) = self.tenants.get_mut(tenant) {
            if units.remove(key).is_some() {
                self.total -= 1;
            }
            if units.is_empty() {
                self.tenants.remove(tenant);
            }
        }
    }

    /// Room for one more unit of `tenant`: at its share, its own units go; when the log
    /// holds its capacity, the units of the tenant holding the most go.
    fn make_room(&mut self, tenant: &Option<TenantId>, bounds: Bounds, now: OffsetDateTime) {
        let Bounds { capacity, share } = bounds;
        let held = self.tenants.get(tenant).map_or(0, BTreeMap::len);
        let (payer, limit) = if held >= share {
            (tenant.clone(), share)
        } else if self.total >= capacity {
            let Some(largest) = self
                .tenants
                .iter()
                .max_by_key(|(_, units)| units.len())
                .map(|(tenant, _)| tenant.clone())
            else {
                return;
            };
            let held = self.tenants.get(&largest).map_or(0, BTreeMap::len);
            (largest, held.saturating_sub(1))
        } else {
            return;
        };
        if let Some(units) = self.tenants.get_mut(&payer) {
            let before = units.len();
            evict(units, limit.max(1), capacity, now);
            self.total -= before - units.len();
            if units.is_empty() {
                self.tenants.remove(&payer);
            }
        }
    }
}

/// Below `limit` units: expired finished units go, then the finished units that expire
/// first (a sixteenth of the capacity at a time), and claims only when nothing finished is
/// left.
fn evict(units: &mut Units, limit: usize, capacity: usize, now: OffsetDateTime) {
    if units.len() < limit {
        return;
    }
    units.retain(|_, entry| !entry.done || entry.live_at(now));
    for done in [true, false] {
        while units.len() >= limit {
            let mut untils: Vec<u32> = units
                .values()
                .filter(|entry| entry.done == done)
                .map(|entry| entry.until)
                .collect();
            if untils.is_empty() {
                break;
            }
            let k = (capacity / 16).clamp(1, untils.len());
            let (_, threshold, _) = untils.select_nth_unstable(k - 1);
            let threshold = *threshold;
            units.retain(|_, entry| entry.done != done || entry.until > threshold);
        }
    }
}

/// The work log in this process's memory.
pub struct MemoryWorkLog {
    state: BoundedState<State>,
}

impl Default for MemoryWorkLog {
    fn default() -> Self {
        Self::new(MAX_MEMORY_UNITS)
    }
}

impl MemoryWorkLog {
    /// A log keeping at most `capacity` units (at least one), a quarter of them per tenant.
    pub fn new(capacity: usize) -> Self {
        Self::with_share(capacity, capacity / 4)
    }

    /// A log keeping at most `capacity` units, at most `share` of one tenant (at least one).
    pub fn with_share(capacity: usize, share: usize) -> Self {
        Self {
            state: BoundedState::new(capacity, share),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.state.lock_through_poison()
    }

    /// Units held now (finished or claimed).
    pub fn len(&self) -> usize {
        self.state().total
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
        let tenant = &key.tenant;
        let key = digest(key);
        let mut state = self.state();
        match state.get(tenant, &key) {
            Some(entry) if entry.live_at(now) && entry.done => return Ok(Begun::Done),
            Some(entry) if entry.live_at(now) => return Ok(Begun::Running),
            Some(_) => {}
            None => state.make_room(tenant, self.state.bounds(), now),
        }
        state.insert(tenant, key, Entry::running(lease_until));
        Ok(Begun::Claimed)
    }

    async fn finish(&self, key: &UnitKey, expires_at: OffsetDateTime) -> Result<(), WorkLogError> {
        let tenant = &key.tenant;
        let key = digest(key);
        let mut state = self.state();
        if state.get(tenant, &key).is_none() {
            state.make_room(tenant, self.state.bounds(), OffsetDateTime::now_utc());
        }
        state.insert(tenant, key, Entry::done(expires_at));
        Ok(())
    }

    async fn abandon(
        &self,
        key: &UnitKey,
        lease_until: OffsetDateTime,
    ) -> Result<(), WorkLogError> {
        let tenant = &key.tenant;
        let key = digest(key);
        let mut state = self.state();
        if state.get(tenant, &key) == Some(&Entry::running(lease_until)) {
            state.remove(tenant, &key);
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

    #[test]
    fn an_entry_with_its_digest_is_24_bytes() {
        assert_eq!(std::mem::size_of::<(Digest, Entry)>(), 24);
    }

    #[tokio::test]
    async fn a_claim_never_ends_before_its_lease() {
        let log = MemoryWorkLog::default();
        let key = UnitKey::message(None, "m");
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let lease = now + time::Duration::milliseconds(1_500);
        assert_eq!(log.begin(&key, lease, now).await.unwrap(), Begun::Claimed);
        let before = now + time::Duration::milliseconds(1_400);
        assert_eq!(
            log.begin(&key, lease, before).await.unwrap(),
            Begun::Running
        );
        log.abandon(&key, lease).await.unwrap();
        assert_eq!(
            log.begin(&key, lease, before).await.unwrap(),
            Begun::Claimed
        );
    }

    #[tokio::test]
    async fn a_tenants_flood_forgets_only_its_own_units() {
        let log = MemoryWorkLog::with_share(100, 25);
        let now = OffsetDateTime::now_utc();
        let later = now + time::Duration::minutes(5);
        let tenant = |name: &str| Some(TenantId::parse(name).unwrap());
        let quiet = UnitKey::message(tenant("quiet"), "q-1");
        log.begin(&quiet, later, now).await.unwrap();
        log.finish(&quiet, later).await.unwrap();
        for n in 0..10_000 {
            let key = UnitKey::message(tenant("loud"), &format!("m-{n}"));
            log.begin(&key, later, now).await.unwrap();
            log.finish(&key, later).await.unwrap();
        }
        assert!(log.len() <= 26, "{}", log.len());
        assert_eq!(log.begin(&quiet, later, now).await.unwrap(), Begun::Done);
        // Many tenants each under their share: a full log takes from the largest.
        for t in 0..10 {
            for n in 0..20 {
                let key = UnitKey::message(tenant(&format!("t{t}")), &format!("m-{n}"));
                log.begin(&key, later, now).await.unwrap();
                log.finish(&key, later).await.unwrap();
            }
        }
        assert!(log.len() <= 100, "{}", log.len());
        assert_eq!(log.begin(&quiet, later, now).await.unwrap(), Begun::Done);
    }

    #[tokio::test]
    async fn the_units_that_expire_first_go_when_full_claims_last() {
        let log = MemoryWorkLog::with_share(3, 3);
        let now = OffsetDateTime::now_utc();
        let later = now + time::Duration::minutes(5);
        let claimed = UnitKey::message(None, "running");
        assert_eq!(
            log.begin(&claimed, later, now).await.unwrap(),
            Begun::Claimed
        );
        for i in 0..5 {
            let key = UnitKey::message(None, &format!("m-{i}"));
            assert_eq!(log.begin(&key, later, now).await.unwrap(), Begun::Claimed);
            let expires = later + time::Duration::seconds(i);
            log.finish(&key, expires).await.unwrap();
        }
        assert_eq!(log.len(), 3);
        // The claim and the newest are remembered; the oldest were forgotten and would
        // run again.
        assert_eq!(
            log.begin(&claimed, later, now).await.unwrap(),
            Begun::Running
        );
        let newest = UnitKey::message(None, "m-4");
        assert_eq!(log.begin(&newest, later, now).await.unwrap(), Begun::Done);
        let oldest = UnitKey::message(None, "m-0");
        assert_eq!(
            log.begin(&oldest, later, now).await.unwrap(),
            Begun::Claimed
        );
    }
}
