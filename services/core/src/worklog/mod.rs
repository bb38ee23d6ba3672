//! Which units of delivery work have run (docs/design.md: Fan-out at any size, runs
//! once). SQS delivers at least once: a duplicate, a batch returned whole after a timeout,
//! or a redelivery after a crash may bring back a message or work item that already ran.
//! Before a unit runs the publisher [`WorkLog::begin`]s it; when it has handed on all its
//! work (continuation, retry and remainder items enqueued, posts made) it
//! [`WorkLog::finish`]es it, and a later copy is skipped. So a redelivered broadcast never
//! starts its segments again and a page never re-runs its chain.
//!
//! A unit is claimed with a lease (until its invocation's deadline): a copy arriving while
//! the lease holds is a duplicate of a unit still running and is skipped too; once the
//! lease has passed without `finish` the run died, and the next copy runs it again (posts it
//! made before dying are then sent again — at least once, as SQS itself). A run that ends
//! in a redelivery of its own ([`WorkLog::abandon`]) gives its claim back.
//!
//! [`MemoryWorkLog`] keeps the log in this process (the local queue's messages live there
//! too); the DynamoDB adapter lives in `switchboard-aws`. [`contract`] is the behaviour
//! every adapter must show.

mod memory;

#[cfg(any(test, feature = "testkit"))]
pub mod contract;

pub use memory::{MemoryWorkLog, MAX_MEMORY_UNITS};

use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use switchboard_model::TenantId;
use time::OffsetDateTime;

/// How long a finished unit is remembered: a copy delivered later runs again. SQS gives up
/// on a message after `maxReceiveCount` (5) receives a visibility timeout apart, so copies
/// come within hours; a day is ample.
pub const DONE_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// The claim of a unit run without a deadline (`serve`): runs there are not cut off, so
/// this only bounds how long a lost claim blocks a copy.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15 * 60);

/// Which unit: the message's tenant (`None` for a broadcast), its id, and the unit within
/// the message (`message` for the published message itself, a digest of the body for a
/// work item).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnitKey {
    pub tenant: Option<TenantId>,
    pub message_id: String,
    pub unit: String,
}

impl UnitKey {
    /// The unit of a published message (its envelope, run in place).
    pub fn message(tenant: Option<TenantId>, message_id: &str) -> Self {
        Self {
            tenant,
            message_id: message_id.to_string(),
            unit: "message".to_string(),
        }
    }

    /// The unit of a work item: the digest of its exact body. A continuation, retry or
    /// remainder is enqueued with the same body however often its parent runs, so every copy
    /// of it has one key.
    pub fn work_item(tenant: Option<TenantId>, message_id: &str, body: &str) -> Self {
        let digest = Sha256::digest(body.as_bytes());
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        Self {
            tenant,
            message_id: message_id.to_string(),
            unit: format!("item-{hex}"),
        }
    }

    /// The partition key, `W#<tenant|*>#<id>` (tenant ids never hold `#`, no tenant is
    /// named `*`); the unit is the sort key.
    pub fn storage_key(&self) -> String {
        match &self.tenant {
            Some(tenant) => format!("W#{tenant}#{}", self.message_id),
            None => format!("W#*#{}", self.message_id),
        }
    }
}

/// What [`WorkLog::begin`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begun {
    /// Claimed until the lease: run it.
    Claimed,
    /// Already finished: skip this copy.
    Done,
    /// Another run holds a live claim: skip this copy (that run finishes it, or its own
    /// redelivery runs it again).
    Running,
}

/// Why a work-log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkLogError {
    #[error("work log unavailable: {0}")]
    Unavailable(String),
}

/// The work-log port.
#[async_trait]
pub trait WorkLog: Send + Sync {
    /// Claims `key` until `lease_until` unless it is done or claimed by a lease that has not
    /// passed at `now` (one conditional write: of concurrent begins exactly one claims).
    async fn begin(
        &self,
        key: &UnitKey,
        lease_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Begun, WorkLogError>;
    /// Marks `key` done, remembered until `expires_at`.
    async fn finish(&self, key: &UnitKey, expires_at: OffsetDateTime) -> Result<(), WorkLogError>;
    /// Gives back the claim `begin` took with `lease_until` (a newer claim or a finished
    /// unit is left alone), so a redelivery runs the unit again.
    async fn abandon(&self, key: &UnitKey, lease_until: OffsetDateTime)
        -> Result<(), WorkLogError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_tenants_broadcasts_and_bodies() {
        let acme = Some(TenantId::parse("acme").unwrap());
        assert_eq!(
            UnitKey::message(acme.clone(), "m-1").storage_key(),
            "W#acme#m-1"
        );
        assert_eq!(UnitKey::message(None, "m-1").storage_key(), "W#*#m-1");
        let a = UnitKey::work_item(acme.clone(), "m-1", "{\"shard\":1}");
        let b = UnitKey::work_item(acme.clone(), "m-1", "{\"shard\":2}");
        assert_ne!(a, b);
        assert_eq!(a, UnitKey::work_item(acme, "m-1", "{\"shard\":1}"));
        assert_eq!(a.unit.len(), "item-".len() + 32);
    }
}
