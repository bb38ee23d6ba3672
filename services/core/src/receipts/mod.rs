//! Delivery receipts and idempotent publish (docs/design.md: Receipts).
//!
//! Every accepted message has a [`Receipt`] keyed by its tenant (`*` for a broadcast) and
//! id. The publish API writes it `queued` with a conditional [`ReceiptStore::create`] — a
//! second publish of the same id in the same tenant finds it and enqueues nothing. The
//! publisher adds each unit of work's counts with [`ReceiptStore::record`], atomically,
//! and keeps a `pending` count of the work items still outstanding (`+n` before they are
//! enqueued, `-1` as each one finishes), so "every page is done" needs no read-then-write.
//! The status is derived from the stored counts when the receipt is read
//! ([`Receipt::status`]), so concurrent pages never overwrite each other's view.
//!
//! [`MemoryReceiptStore`] keeps receipts in this process; the DynamoDB adapter lives in
//! `switchboard-aws`. [`contract`] is the behaviour every adapter must show.

mod config;
mod memory;

#[cfg(any(test, feature = "testkit"))]
pub mod contract;

pub use config::{
    ReceiptConfig, DEFAULT_RECEIPT_TTL_SECS, MAX_MEMORY_RECEIPTS, MAX_RECEIPT_TTL_SECS,
};
pub use memory::MemoryReceiptStore;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use switchboard_model::{Target, TenantId};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Which receipt: the message's tenant (`None` for a broadcast) and its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReceiptKey {
    pub tenant: Option<TenantId>,
    pub id: String,
}

impl ReceiptKey {
    pub fn new(tenant: Option<TenantId>, id: impl Into<String>) -> Self {
        Self {
            tenant,
            id: id.into(),
        }
    }

    /// The key of the message `id` sent to `target`.
    pub fn of(target: &Target, id: &str) -> Self {
        Self::new(target.tenant().cloned(), id)
    }

    /// The storage key, `R#<tenant|*>#<id>`. Tenant ids never hold `#` and no tenant is
    /// named `*`, so the first `#` after `R#` always ends the tenant.
    pub fn storage_key(&self) -> String {
        match &self.tenant {
            Some(tenant) => format!("R#{tenant}#{}", self.id),
            None => format!("R#*#{}", self.id),
        }
    }
}

/// A receipt's status (docs/design.md: Receipts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptStatus {
    /// Accepted, not yet picked up by the publisher.
    Queued,
    /// Pages or retries are still outstanding.
    Delivering,
    /// Every matched connection got the frame or was gone.
    Delivered,
    /// Some posts failed (for good once nothing is outstanding; while retries are pending
    /// they may still succeed).
    Partial,
    /// Dead-lettered (the message, or the connections that failed for good).
    Dead,
    /// Its `expiresAt` passed before it was delivered.
    Expired,
    /// Done, and it reached nobody: no connection matched and no device was pushed to.
    Unmatched,
}

impl ReceiptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::Queued => "queued",
            ReceiptStatus::Delivering => "delivering",
            ReceiptStatus::Delivered => "delivered",
            ReceiptStatus::Partial => "partial",
            ReceiptStatus::Dead => "dead",
            ReceiptStatus::Expired => "expired",
            ReceiptStatus::Unmatched => "unmatched",
        }
    }
}

/// A status that, once set, wins over the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminal {
    Dead,
    Expired,
}

impl Terminal {
    pub fn as_str(self) -> &'static str {
        match self {
            Terminal::Dead => "dead",
            Terminal::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "dead" => Some(Terminal::Dead),
            "expired" => Some(Terminal::Expired),
            _ => None,
        }
    }
}

