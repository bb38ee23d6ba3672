//! `{"action":"resume","since":<cursor>}`: what a reconnecting client missed.
//!
//! The caller's three streams (its user's, its tenant's, the global one) are read from
//! [`RESUME_OVERLAP`] before `since` (a concurrent publisher may have recorded an earlier
//! cursor after `since` was delivered), merged oldest first, without the entry at `since`
//! itself, and capped at `resume_max`. `complete` is false when `since` is older than the
//! retention, when a stream had dropped entries the client missed, or when more than
//! `resume_max` were missed: the client should then reload its state.

use std::time::Duration;

use switchboard_model::{ServerReply, TenantId, UserId};
use time::OffsetDateTime;

use super::cursor::epoch_millis;
use super::{Cursor, CursorError, HistoryConfig, HistoryEntry, HistoryError, HistoryStore, Stream};

/// How far before `since` a resume reads again (clients dedupe by id).
pub const RESUME_OVERLAP: Duration = Duration::from_secs(5);

/// What a resume sends: the recorded frames, oldest first, then [`Self::resumed_frame`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeOutcome {
    pub frames: Vec<String>,
    pub complete: bool,
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
        let read = store.read_after(&stream, &from, limit).await?;
        complete &= !read.incomplete;
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
    Ok(ResumeOutcome {
        frames: entries.into_iter().map(|e| e.frame).collect(),
        complete,
    })
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
            frame: format!(r#"{{"id":"{id}","cursor":"{cursor}"}}"#),
            cursor: cursor.clone(),
            id: id.into(),
            expires_at: at.unix_timestamp() + 300,
        };
        store.append(&entry, streams).await.unwrap();
        cursor
    }

    fn ids(outcome: &ResumeOutcome) -> Vec<String> {
        outcome
            .frames
            .iter()
            .map(|f| {
                serde_json::from_str::<serde_json::Value>(f).unwrap()["id"]
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
        let outcome = resume(
            &store,
            &HistoryConfig::default(),
            &t("acme"),
            &u("alice"),
            since.as_str(),
            now,
        )
        .await
        .unwrap();
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
        let outcome = resume(
            &store,
            &HistoryConfig::default(),
            &t("acme"),
            &u("alice"),
            since.as_str(),
            now,
        )
        .await
        .unwrap();
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
        let outcome = resume(&store, &config, &t("acme"), &u("alice"), old.as_str(), now)
            .await
            .unwrap();
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
        let outcome = resume(
            &store,
            &config,
            &t("acme"),
            &u("alice"),
            since.as_str(),
            now,
        )
        .await
        .unwrap();
        assert_eq!(ids(&outcome), ["m0", "m1", "m2"]);
        assert!(!outcome.complete, "4 missed, 3 sent");
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
