//! `{"action":"resume","since":<cursor>}`: what a reconnecting client missed.
//!
//! The caller's three streams (its user's, its tenant's, the global one) are read from
//! [`RESUME_OVERLAP`] before `since` (a concurrent publisher may have recorded an earlier
//! cursor after `since` was delivered), merged oldest first, without the entry at `since`
//! itself, and capped at `resume_max` messages and `resume_max_bytes` of frames.
//! `complete` is false when `since` is older than the retention, when `since` is older than
//! what a stream's store vouches for ([`StreamRead::vouched_after`]: the memory store's
//! start or its newest eviction — compared with `since`, not with the overlap's start), or
//! when more were missed than the caps let through: the client should then reload its state.
//!
//! The frames are the store's own (`Arc<str>`): a resume holds references, never a copy of
//! the history, and an edge sends them one by one.

use std::sync::Arc;
use std::time::Duration;

use switchboard_model::{ServerReply, TenantId, UserId};
use time::OffsetDateTime;

use super::cursor::epoch_millis;
use super::{
    Cursor, CursorError, HistoryConfig, HistoryEntry, HistoryError, HistoryStore, Stream,
    StreamRead,
};

/// How far before `since` a resume reads again (clients dedupe by id).
pub const RESUME_OVERLAP: Duration = Duration::from_secs(5);

/// What a resume sends: the recorded frames, oldest first, then [`Self::resumed_frame`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeOutcome {
    /// Shared with the store: sending them copies one frame at a time at most.
    pub frames: Vec<Arc<str>>,
    pub complete: bool,
}

/// `{"type":"resumed","count":<sent>,"complete":false}`: the answer when sending stopped
/// early (out of time) after `sent` frames.
pub fn resumed_incomplete(sent: usize) -> String {
    ServerReply::Resumed {
        count: sent,
        complete: false,
    }
    .to_json()
}

impl ResumeOutcome {
    /// `{"type":"resumed","count":n,"complete":…}`.
    pub fn resumed_frame(&self) -> String {
        ServerReply::Resumed {
            count: self.frames.len(),
            complete: self.complete,
        }
        .to_json()
    }
}

