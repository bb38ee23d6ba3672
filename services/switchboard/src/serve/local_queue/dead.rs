//! The dead-letter list: bounded by `DEAD_LETTER_CAPACITY`, each tenant group (the tenant,
//! `*` for broadcasts and letters of no known tenant) to its share of it. A group at its
//! share drops its own oldest letter; a full list drops the oldest letter of the group
//! holding the most (never a small tenant's for a big one's). Each drop is logged and
//! counted.
//!
//! The list has its own lock, apart from the queue's: a listing never delays a publish.
//! A page is found through an index (all letters by position; each group's positions),
//! never by scanning the list, and copies only shared pointers under the lock.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use switchboard_core::queue::tenant_group;
use switchboard_model::TenantId;
use time::OffsetDateTime;

use crate::serve::metrics::Metrics;

/// A message in the dead-letter list (`GET /v1/dead-letters`).
#[derive(Debug, Clone, Serialize)]
pub struct DeadEntry {
    /// Position in the list (the pagination cursor); never reused.
    #[serde(skip)]
    pub seq: u64,
    pub id: String,
    pub body: String,
    pub error: String,
    #[serde(rename = "receiveCount")]
    pub receive_count: u32,
    #[serde(rename = "deadAt", with = "time::serde::rfc3339")]
    pub dead_at: OffsetDateTime,
    /// The tenant, recorded when the letter was written; `None`: only global admins see it.
    #[serde(skip)]
    pub tenant: Option<TenantId>,
}

/// One page of dead letters and the cursor of the next, if any.
pub struct DeadLetterPage {
    pub items: Vec<Arc<DeadEntry>>,
    pub next: Option<u64>,
}

#[derive(Default)]
struct List {
    /// Every letter by position.
    entries: BTreeMap<u64, Arc<DeadEntry>>,
    /// Each tenant group's positions, oldest first (no empty entries).
    groups: HashMap<String, VecDeque<u64>>,
    /// (letters held, group) of every group: the largest last.
    sizes: BTreeSet<(usize, String)>,
    /// Each letter id's positions (no empty entries): a redrive of one letter finds it
    /// without scanning.
    ids: HashMap<String, BTreeSet<u64>>,
    next_seq: u64,
}

impl List {
    fn resize(&mut self, group: &str, from: usize, to: usize) {
        self.sizes.remove(&(from, group.to_string()));
        if to > 0 {
            self.sizes.insert((to, group.to_string()));
        }
    }

    /// Drops the oldest letter of `group`.
    fn drop_oldest(&mut self, group: &str) -> Option<Arc<DeadEntry>> {
        let seqs = self.groups.get_mut(group)?;
        let seq = seqs.pop_front()?;
        let left = seqs.len();
        if left == 0 {
            self.groups.remove(group);
        }
        self.resize(group, left + 1, left);
        self.remove_entry(seq)
    }

    /// Removes the letter at `seq` from the entries and the id index (its group's
    /// positions are the caller's to update).
    fn remove_entry(&mut self, seq: u64) -> Option<Arc<DeadEntry>> {
        let entry = self.entries.remove(&seq)?;
        if let Some(seqs) = self.ids.get_mut(&entry.id) {
            seqs.remove(&seq);
            if seqs.is_empty() {
                self.ids.remove(&entry.id);
            }
        }
        Some(entry)
    }

    fn held(&self, group: &str) -> usize {
        self.groups.get(group).map_or(0, VecDeque::len)
    }
}

/// The dead-letter list (see the module docs).
pub struct DeadLetters {
    list: Mutex<List>,
    capacity: usize,
    share: usize,
    metrics: Arc<Metrics>,
}

impl DeadLetters {
    /// At most `capacity` letters, `share` of them per tenant group.
    pub fn new(capacity: usize, share: usize, metrics: Arc<Metrics>) -> Self {
        let capacity = capacity.max(1);
        Self {
            list: Mutex::new(List::default()),
            capacity,
            share: share.clamp(1, capacity),
            metrics,
        }
    }

    fn list(&self) -> MutexGuard<'_, List> {
        // Every change leaves the list and its indexes consistent before it can panic.
        self.list
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update_gauge(&self, list: &List) {
        self.metrics
            .dead_letters
            .set(i64::try_from(list.entries.len()).unwrap_or(i64::MAX));
    }

