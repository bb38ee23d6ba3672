#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failed expectation is the test failing
//! The behaviour every [`HistoryStore`] adapter must show. Each check takes a fresh, empty
//! store made by the factory with a per-stream bound (the memory store's; a store without
//! such a bound ignores it).

use std::future::Future;

use switchboard_model::{TenantId, UserId};
use time::OffsetDateTime;

use super::{Cursor, HistoryEntry, HistoryStore, Stream};

fn entry(id: &str, ttl_secs: i64) -> HistoryEntry {
    let now = OffsetDateTime::now_utc();
    let cursor = Cursor::new(now);
    HistoryEntry {
        frame: format!(r#"{{"id":"{id}","cursor":"{cursor}","data":1}}"#).into(),
        cursor,
        id: id.to_string(),
        expires_at: now.unix_timestamp() + ttl_secs,
    }
}

fn user(tenant: &str, user: &str) -> Stream {
    Stream::User(
        TenantId::parse(tenant).unwrap(),
        UserId::parse(user).unwrap(),
    )
}

fn tenant(id: &str) -> Stream {
    Stream::Tenant(TenantId::parse(id).unwrap())
}

fn ids(read: &super::StreamRead) -> Vec<String> {
    read.entries.iter().map(|e| e.id.clone()).collect()
}

/// Entries come back after the cursor, oldest first, from their own stream only.
pub async fn reads_after_a_cursor_oldest_first(store: &dyn HistoryStore) {
    let first = entry("m1", 300);
    store
        .append(&first, &[user("acme", "alice")])
        .await
        .unwrap();
    let mut later = Vec::new();
    for i in 2..=5 {
        let e = entry(&format!("m{i}"), 300);
        store
            .append(&e, &[user("acme", "alice"), user("acme", "bob")])
            .await
            .unwrap();
        later.push(e);
    }
    store
        .append(&entry("other", 300), &[user("globex", "alice")])
        .await
        .unwrap();
    store
        .append(&entry("tenant", 300), &[tenant("acme")])
        .await
        .unwrap();

    let all = store
        .read_after(&user("acme", "alice"), &Cursor::floor_at(0), 100)
        .await
        .unwrap();
    assert_eq!(ids(&all), ["m1", "m2", "m3", "m4", "m5"]);
    assert!(!all.incomplete);
    assert_eq!(all.entries[0], first, "stored as given");
    let after = store
        .read_after(&user("acme", "alice"), first.cursor.as_str(), 100)
        .await
        .unwrap();
    assert_eq!(ids(&after), ["m2", "m3", "m4", "m5"]);
    let bob = store
        .read_after(&user("acme", "bob"), &Cursor::floor_at(0), 100)
        .await
        .unwrap();
    assert_eq!(ids(&bob), ["m2", "m3", "m4", "m5"]);
    let none = store
        .read_after(&user("acme", "carol"), &Cursor::floor_at(0), 100)
        .await
        .unwrap();
    assert!(none.entries.is_empty());
    let global = store
        .read_after(&Stream::Global, &Cursor::floor_at(0), 100)
        .await
        .unwrap();
    assert!(
        global.entries.is_empty(),
        "nothing crosses into another stream"
    );
}

/// A read is bounded, and says when more followed.
pub async fn a_read_over_its_limit_is_incomplete(store: &dyn HistoryStore) {
    for i in 0..7 {
        store
            .append(&entry(&format!("m{i}"), 300), &[tenant("acme")])
            .await
            .unwrap();
    }
    let read = store
        .read_after(&tenant("acme"), &Cursor::floor_at(0), 5)
        .await
        .unwrap();
    assert_eq!(ids(&read), ["m0", "m1", "m2", "m3", "m4"]);
    assert!(read.incomplete);
    let exact = store
        .read_after(&tenant("acme"), &Cursor::floor_at(0), 7)
        .await
        .unwrap();
    assert_eq!(exact.entries.len(), 7);
    assert!(!exact.incomplete);
}

/// Entries past their `expiresAt` are never returned.
pub async fn expired_entries_are_not_returned(store: &dyn HistoryStore) {
    store
        .append(&entry("old", -1), &[Stream::Global])
        .await
        .unwrap();
    store
        .append(&entry("new", 300), &[Stream::Global])
        .await
        .unwrap();
    let read = store
        .read_after(&Stream::Global, &Cursor::floor_at(0), 10)
        .await
        .unwrap();
    assert_eq!(ids(&read), ["new"]);
}

/// A store vouches for what it recorded and still holds: a reader who saw one of its
/// entries is never told it lost something (a memory store vouches from its start, a
/// DynamoDB table for its whole retention).
pub async fn a_reader_of_held_entries_lost_nothing(store: &dyn HistoryStore) {
    let first = entry("m1", 300);
    store.append(&first, &[tenant("acme")]).await.unwrap();
    store
        .append(&entry("m2", 300), &[tenant("acme")])
        .await
        .unwrap();
    let read = store
        .read_after(&tenant("acme"), first.cursor.as_str(), 10)
        .await
        .unwrap();
    assert_eq!(ids(&read), ["m2"]);
    assert!(!read.lost_after(first.cursor.as_str()), "{read:?}");
    let empty = store
        .read_after(&tenant("nobody"), first.cursor.as_str(), 10)
        .await
        .unwrap();
    assert!(!empty.lost_after(first.cursor.as_str()), "{empty:?}");
}

/// Runs every check, each on a fresh store from `make` (bounded at 1,000 per stream).
pub async fn run_all<S, F, Fut>(make: F)
where
    S: HistoryStore,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = S>,
{
    reads_after_a_cursor_oldest_first(&make(1_000).await).await;
    a_read_over_its_limit_is_incomplete(&make(1_000).await).await;
    expired_entries_are_not_returned(&make(1_000).await).await;
    a_reader_of_held_entries_lost_nothing(&make(1_000).await).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::MemoryHistoryStore;

    /// The memory store's own bound: the oldest entries go, and a reader after a cursor
    /// older than what was dropped learns it missed something.
    #[tokio::test]
    async fn the_memory_bound_drops_the_oldest_and_says_so() {
        let store = MemoryHistoryStore::new(3);
        let first = entry("m0", 300);
        store.append(&first, &[tenant("acme")]).await.unwrap();
        for i in 1..5 {
            store
                .append(&entry(&format!("m{i}"), 300), &[tenant("acme")])
                .await
                .unwrap();
        }
        let read = store
            .read_after(&tenant("acme"), first.cursor.as_str(), 10)
            .await
            .unwrap();
        assert_eq!(ids(&read), ["m2", "m3", "m4"]);
        assert!(!read.incomplete, "nothing past the limit");
        assert!(
            read.lost_after(first.cursor.as_str()),
            "m1 was dropped after the reader's cursor"
        );
        let recent = store
            .read_after(&tenant("acme"), read.entries[0].cursor.as_str(), 10)
            .await
            .unwrap();
        assert_eq!(ids(&recent), ["m3", "m4"]);
        assert!(!recent.lost_after(read.entries[0].cursor.as_str()));
    }

    /// History in memory starts empty at each start: a cursor from before it is not
    /// vouched for, one made since is.
    #[tokio::test]
    async fn a_memory_store_does_not_vouch_for_before_its_start() {
        let before = Cursor::new(OffsetDateTime::now_utc() - time::Duration::seconds(1));
        let store = MemoryHistoryStore::new(10);
        let read = store
            .read_after(&tenant("acme"), before.as_str(), 10)
            .await
            .unwrap();
        assert!(read.entries.is_empty());
        assert!(read.lost_after(before.as_str()));
        let since = Cursor::new(OffsetDateTime::now_utc());
        assert!(!read.lost_after(since.as_str()));
    }

    /// Beyond `max_bytes` the oldest entries of the tenant holding the most are evicted,
    /// streams left empty go with them, and every reader of that tenant from before its
    /// newest eviction learns it — even of a stream that is gone.
    #[tokio::test]
    async fn the_byte_budget_evicts_the_oldest_and_says_so() {
        let store = MemoryHistoryStore::bounded(1_000, 1024 * 1024);
        let seen = entry("seen", 300);
        store.append(&seen, &[tenant("acme")]).await.unwrap();
        let mut big = entry("big-0", 300);
        for i in 0..20 {
            big = entry(&format!("big-{i}"), 300);
            big.frame = "x".repeat(100 * 1024).into();
            let stream = if i % 2 == 0 {
                tenant("acme")
            } else {
                tenant("globex")
            };
            store.append(&big, &[stream]).await.unwrap();
            assert!(store.bytes() <= 1024 * 1024);
        }
        for stream in [tenant("acme"), tenant("globex"), user("acme", "gone")] {
            let read = store
                .read_after(&stream, seen.cursor.as_str(), 100)
                .await
                .unwrap();
            assert!(read.lost_after(seen.cursor.as_str()), "{stream:?}");
            assert!(!read.lost_after(big.cursor.as_str()), "{stream:?}");
        }
        let acme = store
            .read_after(&tenant("acme"), seen.cursor.as_str(), 100)
            .await
            .unwrap();
        assert!(!ids(&acme).contains(&"seen".to_string()));
        assert!(ids(&acme).len() < 10, "{:?}", ids(&acme));
    }
}