/// Why a resume could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// The client's cursor is malformed (`invalid_cursor`).
    #[error(transparent)]
    InvalidCursor(#[from] CursorError),
    #[error(transparent)]
    Unavailable(#[from] HistoryError),
}

/// The frames a connection of `user` in `tenant` missed since `since`. With history off
/// (`config.ttl` zero) nothing is recorded, so nothing is sent and `complete` is false.
pub async fn resume(
    store: &dyn HistoryStore,
    config: &HistoryConfig,
    tenant: &TenantId,
    user: &UserId,
    since: &str,
    now: OffsetDateTime,
) -> Result<ResumeOutcome, ResumeError> {
    let since = Cursor::parse(since)?;
    if !config.enabled() {
        return Ok(ResumeOutcome {
            frames: Vec::new(),
            complete: false,
        });
    }
    let overlap_ms = i64::try_from(RESUME_OVERLAP.as_millis()).unwrap_or(i64::MAX);
    let from = Cursor::floor_at(since.millis().saturating_sub(overlap_ms));
    // Enough for the overlap window and one more than the cap of missed entries.
    let limit = config.resume_max.saturating_mul(2).saturating_add(1);
    let mut complete = true;
    let mut entries: Vec<HistoryEntry> = Vec::new();
    for stream in Stream::of_connection(tenant, user) {
        let read: StreamRead = store.read_after(&stream, &from, limit).await?;
        complete &= !read.incomplete && !read.lost_after(since.as_str());
        entries.extend(read.entries.into_iter().filter(|e| e.cursor != since));
    }
    entries.sort_by(|a, b| a.cursor.cmp(&b.cursor));
    entries.dedup_by(|a, b| a.cursor == b.cursor);
    let ttl_ms = i64::try_from(config.ttl.as_millis()).unwrap_or(i64::MAX);
    if since.millis() < epoch_millis(now).saturating_sub(ttl_ms) {
        complete = false;
    }
    let missed = entries.iter().filter(|e| e.cursor > since).count();
    if missed > config.resume_max {
        complete = false;
    }
    entries.truncate(config.resume_max);
    let mut bytes = 0usize;
    let mut frames = Vec::with_capacity(entries.len());
    for entry in entries {
        bytes = bytes.saturating_add(entry.frame.len());
        if bytes > config.resume_max_bytes {
            complete = false;
            break;
        }
        frames.push(entry.frame);
    }
    Ok(ResumeOutcome { frames, complete })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::MemoryHistoryStore;

    fn t(id: &str) -> TenantId {
        TenantId::parse(id).unwrap()
    }

    fn u(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    async fn record(
        store: &MemoryHistoryStore,
        id: &str,
        at: OffsetDateTime,
        streams: &[Stream],
    ) -> Cursor {
        let cursor = Cursor::new(at);
        let entry = HistoryEntry {
            frame: format!(r#"{{"id":"{id}","cursor":"{cursor}"}}"#).into(),
            cursor: cursor.clone(),
            id: id.into(),
            expires_at: at.unix_timestamp() + 300,
        };
        store.append(&entry, streams).await.unwrap();
        cursor
    }

    /// Resumes `acme`/`alice` from `since`.
    async fn alice(
        store: &MemoryHistoryStore,
        config: &HistoryConfig,
        since: &str,
        now: OffsetDateTime,
    ) -> ResumeOutcome {
        resume(store, config, &t("acme"), &u("alice"), since, now)
            .await
            .unwrap()
    }

    fn ids(outcome: &ResumeOutcome) -> Vec<String> {
        outcome
            .frames
            .iter()
            .map(|f| {
                serde_json::from_str::<serde_json::Value>(f.as_ref()).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    #[tokio::test]
    async fn merges_the_three_streams_oldest_first_after_the_cursor() {
        let store = MemoryHistoryStore::new(100);
        let now = OffsetDateTime::now_utc();
        let since = record(&store, "seen", now, &[Stream::User(t("acme"), u("alice"))]).await;
        let later = now + time::Duration::milliseconds(10);
        record(&store, "to-tenant", later, &[Stream::Tenant(t("acme"))]).await;
        record(
            &store,
            "to-all",
            later + time::Duration::milliseconds(1),
            &[Stream::Global],
        )
        .await;
        record(
            &store,
            "to-alice",
            later + time::Duration::milliseconds(2),
            &[Stream::User(t("acme"), u("alice"))],
        )
        .await;
        record(
            &store,
            "to-bob",
            later,
            &[Stream::User(t("acme"), u("bob"))],
        )
        .await;
        record(
            &store,
            "other-tenant",
            later,
            &[Stream::Tenant(t("globex"))],
        )
        .await;
        let outcome = alice(&store, &HistoryConfig::default(), since.as_str(), now).await;
        assert_eq!(ids(&outcome), ["to-tenant", "to-all", "to-alice"]);
        assert!(outcome.complete);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&outcome.resumed_frame()).unwrap(),
            serde_json::json!({"type":"resumed","count":3,"complete":true})
        );
    }

    #[tokio::test]
    async fn resends_the_overlap_but_never_the_cursor_itself() {
        let store = MemoryHistoryStore::new(100);
        let now = OffsetDateTime::now_utc();
        let stream = [Stream::Tenant(t("acme"))];
        record(
            &store,
            "long-ago",
            now - time::Duration::seconds(30),
            &stream,
        )
        .await;
        record(
            &store,
            "just-before",
            now - time::Duration::seconds(2),
            &stream,
        )
        .await;
        let since = record(&store, "seen", now, &stream).await;
        let outcome = alice(&store, &HistoryConfig::default(), since.as_str(), now).await;
        assert_eq!(ids(&outcome), ["just-before"]);
    }

    #[tokio::test]
    async fn past_retention_or_over_the_cap_is_incomplete() {
        let store = MemoryHistoryStore::new(100);
        let now = OffsetDateTime::now_utc();
        let config = HistoryConfig {
            resume_max: 3,
            ..HistoryConfig::default()
        };
        let old = Cursor::new(now - time::Duration::seconds(301));
        let outcome = alice(&store, &config, old.as_str(), now).await;
        assert!(!outcome.complete, "older than the 300 s retention");
        let since = Cursor::new(now);
        for i in 0..4 {
            record(
                &store,
                &format!("m{i}"),
                now + time::Duration::milliseconds(1 + i),
                &[Stream::Global],
            )
            .await;
        }
        let outcome = alice(&store, &config, since.as_str(), now).await;
        assert_eq!(ids(&outcome), ["m0", "m1", "m2"]);
        assert!(!outcome.complete, "4 missed, 3 sent");
    }

    #[tokio::test]
    async fn stops_at_the_byte_cap_and_says_so() {
        let store = MemoryHistoryStore::new(100);
        let now = OffsetDateTime::now_utc();
        let config = HistoryConfig {
            resume_max_bytes: 1_000,
            ..HistoryConfig::default()
        };
        let since = Cursor::new(now);
        for i in 0..10 {
            let cursor = Cursor::new(now + time::Duration::milliseconds(1 + i));
            let entry = HistoryEntry {
                frame: format!(
                    r#"{{"id":"m{i}","cursor":"{cursor}","pad":"{}"}}"#,
                    "x".repeat(200)
                )
                .into(),
                cursor,
                id: format!("m{i}"),
                expires_at: now.unix_timestamp() + 300,
            };
            store.append(&entry, &[Stream::Global]).await.unwrap();
        }
        let outcome = alice(&store, &config, since.as_str(), now).await;
        assert_eq!(
            ids(&outcome),
            ["m0", "m1", "m2"],
            "3 × ~265 B fit in 1,000, not 4"
        );
        assert!(!outcome.complete);
        // The frames are the store's own, not copies.
        let held = store
            .read_after(&Stream::Global, since.as_str(), 1)
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&held.entries[0].frame, &outcome.frames[0]));
    }

    /// A cursor from before the store started (a restart of memory history): the messages
    /// accepted meanwhile are gone, so the resume is incomplete even with nothing to send.
    #[tokio::test]
    async fn a_cursor_from_before_the_store_started_is_incomplete() {
        let now = OffsetDateTime::now_utc();
        let old = Cursor::new(now - time::Duration::seconds(10));
        let store = MemoryHistoryStore::new(100);
        let outcome = alice(&store, &HistoryConfig::default(), old.as_str(), now).await;
        assert_eq!((outcome.frames.len(), outcome.complete), (0, false));
    }

    /// An eviction after `since` is a loss; one inside the overlap before it (read again
    /// only for safety) is not: the vouch point is compared with `since`, not with where
    /// the read started.
    #[tokio::test]
    async fn an_eviction_counts_only_after_since() {
        let store = MemoryHistoryStore::new(2);
        let now = OffsetDateTime::now_utc();
        let stream = [Stream::Tenant(t("acme"))];
        record(&store, "a", now, &stream).await;
        record(&store, "b", now + time::Duration::milliseconds(1), &stream).await;
        let since = record(&store, "c", now + time::Duration::milliseconds(2), &stream).await;
        let config = HistoryConfig::default();
        let outcome = alice(&store, &config, since.as_str(), now).await;
        assert_eq!(ids(&outcome), ["b"], "the overlap, resent");
        assert!(outcome.complete, "\"a\" was evicted before `since`");
        record(&store, "d", now + time::Duration::milliseconds(3), &stream).await;
        record(&store, "e", now + time::Duration::milliseconds(4), &stream).await;
        let outcome = alice(&store, &config, since.as_str(), now).await;
        assert_eq!(ids(&outcome), ["d", "e"]);
        assert!(
            outcome.complete,
            "\"c\" itself was evicted: the client has it"
        );
        record(&store, "f", now + time::Duration::milliseconds(5), &stream).await;
        let outcome = alice(&store, &config, since.as_str(), now).await;
        assert_eq!(ids(&outcome), ["e", "f"]);
        assert!(!outcome.complete, "\"d\", after `since`, was evicted");
    }

    #[tokio::test]
    async fn a_malformed_cursor_is_refused() {
        let store = MemoryHistoryStore::new(10);
        let result = resume(
            &store,
            &HistoryConfig::default(),
            &t("a"),
            &u("b"),
            "yesterday",
            OffsetDateTime::now_utc(),
        )
        .await;
        assert!(matches!(result, Err(ResumeError::InvalidCursor(_))));
    }
}
