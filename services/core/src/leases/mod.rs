//! Leases: how processes sharing a roster learn that one of them died (docs/design.md:
//! Events). A `serve` on the DynamoDB roster with events on renews a lease named after
//! its instance tag (the prefix of its connection ids) every few seconds; the others list
//! the expired leases, and the one that claims an expired lease removes the dead process's
//! connections, so each of its users still ends in `user.offline`.
//!
//! [`LeaseStore`] is the port; [`MemoryLeaseStore`] the in-process adapter (tests; the
//! DynamoDB one, `DynamoLeaseStore`, lives in `switchboard-aws`, items `L#serve` / `<tag>`
//! of the history table). [`contract`] is the behaviour every adapter must show.

#[cfg(any(test, feature = "testkit"))]
pub mod contract;
mod memory;

pub use memory::{MemoryLeaseStore, MAX_MEMORY_LEASES};

use async_trait::async_trait;

/// One process's lease: its instance tag and when the lease ends (epoch milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub tag: String,
    pub until_ms: i64,
}

/// Why a lease operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("lease store unavailable: {0}")]
    Unavailable(String),
}

/// The lease port.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Sets `tag`'s lease to end at `until_ms` (creating it if needed).
    async fn renew(&self, tag: &str, until_ms: i64) -> Result<(), LeaseError>;
    /// Every lease ended by `now_ms` (`until_ms <= now_ms`), by tag.
    async fn expired(&self, now_ms: i64) -> Result<Vec<Lease>, LeaseError>;
    /// Deletes the lease if it still ends exactly at `lease.until_ms` (not renewed since):
    /// `true` for the one caller that deleted it, `false` for every other (one conditional
    /// delete).
    async fn claim(&self, lease: &Lease) -> Result<bool, LeaseError>;
}
