//! In-process history, bounded in bytes and entries (docs/design.md: History and resume).
//!
//! Each entry is kept once (an `Arc`), whatever the number of streams it is recorded in:
//! a `users` message to 100 users is one frame and 100 small references. The store holds
//! the newest `max_per_stream` entries of each stream, each until its `expiresAt`, and at
//! most `max_bytes` in all — every frame counted once, plus [`ENTRY_OVERHEAD`] per entry,
//! [`MEMBERSHIP_OVERHEAD`] per stream it is in and [`STREAM_OVERHEAD`] per stream (estimates
//! of the maps' bookkeeping). Each tenant (`*` for broadcasts) holds at most its share of
//! the budget (`TENANT_SHARE_PERCENT`): a tenant at its share evicts its own oldest entries,
//! and a full store evicts the oldest of the tenant holding the most, so one tenant's flood
//! never evicts another's history. Every entry is one tenant's (a message addresses one
//! tenant, or all: `*`); its streams, and their costs, are that tenant's too.
//! A stream with nothing left is dropped, so the number of streams is bounded by the
//! budget too (`max_bytes / STREAM_OVERHEAD`). Expired entries leave from the oldest end
//! at each append, and by a sweep of every entry once per [`SWEEP_EVERY`] appends.
//!
//! What it vouches for ([`StreamRead::vouched_after`]): everything recorded after this
//! store started (history in memory does not survive a restart) and after the newest entry
//! of the stream's tenant evicted for room (an evicted entry's streams may be gone with
//! it; a tenant holding nothing any more leaves its mark store-wide), or for that stream's
//! own `max_per_stream` bound.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use switchboard_model::TenantId;
use time::OffsetDateTime;

use super::cursor::epoch_millis;
use super::{
    Cursor, HistoryConfig, HistoryEntry, HistoryError, HistoryStore, Stream, StreamRead,
    DEFAULT_HISTORY_MAX_BYTES,
};

/// Appends between two sweeps of expired entries over every entry.
const SWEEP_EVERY: u64 = 4_096;
/// Bytes counted per entry besides its text: the shared entry, its place in the store's
/// order and the list of its streams.
pub const ENTRY_OVERHEAD: usize = 256;
/// Bytes counted per stream an entry is in: the stream's map slot (its cursor key and the
/// reference) and the stream in the entry's list.
pub const MEMBERSHIP_OVERHEAD: usize = 160;
/// Bytes counted per stream held: its map slot and its own map.
pub const STREAM_OVERHEAD: usize = 256;

#[derive(Default)]
struct StreamEntries {
    entries: BTreeMap<String, Arc<HistoryEntry>>,
    /// The newest cursor dropped for this stream's `max_per_stream`.
    evicted_up_to: Option<String>,
}

/// Whose entry or stream: a tenant, or `None` for broadcasts (the group `*`).
type Group = Option<TenantId>;

/// One entry, held once, and the streams it is in.
struct Held {
    entry: Arc<HistoryEntry>,
    streams: Vec<Stream>,
    group: Group,
}

/// What one tenant holds: its bytes and its entries' cursors (the oldest first).
#[derive(Default)]
struct Holder {
    bytes: usize,
    cursors: BTreeSet<String>,
    /// The newest cursor of this tenant evicted for the byte budget.
    evicted_up_to: Option<String>,
}

#[derive(Default)]
struct State {
    streams: HashMap<Stream, StreamEntries>,
    /// Every entry once, by cursor: the oldest first.
    held: BTreeMap<String, Held>,
    bytes: usize,
    holders: HashMap<Group, Holder>,
    /// `(bytes, group)` of every holder: the last holds the most.
    by_size: BTreeSet<(usize, Group)>,
    /// The newest cursor evicted for the byte budget of a tenant that holds nothing now.
    evicted_up_to: Option<String>,
    appends: u64,
}

/// History in this process's memory.
pub struct MemoryHistoryStore {
    max_per_stream: usize,
    max_bytes: usize,
    /// Bytes one tenant (or `*`) holds at most.
    tenant_share: usize,
    /// Sorts before every cursor made since this store started.
    started: String,
    state: Mutex<State>,
}