/// One message's receipt, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub key: ReceiptKey,
    /// The message's target as published (absent only when the publisher saw nothing but
    /// work items of a message whose receipt had already gone).
    pub target: Option<Value>,
    pub matched: i64,
    pub delivered: i64,
    pub gone: i64,
    /// Posts failing now: added when a post fails after its retries, taken back when a
    /// retry item gets it through.
    pub failed: i64,
    /// Web Push notifications the push services accepted (docs/design.md: Web Push).
    pub pushed: i64,
    /// Sends that failed for good (refused, too large, or still failing after the last
    /// attempt): a push is best-effort.
    pub push_failed: i64,
    /// Devices deleted because their push service answered 404 or 410.
    pub devices_pruned: i64,
    /// Work items enqueued and not yet finished.
    pub pending: i64,
    /// Whether the publisher has finished the message itself (its first unit of work).
    pub started: bool,
    pub terminal: Option<Terminal>,
    pub accepted_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Epoch seconds after which the receipt is gone (the table's TTL attribute).
    pub expires_at: i64,
}

impl Receipt {
    /// A new receipt for a message accepted `now`, kept for `ttl`.
    pub fn queued(key: ReceiptKey, target: &Target, now: OffsetDateTime, ttl: Duration) -> Self {
        Self::from_seed(key, &Seed::new(Some(target), now, ttl))
    }

    /// The receipt a first [`ReceiptStore::record`] of a missing key starts from.
    pub fn from_seed(key: ReceiptKey, seed: &Seed) -> Self {
        Self {
            key,
            target: seed.target.clone(),
            matched: 0,
            delivered: 0,
            gone: 0,
            failed: 0,
            pushed: 0,
            push_failed: 0,
            devices_pruned: 0,
            pending: 0,
            started: false,
            terminal: None,
            accepted_at: seed.now,
            updated_at: seed.now,
            expires_at: seed.expires_at,
        }
    }

    /// Adds `progress` (what [`ReceiptStore::record`] does, atomically, in every adapter).
    pub fn apply(&mut self, progress: &Progress, now: OffsetDateTime) {
        self.matched += progress.matched;
        self.delivered += progress.delivered;
        self.gone += progress.gone;
        self.failed += progress.failed;
        self.pushed += progress.pushed;
        self.push_failed += progress.push_failed;
        self.devices_pruned += progress.devices_pruned;
        self.pending += progress.pending;
        self.started |= progress.started;
        if progress.terminal.is_some() {
            self.terminal = progress.terminal;
        }
        self.updated_at = now;
    }

    /// The status the counts say, and whether it is final: a terminal mark wins (final);
    /// then failing posts make it `partial` (final once nothing is outstanding: no retry
    /// is left to get them through); once the message and every work item are done,
    /// `unmatched` when it reached nobody (no connection matched, nothing pushed), else
    /// `delivered` (both final); `queued` until the publisher first touches it;
    /// `delivering` otherwise. The one place both are derived.
    pub fn state(&self) -> (ReceiptStatus, bool) {
        match self.terminal {
            Some(Terminal::Dead) => return (ReceiptStatus::Dead, true),
            Some(Terminal::Expired) => return (ReceiptStatus::Expired, true),
            None => {}
        }
        let done = self.started && self.pending <= 0;
        if self.failed > 0 {
            (ReceiptStatus::Partial, done)
        } else if done && self.matched <= 0 && self.pushed <= 0 {
            (ReceiptStatus::Unmatched, true)
        } else if done {
            (ReceiptStatus::Delivered, true)
        } else if !self.started
            && self.pending == 0
            && self.matched == 0
            && self.delivered == 0
            && self.gone == 0
        {
            (ReceiptStatus::Queued, false)
        } else {
            (ReceiptStatus::Delivering, false)
        }
    }

    /// The status the counts say ([`Receipt::state`]).
    pub fn status(&self) -> ReceiptStatus {
        self.state().0
    }

    /// Whether nothing more will change the receipt ([`Receipt::state`]).
    pub fn is_final(&self) -> bool {
        self.state().1
    }

    /// Whether the receipt is past its time at `now`.
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now.unix_timestamp()
    }

    /// The JSON the API answers: `{"id","tenant","target","status","final","matched",
    /// "delivered","gone","failed","pushed","pushFailed","devicesPruned","acceptedAt",
    /// "updatedAt"}`; `tenant` is `null` for a broadcast.
    pub fn to_json(&self) -> Value {
        let at = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
        let (status, is_final) = self.state();
        json!({
            "id": self.key.id,
            "tenant": self.key.tenant.as_ref().map(TenantId::as_str),
            "target": self.target.clone().unwrap_or(Value::Null),
            "status": status.as_str(),
            "final": is_final,
            "matched": self.matched.max(0),
            "delivered": self.delivered.max(0),
            "gone": self.gone.max(0),
            "failed": self.failed.max(0),
            "pushed": self.pushed.max(0),
            "pushFailed": self.push_failed.max(0),
            "devicesPruned": self.devices_pruned.max(0),
            "acceptedAt": at(self.accepted_at),
            "updatedAt": at(self.updated_at),
        })
    }
}