    /// Adds a letter, first dropping what its group's share or the capacity requires.
    pub fn push(&self, mut entry: DeadEntry) {
        let group = tenant_group(entry.tenant.as_ref()).to_string();
        let mut list = self.list();
        let mut dropped = Vec::new();
        while list.held(&group) >= self.share {
            dropped.extend(list.drop_oldest(&group));
        }
        while list.entries.len() >= self.capacity {
            let Some((_, largest)) = list.sizes.last().cloned() else {
                break;
            };
            dropped.extend(list.drop_oldest(&largest));
        }
        entry.seq = list.next_seq;
        list.next_seq += 1;
        let held = list.held(&group);
        list.groups
            .entry(group.clone())
            .or_default()
            .push_back(entry.seq);
        list.resize(&group, held, held + 1);
        list.ids
            .entry(entry.id.clone())
            .or_default()
            .insert(entry.seq);
        list.entries.insert(entry.seq, Arc::new(entry));
        self.update_gauge(&list);
        drop(list);
        for letter in dropped {
            let tenant = tenant_group(letter.tenant.as_ref());
            tracing::warn!(message_id = %letter.id, tenant, "dead-letter share or list full: oldest dropped");
            self.metrics.dead_letters_dropped.inc();
        }
    }

    /// Up to `limit` letters of `tenant` (every letter: `None`) from position `from`,
    /// oldest first, and the position of the next one.
    pub fn page(
        &self,
        from: Option<u64>,
        limit: usize,
        tenant: Option<&TenantId>,
    ) -> DeadLetterPage {
        let from = from.unwrap_or(0);
        let list = self.list();
        let mut found: Vec<Arc<DeadEntry>> = match tenant {
            None => list
                .entries
                .range(from..)
                .take(limit.saturating_add(1))
                .map(|(_, entry)| entry.clone())
                .collect(),
            Some(tenant) => {
                let Some(seqs) = list.groups.get(tenant.as_str()) else {
                    return DeadLetterPage {
                        items: Vec::new(),
                        next: None,
                    };
                };
                let start = seqs.partition_point(|seq| *seq < from);
                seqs.range(start..)
                    .take(limit.saturating_add(1))
                    .filter_map(|seq| list.entries.get(seq).cloned())
                    .collect()
            }
        };
        drop(list);
        let next = (found.len() > limit)
            .then(|| found.pop().map(|e| e.seq))
            .flatten();
        DeadLetterPage { items: found, next }
    }

    /// Takes out every letter of `tenant` (every letter: `None`), oldest first.
    pub fn take(&self, tenant: Option<&TenantId>) -> Vec<Arc<DeadEntry>> {
        let mut list = self.list();
        let taken: Vec<Arc<DeadEntry>> = match tenant {
            None => {
                let all = std::mem::take(&mut *list);
                list.next_seq = all.next_seq;
                all.entries.into_values().collect()
            }
            Some(tenant) => {
                let group = tenant.as_str();
                let seqs = list.groups.remove(group).unwrap_or_default();
                list.resize(group, seqs.len(), 0);
                seqs.iter()
                    .filter_map(|seq| list.remove_entry(*seq))
                    .collect()
            }
        };
        self.update_gauge(&list);
        taken
    }