fn stream_bytes(stream: &Stream) -> usize {
    match stream {
        Stream::User(tenant, user) => tenant.as_str().len() + user.as_str().len(),
        Stream::Tenant(tenant) => tenant.as_str().len(),
        Stream::Global => 0,
    }
}

fn entry_bytes(entry: &HistoryEntry) -> usize {
    ENTRY_OVERHEAD + entry.frame.len() + entry.id.len() + entry.cursor.as_str().len()
}

fn membership_bytes(entry: &HistoryEntry, stream: &Stream) -> usize {
    MEMBERSHIP_OVERHEAD + entry.cursor.as_str().len() + stream_bytes(stream)
}

fn group_of(stream: &Stream) -> Group {
    match stream {
        Stream::User(tenant, _) | Stream::Tenant(tenant) => Some(tenant.clone()),
        Stream::Global => None,
    }
}

fn newest(current: &mut Option<String>, cursor: &str) {
    if current.as_deref().is_none_or(|c| c < cursor) {
        *current = Some(cursor.to_string());
    }
}

impl State {
    /// Counts `bytes` more against `group` (and the store).
    fn charge(&mut self, group: &Group, bytes: usize) {
        self.bytes += bytes;
        let holder = self.holders.entry(group.clone()).or_default();
        self.by_size.remove(&(holder.bytes, group.clone()));
        holder.bytes += bytes;
        self.by_size.insert((holder.bytes, group.clone()));
    }

    /// Counts `bytes` fewer against `group`; a holder left with nothing goes, its
    /// eviction mark kept store-wide.
    fn refund(&mut self, group: &Group, bytes: usize) {
        self.bytes = self.bytes.saturating_sub(bytes);
        let Some(holder) = self.holders.get_mut(group) else {
            return;
        };
        self.by_size.remove(&(holder.bytes, group.clone()));
        holder.bytes = holder.bytes.saturating_sub(bytes);
        if holder.bytes > 0 || !holder.cursors.is_empty() {
            self.by_size.insert((holder.bytes, group.clone()));
            return;
        }
        if let Some(mark) = self.holders.remove(group).and_then(|h| h.evicted_up_to) {
            newest(&mut self.evicted_up_to, &mark);
        }
    }

    /// Takes `cursor` out of `stream` (dropping the stream once empty) and the stream out
    /// of the entry (dropping the entry once in no stream).
    fn detach(&mut self, cursor: &str, stream: &Stream) {
        if let Some(entries) = self.streams.get_mut(stream) {
            entries.entries.remove(cursor);
            if entries.entries.is_empty() {
                self.streams.remove(stream);
                self.refund(&group_of(stream), STREAM_OVERHEAD + stream_bytes(stream));
            }
        }
        let Some(held) = self.held.get_mut(cursor) else {
            return;
        };
        if let Some(at) = held.streams.iter().position(|s| s == stream) {
            held.streams.swap_remove(at);
            let cost = membership_bytes(&held.entry, stream);
            self.refund(&group_of(stream), cost);
        }
        if self.held.get(cursor).is_some_and(|h| h.streams.is_empty()) {
            self.drop_entry(cursor);
        }
    }

    /// Drops an entry itself (its streams already detached).
    fn drop_entry(&mut self, cursor: &str) {
        let Some(held) = self.held.remove(cursor) else {
            return;
        };
        if let Some(holder) = self.holders.get_mut(&held.group) {
            holder.cursors.remove(cursor);
        }
        self.refund(&held.group, entry_bytes(&held.entry));
    }

    /// Removes an entry from every stream it is in.
    fn remove(&mut self, cursor: &str) {
        let streams = self
            .held
            .get(cursor)
            .map(|held| held.streams.clone())
            .unwrap_or_default();
        for stream in &streams {
            self.detach(cursor, stream);
        }
        // An entry in no stream (never the case after an append) goes too.
        self.drop_entry(cursor);
    }

    fn expire(&mut self, now: OffsetDateTime, sweep: bool) {
        let expired: Vec<String> = if sweep {
            self.held
                .iter()
                .filter(|(_, held)| held.entry.is_expired_at(now))
                .map(|(cursor, _)| cursor.clone())
                .collect()
        } else {
            self.held
                .iter()
                .take_while(|(_, held)| held.entry.is_expired_at(now))
                .map(|(cursor, _)| cursor.clone())
                .collect()
        };
        for cursor in expired {
            self.remove(&cursor);
        }
    }