/// What one unit of the publisher's work adds to a receipt. Counts are deltas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub matched: i64,
    pub delivered: i64,
    pub gone: i64,
    pub failed: i64,
    pub pushed: i64,
    pub push_failed: i64,
    pub devices_pruned: i64,
    pub pending: i64,
    /// Marks the message itself as processed.
    pub started: bool,
    pub terminal: Option<Terminal>,
}

impl Progress {
    /// Only a change of the outstanding work items.
    pub fn pending(delta: i64) -> Self {
        Self {
            pending: delta,
            ..Self::default()
        }
    }
}

/// What a receipt that does not exist yet starts with when the publisher records into it
/// (a body sent straight to the queue, without the publish API).
#[derive(Debug, Clone, PartialEq)]
pub struct Seed {
    pub target: Option<Value>,
    pub now: OffsetDateTime,
    pub expires_at: i64,
}

impl Seed {
    pub fn new(target: Option<&Target>, now: OffsetDateTime, ttl: Duration) -> Self {
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        Self {
            target: target.and_then(|t| serde_json::to_value(t).ok()),
            now,
            expires_at: now.unix_timestamp().saturating_add(ttl),
        }
    }
}

/// What [`ReceiptStore::create`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// The receipt was written: the message is new.
    New,
    /// A live receipt of that key already existed; nothing was written.
    Existing(Receipt),
}

/// Why a receipt operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    #[error("receipt store unavailable: {0}")]
    Unavailable(String),
}

/// The receipt port.
#[async_trait]
pub trait ReceiptStore: Send + Sync {
    /// Writes `receipt` unless a live one of its key exists (one conditional write, never a
    /// read-then-write): of concurrent creates of one key exactly one answers `New`.
    async fn create(&self, receipt: &Receipt) -> Result<Created, ReceiptError>;
    /// The live receipt of `key`.
    async fn get(&self, key: &ReceiptKey) -> Result<Option<Receipt>, ReceiptError>;
    /// Adds `progress` atomically and answers the new totals; a missing receipt is created
    /// from `seed` first (in the same write).
    async fn record(
        &self,
        key: &ReceiptKey,
        seed: &Seed,
        progress: &Progress,
    ) -> Result<Receipt, ReceiptError>;
    /// Deletes the receipt if the publisher has not touched it yet (still `queued`):
    /// the publish API's undo when its enqueue failed. Answers whether it deleted.
    async fn delete_if_queued(&self, key: &ReceiptKey) -> Result<bool, ReceiptError>;
}

/// A receipt store with its retention: what the publish API and the publisher hold when
/// receipts are on.
#[derive(Clone)]
pub struct Receipts {
    pub store: Arc<dyn ReceiptStore>,
    pub ttl: Duration,
}

impl Receipts {
    /// `Some` when `config` turns receipts on.
    pub fn new(store: Arc<dyn ReceiptStore>, config: &ReceiptConfig) -> Option<Self> {
        config.enabled().then_some(Self {
            store,
            ttl: config.ttl,
        })
    }