    /// Takes out the letters named `id` that belong to `tenant` (any letter: `None`);
    /// empty when none does.
    pub fn take_id(&self, id: &str, tenant: Option<&TenantId>) -> Vec<Arc<DeadEntry>> {
        let mut list = self.list();
        let seqs: Vec<u64> = list
            .ids
            .get(id)
            .into_iter()
            .flatten()
            .copied()
            .filter(|seq| {
                list.entries
                    .get(seq)
                    .is_some_and(|e| tenant.is_none() || e.tenant.as_ref() == tenant)
            })
            .collect();
        let mut taken = Vec::with_capacity(seqs.len());
        for seq in seqs {
            let Some(entry) = list.remove_entry(seq) else {
                continue;
            };
            let group = tenant_group(entry.tenant.as_ref()).to_string();
            if let Some(positions) = list.groups.get_mut(&group) {
                positions.retain(|p| *p != seq);
                let left = positions.len();
                if left == 0 {
                    list.groups.remove(&group);
                }
                list.resize(&group, left + 1, left);
            }
            taken.push(entry);
        }
        self.update_gauge(&list);
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letters(capacity: usize, share: usize) -> DeadLetters {
        DeadLetters::new(capacity, share, Arc::new(Metrics::new()))
    }

    fn entry(tenant: Option<&str>, id: &str) -> DeadEntry {
        DeadEntry {
            seq: 0,
            id: id.to_string(),
            body: String::new(),
            error: String::new(),
            receive_count: 1,
            dead_at: OffsetDateTime::UNIX_EPOCH,
            tenant: tenant.map(|t| TenantId::parse(t).unwrap()),
        }
    }

    fn ids(page: &DeadLetterPage) -> Vec<&str> {
        page.items.iter().map(|e| e.id.as_str()).collect()
    }

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    #[test]
    fn a_tenant_at_its_share_drops_its_own_oldest() {
        let list = letters(10, 3);
        list.push(entry(Some("b"), "b1"));
        for n in 0..5 {
            list.push(entry(Some("a"), &format!("a{n}")));
        }
        assert_eq!(ids(&list.page(None, 100, None)), ["b1", "a2", "a3", "a4"]);
        assert_eq!(list.metrics.dead_letters_dropped.get(), 2);
    }

    #[test]
    fn a_full_list_drops_the_oldest_of_the_largest_group() {
        let list = letters(4, 3);
        list.push(entry(Some("b"), "b1"));
        list.push(entry(Some("a"), "a1"));
        list.push(entry(Some("a"), "a2"));
        list.push(entry(None, "broadcast"));
        list.push(entry(Some("c"), "c1"));
        assert_eq!(
            ids(&list.page(None, 100, None)),
            ["b1", "a2", "broadcast", "c1"]
        );
        assert_eq!(list.metrics.dead_letters.get(), 4);
    }

    #[test]
    fn pages_follow_the_cursor_within_a_tenant_or_across_all() {
        let list = letters(100, 100);
        for n in 0..5 {
            list.push(entry(Some("a"), &format!("a{n}")));
            list.push(entry(Some("b"), &format!("b{n}")));
        }
        let first = list.page(None, 2, Some(&tenant("b")));
        assert_eq!(ids(&first), ["b0", "b1"]);
        let second = list.page(first.next, 2, Some(&tenant("b")));
        assert_eq!(ids(&second), ["b2", "b3"]);
        let last = list.page(second.next, 2, Some(&tenant("b")));
        assert_eq!((ids(&last), last.next), (vec!["b4"], None));
        let all = list.page(None, 3, None);
        assert_eq!(ids(&all), ["a0", "b0", "a1"]);
        assert_eq!(ids(&list.page(all.next, 1, None)), ["b1"]);
        assert!(list.page(None, 5, Some(&tenant("c"))).items.is_empty());
    }

    #[test]
    fn taking_one_letter_by_id_holds_to_the_tenant_and_keeps_the_indexes() {
        let list = letters(100, 2);
        list.push(entry(Some("a"), "a0"));
        list.push(entry(Some("a"), "a1"));
        list.push(entry(Some("b"), "b0"));
        list.push(entry(None, "x"));
        assert!(
            list.take_id("a1", Some(&tenant("b"))).is_empty(),
            "another tenant's"
        );
        assert!(
            list.take_id("x", Some(&tenant("a"))).is_empty(),
            "a tenantless letter"
        );
        assert!(list.take_id("nope", None).is_empty());
        let taken = list.take_id("a0", Some(&tenant("a")));
        assert_eq!(
            taken.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["a0"]
        );
        assert_eq!(ids(&list.page(None, 10, Some(&tenant("a")))), ["a1"]);
        assert_eq!(list.take_id("x", None).len(), 1, "a global admin's");
        assert_eq!(ids(&list.page(None, 10, None)), ["a1", "b0"]);
        assert_eq!(list.metrics.dead_letters.get(), 2);
        // The group's share counts what is left: a's second letter does not drop a1.
        list.push(entry(Some("a"), "a2"));
        assert_eq!(ids(&list.page(None, 10, Some(&tenant("a")))), ["a1", "a2"]);
        assert!(list.take_id("a0", None).is_empty(), "taken once");
    }

    #[test]
    fn taking_a_tenants_letters_leaves_the_others_and_their_positions() {
        let list = letters(100, 100);
        list.push(entry(Some("a"), "a0"));
        list.push(entry(Some("b"), "b0"));
        list.push(entry(None, "x"));
        let taken = list.take(Some(&tenant("a")));
        assert_eq!(
            taken.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["a0"]
        );
        assert_eq!(ids(&list.page(None, 10, None)), ["b0", "x"]);
        assert_eq!(list.take(None).len(), 2);
        list.push(entry(Some("a"), "a1"));
        assert_eq!(
            list.page(None, 10, None).items[0].seq,
            3,
            "positions never reused"
        );
    }
}
