//! History and recovery (docs/design.md: History and resume): every `users`, `tenant`
//! and `broadcast` message is recorded, before its fan-out, in the streams of its
//! recipients — one per user, one per tenant, one global — with a time-ordered
//! [`Cursor`]. A client that reconnects sends `{"action":"resume","since":<cursor>}` and
//! gets what it missed ([`resume`]); where the frames are posted one by one (the AWS
//! `$default` route), [`post_within_budget`] keeps the posts inside the route's time limit.
//!
//! [`HistoryStore`] is the port; [`MemoryHistoryStore`] keeps the newest entries per stream
//! in this process; the DynamoDB adapter lives in `switchboard-aws`. [`contract`] is the
//! behaviour every adapter must show.

mod config;
mod cursor;
mod memory;
mod resume;
mod resume_budget;

#[cfg(any(test, feature = "testkit"))]
pub mod contract;

pub use config::{
    HistoryConfig, DEFAULT_HISTORY_MAX_BYTES, DEFAULT_HISTORY_MAX_PER_STREAM,
    DEFAULT_HISTORY_TTL_SECS, DEFAULT_RESUME_MAX, DEFAULT_RESUME_MAX_BYTES, MAX_HISTORY_TTL_SECS,
};
pub use cursor::{Cursor, CursorError};
pub use memory::MemoryHistoryStore;
pub use resume::{resume, resumed_incomplete, ResumeError, ResumeOutcome, RESUME_OVERLAP};
pub use resume_budget::{
    post_within_budget, ResumeLimits, ResumePosted, ResumeStop, DEFAULT_ATTEMPT_TIMEOUT,
    RESUME_BUDGET, WEBSOCKET_INTEGRATION_TIMEOUT,
};

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_model::{TenantId, UserId};
use time::OffsetDateTime;

/// One stream of recorded messages.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    /// The messages to one user of one tenant (`users` targets).
    User(TenantId, UserId),
    /// The messages to a whole tenant (`tenant` targets).
    Tenant(TenantId),
    /// Broadcasts.
    Global,
}

impl Stream {
    /// The stream's key: `S#<tenant>#U#<user>`, `S#<tenant>` or `S#*`. Ids never hold `#`
    /// and no tenant is named `*`, so keys of different streams never collide.
    pub fn key(&self) -> String {
        match self {
            Stream::User(tenant, user) => format!("S#{tenant}#U#{user}"),
            Stream::Tenant(tenant) => format!("S#{tenant}"),
            Stream::Global => "S#*".to_string(),
        }
    }

    /// The three streams a connection of `user` in `tenant` reads on resume.
    pub fn of_connection(tenant: &TenantId, user: &UserId) -> [Stream; 3] {
        [
            Stream::User(tenant.clone(), user.clone()),
            Stream::Tenant(tenant.clone()),
            Stream::Global,
        ]
    }
}

/// One recorded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub cursor: Cursor,
    /// The message id (clients dedupe by it).
    pub id: String,
    /// The exact text sent to clients (it carries the cursor). Shared: every stream the
    /// entry is in and every resume that sends it hold this one copy.
    pub frame: Arc<str>,
    /// Epoch seconds after which the entry is gone (the table's TTL attribute).
    pub expires_at: i64,
}

impl HistoryEntry {
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now.unix_timestamp()
    }
}

/// The entries of one stream after a cursor, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamRead {
    pub entries: Vec<HistoryEntry>,
    /// True when more entries than the limit follow the cursor: the reader did not see
    /// everything after it.
    pub incomplete: bool,
    /// What the store vouches for: every entry of the stream with a cursor after this bound
    /// (and within its retention) is there; one at or before it may be missing (the memory
    /// store's start, or the newest entry it evicted for room). A reader who last saw a
    /// cursor older than this may have missed something. `None`: the store vouches for its
    /// whole retention (DynamoDB).
    pub vouched_after: Option<String>,
}

impl StreamRead {
    /// Whether a reader who last saw `since` may have missed entries the store no longer
    /// holds (see [`Self::vouched_after`]).
    pub fn lost_after(&self, since: &str) -> bool {
        self.vouched_after
            .as_deref()
            .is_some_and(|vouched| vouched > since)
    }
}

/// Why a history operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history store unavailable: {0}")]
    Unavailable(String),
}

/// The history port.
#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// Records `entry` in each of `streams` (once per stream).
    async fn append(&self, entry: &HistoryEntry, streams: &[Stream]) -> Result<(), HistoryError>;
    /// Up to `limit` live entries of `stream` with a cursor after `after`, oldest first.
    async fn read_after(
        &self,
        stream: &Stream,
        after: &str,
        limit: usize,
    ) -> Result<StreamRead, HistoryError>;
}