    pub fn seed(&self, target: Option<&Target>) -> Seed {
        Seed::new(target, OffsetDateTime::now_utc(), self.ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt() -> Receipt {
        let key = ReceiptKey::new(Some(TenantId::parse("acme").unwrap()), "m-1");
        Receipt::queued(
            key,
            &Target::Tenant {
                tenant: TenantId::parse("acme").unwrap(),
            },
            OffsetDateTime::now_utc(),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn keys_name_the_tenant_or_a_star() {
        let key = ReceiptKey::new(Some(TenantId::parse("acme").unwrap()), "a#b");
        assert_eq!(key.storage_key(), "R#acme#a#b");
        assert_eq!(ReceiptKey::new(None, "x").storage_key(), "R#*#x");
    }

    #[test]
    fn status_follows_the_counts() {
        let now = OffsetDateTime::now_utc();
        let mut r = receipt();
        assert_eq!(r.state(), (ReceiptStatus::Queued, false));
        r.apply(&Progress::pending(1), now);
        assert_eq!(
            r.state(),
            (ReceiptStatus::Delivering, false),
            "a page is enqueued"
        );
        let first = Progress {
            matched: 100,
            delivered: 100,
            started: true,
            ..Progress::default()
        };
        r.apply(&first, now);
        assert_eq!(
            r.status(),
            ReceiptStatus::Delivering,
            "one page outstanding"
        );
        let last = Progress {
            matched: 10,
            delivered: 8,
            failed: 2,
            pending: 0,
            ..Progress::default()
        };
        r.apply(&last, now);
        assert_eq!(
            r.state(),
            (ReceiptStatus::Partial, false),
            "a retry item is still pending"
        );
        r.apply(
            &Progress {
                pending: -1,
                failed: -2,
                delivered: 2,
                ..Progress::default()
            },
            now,
        );
        assert_eq!(r.state(), (ReceiptStatus::Delivered, true));
        assert_eq!(r.to_json()["final"], true);
        r.apply(
            &Progress {
                terminal: Some(Terminal::Dead),
                ..Progress::default()
            },
            now,
        );
        assert_eq!(r.state(), (ReceiptStatus::Dead, true));
        assert_eq!(r.to_json()["matched"], 110);
        assert_eq!(r.to_json()["delivered"], 110);
    }

    #[test]
    fn a_message_that_reached_nobody_is_unmatched() {
        let now = OffsetDateTime::now_utc();
        let mut r = receipt();
        r.apply(&Progress::pending(1), now);
        let first = Progress {
            started: true,
            ..Progress::default()
        };
        r.apply(&first, now);
        assert_eq!(
            r.status(),
            ReceiptStatus::Delivering,
            "a page is outstanding"
        );
        r.apply(&Progress::pending(-1), now);
        assert_eq!(r.state(), (ReceiptStatus::Unmatched, true));
        assert_eq!(r.to_json()["status"], "unmatched");
        r.apply(
            &Progress {
                pushed: 2,
                devices_pruned: 1,
                push_failed: 1,
                ..Progress::default()
            },
            now,
        );
        assert_eq!(
            r.status(),
            ReceiptStatus::Delivered,
            "a push reached someone"
        );
        let json = r.to_json();
        assert_eq!(
            (
                json["pushed"].clone(),
                json["pushFailed"].clone(),
                json["devicesPruned"].clone()
            ),
            (json!(2), json!(1), json!(1))
        );
    }

    #[test]
    fn partial_is_final_once_nothing_is_pending_and_expired_always() {
        let now = OffsetDateTime::now_utc();
        let mut r = receipt();
        r.apply(&Progress::pending(1), now);
        r.apply(
            &Progress {
                started: true,
                matched: 2,
                delivered: 1,
                failed: 1,
                ..Progress::default()
            },
            now,
        );
        assert_eq!(r.state(), (ReceiptStatus::Partial, false));
        r.apply(&Progress::pending(-1), now);
        assert_eq!(r.state(), (ReceiptStatus::Partial, true));
        assert_eq!(r.to_json()["final"], true);
        let mut expired = receipt();
        assert_eq!(expired.to_json()["final"], false);
        expired.apply(
            &Progress {
                terminal: Some(Terminal::Expired),
                ..Progress::default()
            },
            now,
        );
        assert_eq!(expired.state(), (ReceiptStatus::Expired, true));
    }

    #[test]
    fn a_broadcast_receipt_has_a_null_tenant() {
        let r = Receipt::queued(
            ReceiptKey::new(None, "b"),
            &Target::Broadcast,
            OffsetDateTime::now_utc(),
            Duration::from_secs(60),
        );
        let json = r.to_json();
        assert!(json["tenant"].is_null());
        assert_eq!(json["target"], json!({"type": "broadcast"}));
        assert_eq!(json["status"], "queued");
    }
}
