//! In-process history: the newest `max_per_stream` entries of each stream, each until its
//! `expiresAt`. Bounded in both directions: entries per stream, and streams (a stream with
//! nothing live left is dropped when it is next written, and by a sweep of every stream
//! once per [`SWEEP_EVERY`] appends).

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{HistoryEntry, HistoryError, HistoryStore, Stream, StreamRead};

/// Appends between two sweeps of expired entries over every stream.
const SWEEP_EVERY: u64 = 4_096;

#[derive(Default)]
struct StreamEntries {
    entries: BTreeMap<String, HistoryEntry>,
    /// The newest cursor dropped for room: a reader after an older cursor missed it.
    evicted_up_to: Option<String>,
}

#[derive(Default)]
struct State {
    streams: HashMap<Stream, StreamEntries>,
    appends: u64,
}

/// History in this process's memory.
pub struct MemoryHistoryStore {
    max_per_stream: usize,
    state: Mutex<State>,
}

impl MemoryHistoryStore {
    pub fn new(max_per_stream: usize) -> Self {
        Self {
            max_per_stream: max_per_stream.max(1),
            state: Mutex::new(State::default()),
        }
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
}

fn prune_expired(stream: &mut StreamEntries, now: OffsetDateTime) {
    stream.entries.retain(|_, entry| !entry.is_expired_at(now));
}

#[async_trait]
impl HistoryStore for MemoryHistoryStore {
    async fn append(&self, entry: &HistoryEntry, streams: &[Stream]) -> Result<(), HistoryError> {
        let now = OffsetDateTime::now_utc();
        let mut state = self.state()?;
        state.appends += 1;
        if state.appends % SWEEP_EVERY == 0 {
            state.streams.retain(|_, stream| {
                prune_expired(stream, now);
                !stream.entries.is_empty()
            });
        }
        for key in streams {
            let stream = state.streams.entry(key.clone()).or_default();
            prune_expired(stream, now);
            stream
                .entries
                .insert(entry.cursor.as_str().to_string(), entry.clone());
            while stream.entries.len() > self.max_per_stream {
                if let Some((cursor, _)) = stream.entries.pop_first() {
                    stream.evicted_up_to = Some(cursor);
                }
            }
        }
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
        let Some(entries) = state.streams.get(stream) else {
            return Ok(StreamRead::default());
        };
        let mut read = StreamRead {
            incomplete: entries
                .evicted_up_to
                .as_deref()
                .is_some_and(|evicted| evicted > after),
            ..StreamRead::default()
        };
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
            read.entries.push(entry.clone());
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_passes_the_history_contract() {
        super::super::contract::run_all(|max| async move { MemoryHistoryStore::new(max) }).await;
    }

    #[tokio::test]
    async fn streams_with_nothing_live_are_swept() {
        let store = MemoryHistoryStore::new(10);
        let past = OffsetDateTime::now_utc().unix_timestamp() - 1;
        for i in 0..SWEEP_EVERY {
            let entry = HistoryEntry {
                cursor: super::super::Cursor::new(OffsetDateTime::now_utc()),
                id: format!("m{i}"),
                frame: "{}".into(),
                expires_at: past,
            };
            let stream =
                Stream::Tenant(switchboard_model::TenantId::parse(format!("t{i}")).unwrap());
            store.append(&entry, &[stream]).await.unwrap();
        }
        assert!(store.stream_count() <= 1, "{}", store.stream_count());
    }
}
