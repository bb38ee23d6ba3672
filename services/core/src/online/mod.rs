//! Who is online, per user, for the presence events (docs/design.md: Events): each
//! (tenant, user) has the set of its live connections, a `version` that strictly increases
//! with every change of that set, and the last status the backend was told (`online` or
//! `offline`).
//!
//! Every change is one atomic, conditional write keyed by the connection (DynamoDB
//! `UpdateItem` with `attribute_not_exists(#c)` / `attribute_exists(#c)`; memory: one lock),
//! so the same change applied twice (a stream record or queue message delivered again)
//! changes nothing and answers what the first one did — never a read-then-write.
//!
//! [`OnlineStore`] is the port; [`MemoryOnlineStore`] the in-process adapter, bounded (its
//! module says what it evicts and how versions stay increasing across an eviction; the
//! DynamoDB one, `DynamoOnlineStore`, lives in `switchboard-aws`, items `O#<tenant>` /
//! `<user>` of the history table, never evicted). [`contract`] is the behaviour every
//! adapter must show.

#[cfg(any(test, feature = "testkit"))]
pub mod contract;
mod memory;

pub use memory::{MemoryOnlineStore, MAX_MEMORY_ONLINE_USERS};

use async_trait::async_trait;
use switchboard_model::{ConnectionId, TenantId, UserId};

/// The status the backend was last told about a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    /// Nothing yet (a user never seen).
    Nothing,
    Online,
    Offline,
}

/// What [`OnlineStore::add`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// The connection is new: the user now has `connections`, at `version`; `before` is
    /// what the backend had been told before this change (`Online` with 0 connections
    /// before means an offline was pending: a reconnect inside the delay).
    New {
        connections: u64,
        version: u64,
        connections_before: u64,
        before: Reported,
    },
    /// The connection was already there (the change was applied before): the version its
    /// add was given, and the user's connections now.
    Known { connections: u64, version: u64 },
}

/// What [`OnlineStore::remove`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// The connection is gone now: `connections` are left, at `version`.
    Removed { connections: u64, version: u64 },
    /// The connection was not there (removed before, or never added): the user's state
    /// now.
    Unknown {
        connections: u64,
        version: u64,
        reported: Reported,
    },
}

/// What [`OnlineStore::mark_offline`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marked {
    /// The user had no connection at exactly `version` and had been reported online: now
    /// reported offline. Emit `user.offline` at `version`.
    Marked,
    /// Already reported offline at exactly `version` (this check ran before): emit again
    /// (same event id; receivers dedupe).
    Already,
    /// Something changed since (a connection, a newer version), or never online: nothing.
    Stale,
}

/// Why an online-state operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OnlineError {
    #[error("online store unavailable: {0}")]
    Unavailable(String),
    /// The memory store is full of users with live connections or pending offline.
    #[error("online store full: {0}")]
    Full(String),
}

/// The online-state port.
#[async_trait]
pub trait OnlineStore: Send + Sync {
    /// Adds `connection` to the user's set: version + 1, reported `online`. Idempotent:
    /// a connection already in the set changes nothing (`Added::Known`).
    async fn add(
        &self,
        tenant: &TenantId,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<Added, OnlineError>;
    /// Removes `connection` from the user's set: version + 1. Idempotent: a connection not
    /// in the set changes nothing (`Removed::Unknown`).
    async fn remove(
        &self,
        tenant: &TenantId,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<Removed, OnlineError>;
    /// Sets reported `offline` if and only if the user has no connection, is at exactly
    /// `version` and is reported `online` (one conditional write).
    async fn mark_offline(
        &self,
        tenant: &TenantId,
        user: &UserId,
        version: u64,
    ) -> Result<Marked, OnlineError>;
}