    /// Evicts `group`'s oldest entry; false when it holds none.
    fn evict_oldest(&mut self, group: &Group) -> bool {
        let Some(holder) = self.holders.get_mut(group) else {
            return false;
        };
        let Some(cursor) = holder.cursors.first().cloned() else {
            return false;
        };
        newest(&mut holder.evicted_up_to, &cursor);
        self.remove(&cursor);
        true
    }

    /// Evicts until `group` is within its share and the store within `max_bytes`: the
    /// group's own oldest first, then the oldest of whoever holds the most.
    fn evict_to(&mut self, group: &Group, share: usize, max_bytes: usize) {
        while self.holders.get(group).is_some_and(|h| h.bytes > share) {
            if !self.evict_oldest(group) {
                break;
            }
        }
        while self.bytes > max_bytes {
            let Some((_, largest)) = self.by_size.last().cloned() else {
                break;
            };
            if !self.evict_oldest(&largest) {
                break;
            }
        }
    }

    /// What a reader of `stream` may have missed through byte-budget evictions.
    fn evicted_mark(&self, stream: &Stream) -> Option<&String> {
        let own = self
            .holders
            .get(&group_of(stream))
            .and_then(|h| h.evicted_up_to.as_ref());
        match (own, self.evicted_up_to.as_ref()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

impl MemoryHistoryStore {
    /// A store of `max_per_stream` entries per stream and the default byte budget.
    pub fn new(max_per_stream: usize) -> Self {
        Self::bounded(max_per_stream, DEFAULT_HISTORY_MAX_BYTES)
    }

    /// A store bounded by `config`'s `max_per_stream` and `max_bytes` (each tenant's share:
    /// [`Self::with_tenant_share`]).
    pub fn from_config(config: &HistoryConfig) -> Self {
        Self::bounded(config.max_per_stream, config.max_bytes)
    }

    /// A store of at most `max_bytes`, any tenant up to all of it.
    pub fn bounded(max_per_stream: usize, max_bytes: usize) -> Self {
        Self {
            max_per_stream: max_per_stream.max(1),
            max_bytes,
            tenant_share: max_bytes,
            started: Cursor::floor_at(epoch_millis(OffsetDateTime::now_utc())),
            state: Mutex::new(State::default()),
        }
    }

    /// Each tenant (and `*`) holds at most `bytes` (at most the whole budget).
    pub fn with_tenant_share(mut self, bytes: usize) -> Self {
        self.tenant_share = bytes.min(self.max_bytes);
        self
    }

    fn state(&self) -> Result<std::sync::MutexGuard<'_, State>, HistoryError> {
        self.state
            .lock()
            .map_err(|_| HistoryError::Unavailable("memory history lock poisoned".into()))
    }

    /// Streams currently held (for tests of the bound).
    pub fn stream_count(&self) -> usize {
        self.state().map_or(0, |s| s.streams.len())
    }

    /// Bytes currently counted against the budget (for tests of the bound).
    pub fn bytes(&self) -> usize {
        self.state().map_or(0, |s| s.bytes)
    }
}

#[async_trait]
impl HistoryStore for MemoryHistoryStore {
    async fn append(&self, entry: &HistoryEntry, streams: &[Stream]) -> Result<(), HistoryError> {
        let now = OffsetDateTime::now_utc();
        let mut state = self.state()?;
        state.appends += 1;
        let sweep = state.appends % SWEEP_EVERY == 0;
        state.expire(now, sweep);
        let cursor = entry.cursor.as_str().to_string();
        let group = streams.first().and_then(group_of);
        if !state.held.contains_key(&cursor) {
            state.held.insert(
                cursor.clone(),
                Held {
                    entry: Arc::new(entry.clone()),
                    streams: Vec::new(),
                    group: group.clone(),
                },
            );
            state.charge(&group, entry_bytes(entry));
            if let Some(holder) = state.holders.get_mut(&group) {
                holder.cursors.insert(cursor.clone());
            }
        }
        let Some(shared) = state.held.get(&cursor).map(|held| held.entry.clone()) else {
            return Ok(());
        };
        for stream in streams {
            let state = &mut *state;
            let Some(held) = state.held.get_mut(&cursor) else {
                break;
            };
            if held.streams.contains(stream) {
                continue;
            }
            held.streams.push(stream.clone());
            let stream_group = group_of(stream);
            state.charge(&stream_group, membership_bytes(entry, stream));
            if !state.streams.contains_key(stream) {
                state.charge(&stream_group, STREAM_OVERHEAD + stream_bytes(stream));
                state
                    .streams
                    .insert(stream.clone(), StreamEntries::default());
            }
            let Some(entries) = state.streams.get_mut(stream) else {
                continue;
            };
            entries.entries.insert(cursor.clone(), shared.clone());
            let mut dropped = Vec::new();
            while entries.entries.len() > self.max_per_stream {
                if let Some((oldest, _)) = entries.entries.pop_first() {
                    newest(&mut entries.evicted_up_to, &oldest);
                    dropped.push(oldest);
                }
            }
            for oldest in dropped {
                // Out of the stream already: this only updates the entry's list.
                state.detach(&oldest, stream);
            }
        }
        state.evict_to(&group, self.tenant_share, self.max_bytes);
        Ok(())
    }

    async fn read_after(
        &self,
        stream: &Stream,
        after: &str,
        limit: usize,
    ) -> Result<StreamRead, HistoryError> {
        let now = OffsetDateTime::now_utc();
        let state = self.state()?;
        let mut vouched_after = Some(self.started.clone());
        if let Some(evicted) = state.evicted_mark(stream) {
            newest(&mut vouched_after, evicted);
        }
        let mut read = StreamRead::default();
        if let Some(entries) = state.streams.get(stream) {
            if let Some(evicted) = &entries.evicted_up_to {
                newest(&mut vouched_after, evicted);
            }
            for entry in entries
                .entries
                .range::<str, _>((Bound::Excluded(after), Bound::Unbounded))
                .map(|(_, e)| e)
                .filter(|e| !e.is_expired_at(now))
            {
                if read.entries.len() == limit {
                    read.incomplete = true;
                    break;
                }
                read.entries.push(HistoryEntry::clone(entry));
            }
        }
        read.vouched_after = vouched_after;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_model::{TenantId, UserId};

    fn entry(id: &str, frame_bytes: usize, ttl_secs: i64) -> HistoryEntry {
        let now = OffsetDateTime::now_utc();
        HistoryEntry {
            cursor: Cursor::new(now),
            id: id.into(),
            frame: "x".repeat(frame_bytes).into(),
            expires_at: now.unix_timestamp() + ttl_secs,
        }
    }

    fn users(n: usize) -> Vec<Stream> {
        (0..n)
            .map(|i| {
                Stream::User(
                    TenantId::parse("acme").unwrap(),
                    UserId::parse(format!("u{i}")).unwrap(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn memory_store_passes_the_history_contract() {
        super::super::contract::run_all(|max| async move { MemoryHistoryStore::new(max) }).await;
    }

    #[tokio::test]
    async fn streams_with_nothing_live_are_swept() {
        let store = MemoryHistoryStore::new(10);
        for i in 0..SWEEP_EVERY {
            let stream =
                Stream::Tenant(switchboard_model::TenantId::parse(format!("t{i}")).unwrap());
            store
                .append(&entry(&format!("m{i}"), 2, -1), &[stream])
                .await
                .unwrap();
        }
        assert!(store.stream_count() <= 1, "{}", store.stream_count());
    }

    /// 100 users share one copy of each frame: the count is one frame plus small
    /// references, not 100 frames.
    #[tokio::test]
    async fn a_frame_is_counted_once_whatever_its_streams() {
        let store = MemoryHistoryStore::new(10);
        let streams = users(100);
        let big = entry("big", 120 * 1024, 300);
        store.append(&big, &streams).await.unwrap();
        let bytes = store.bytes();
        assert!(
            bytes < 120 * 1024 + 100 * (MEMBERSHIP_OVERHEAD + STREAM_OVERHEAD + 64) + 1024,
            "{bytes}"
        );
        let a = store.read_after(&streams[0], "", 10).await.unwrap();
        let b = store.read_after(&streams[99], "", 10).await.unwrap();
        assert!(Arc::ptr_eq(&a.entries[0].frame, &b.entries[0].frame));
        store.remove_all_for_test();
        assert_eq!((store.bytes(), store.stream_count()), (0, 0));
    }

    /// Beyond the budget the oldest entries go (from every stream), streams left empty go
    /// with them, and the count stays within the budget.
    #[tokio::test]
    async fn the_byte_budget_evicts_the_oldest_store_wide() {
        let budget = 1024 * 1024;
        let store = MemoryHistoryStore::bounded(1_000, budget);
        for i in 0..30 {
            store
                .append(&entry(&format!("m{i}"), 120 * 1024, 300), &users(100))
                .await
                .unwrap();
            assert!(store.bytes() <= budget, "{}", store.bytes());
        }
        let read = store.read_after(&users(1)[0], "", 100).await.unwrap();
        assert!(read.entries.len() < 9, "{}", read.entries.len());
        assert_eq!(read.entries.last().unwrap().id, "m29");
        assert!(store.stream_count() <= 100);
    }

    fn tenant(name: &str) -> Stream {
        Stream::Tenant(TenantId::parse(name).unwrap())
    }

    /// The noisy-neighbour case: one tenant's flood evicts only its own entries, and a
    /// reader of another tenant is not told it may have missed something.
    #[tokio::test]
    async fn a_tenants_flood_evicts_only_its_own_history() {
        let budget = 1024 * 1024;
        let store = MemoryHistoryStore::bounded(100_000, budget).with_tenant_share(budget / 4);
        let quiet = tenant("quiet");
        for i in 0..3 {
            store
                .append(
                    &entry(&format!("q{i}"), 1024, 300),
                    std::slice::from_ref(&quiet),
                )
                .await
                .unwrap();
        }
        let all = Stream::Global;
        store
            .append(&entry("b0", 1024, 300), std::slice::from_ref(&all))
            .await
            .unwrap();
        let loud = users(10);
        for i in 0..2_000 {
            store
                .append(&entry(&format!("l{i}"), 2048, 300), &loud)
                .await
                .unwrap();
            assert!(store.bytes() <= budget, "{}", store.bytes());
        }
        let read = store.read_after(&quiet, "", 100).await.unwrap();
        assert_eq!(read.entries.len(), 3);
        assert!(!read.lost_after(&store.started), "quiet lost nothing");
        assert_eq!(
            store.read_after(&all, "", 10).await.unwrap().entries.len(),
            1
        );
        let flooded = store.read_after(&loud[0], "", 100_000).await.unwrap();
        assert_eq!(flooded.entries.last().unwrap().id, "l1999");
        assert!(flooded.entries.len() < 2_000);
        assert!(
            flooded.lost_after(&store.started),
            "loud knows it lost some"
        );
    }

    /// Many tenants below their share fill the budget: the one holding the most gives up
    /// its oldest, never a small one.
    #[tokio::test]
    async fn a_full_store_evicts_the_largest_holders_oldest() {
        let budget = 1024 * 1024;
        let store = MemoryHistoryStore::bounded(100_000, budget).with_tenant_share(budget / 2);
        for i in 0..120 {
            store
                .append(&entry(&format!("big{i}"), 4096, 300), &[tenant("big")])
                .await
                .unwrap();
        }
        for t in 0..200 {
            let name = format!("t{t}");
            store
                .append(&entry(&name, 4096, 300), &[tenant(&name)])
                .await
                .unwrap();
            assert!(store.bytes() <= budget);
        }
        for t in 0..200 {
            let read = store
                .read_after(&tenant(&format!("t{t}")), "", 10)
                .await
                .unwrap();
            assert_eq!(read.entries.len(), 1, "t{t}");
        }
        let big = store.read_after(&tenant("big"), "", 1_000).await.unwrap();
        assert!(big.entries.len() < 120);
        assert_eq!(big.entries.last().unwrap().id, "big119");
    }

    impl MemoryHistoryStore {
        fn remove_all_for_test(&self) {
            let mut state = self.state().unwrap();
            let cursors: Vec<String> = state.held.keys().cloned().collect();
            for cursor in cursors {
                state.remove(&cursor);
            }
        }
    }
}
