//! Usage per tenant per minute (docs/design.md: Usage): what each tenant published,
//! what was delivered to its connections, and how many connections it held, counted in
//! minute buckets and read through `GET /v1/tenants/{tenant}/usage` ([`UsageApi`]).
//!
//! - The publisher adds each unit of work's `matched`/`delivered`/`gone` — the very
//!   [`Progress`](crate::receipts::Progress) it adds to the receipt, at the same point, so
//!   the work log's "runs once" covers usage too — and `bytesSent` (frame bytes × frames
//!   delivered): one [`UsageStore::add`] per unit, never one per recipient.
//! - The publish API counts `publishesAccepted`/`publishesRefused` ([`count_publish`]).
//! - Connections: on `serve` a sampler ([`sample_connections`]) adds each tenant's live
//!   connections once a minute; on AWS `$connect`/`$disconnect` call [`connection_opened`]
//!   and [`connection_closed`] (an approximation, see there).
//! - A failed usage write is logged and counted ([`Usage::errors`]); it never fails
//!   delivery or a publish, so usage may then undercount.
//!
//! Broadcasts belong to no tenant: their counts go to the group `*` (`tenant = None`).
//! [`MemoryUsageStore`] keeps buckets in this process; the DynamoDB adapter lives in
//! `switchboard-aws`. [`contract`] is the behaviour every adapter must show.

mod api;
mod config;
mod connections;
mod memory;
mod publishes;

#[cfg(any(test, feature = "testkit"))]
pub mod contract;

pub use api::UsageApi;
pub use config::{
    UsageConfig, DEFAULT_USAGE_RETENTION_DAYS, MAX_MEMORY_USAGE_BUCKETS, MAX_USAGE_RETENTION_DAYS,
};
pub use connections::{connection_closed, connection_opened, sample_connections, SAMPLE_EVERY};
pub use memory::MemoryUsageStore;
pub use publishes::count_publish;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use switchboard_model::TenantId;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The storage key of a tenant's usage, `U#<tenant|*>` (`*`: broadcasts).
pub fn storage_key(tenant: Option<&TenantId>) -> String {
    format!("U#{}", group(tenant))
}

/// The tenant's name, or `*` for broadcasts.
pub fn group(tenant: Option<&TenantId>) -> &str {
    tenant.map_or("*", TenantId::as_str)
}

/// The counts of one bucket. All are sums except `peak_connections`, a maximum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub publishes_accepted: u64,
    pub publishes_refused: u64,
    /// Connections the tenant's messages were to reach (as the receipts count them).
    pub matched: u64,
    /// Frames posted to a connection.
    pub delivered: u64,
    /// Connections found gone when posted to.
    pub gone: u64,
    /// Web Push notifications push services accepted (the receipts' `pushed`).
    pub pushed: u64,
    /// Frame bytes × frames delivered.
    pub bytes_sent: u64,
    pub connection_minutes: u64,
    pub peak_connections: u64,
}

impl Counts {
    /// Adds `other`: sums, and the larger peak.
    pub fn add(&mut self, other: &Counts) {
        self.publishes_accepted += other.publishes_accepted;
        self.publishes_refused += other.publishes_refused;
        self.matched += other.matched;
        self.delivered += other.delivered;
        self.gone += other.gone;
        self.pushed += other.pushed;
        self.bytes_sent += other.bytes_sent;
        self.connection_minutes += other.connection_minutes;
        self.peak_connections = self.peak_connections.max(other.peak_connections);
    }

    pub fn is_empty(&self) -> bool {
        *self == Counts::default()
    }

    /// The sums as `(name, value)` pairs (the JSON and DynamoDB attribute names), peak
    /// excluded.
    pub fn sums(&self) -> [(&'static str, u64); 8] {
        [
            ("publishesAccepted", self.publishes_accepted),
            ("publishesRefused", self.publishes_refused),
            ("matched", self.matched),
            ("delivered", self.delivered),
            ("gone", self.gone),
            ("pushed", self.pushed),
            ("bytesSent", self.bytes_sent),
            ("connectionMinutes", self.connection_minutes),
        ]
    }

    /// Sets the sum named `name` (one of [`Counts::sums`]'s names, or `peakConnections`).
    pub fn set(&mut self, name: &str, value: u64) {
        let field = match name {
            "publishesAccepted" => &mut self.publishes_accepted,
            "publishesRefused" => &mut self.publishes_refused,
            "matched" => &mut self.matched,
            "delivered" => &mut self.delivered,
            "gone" => &mut self.gone,
            "pushed" => &mut self.pushed,
            "bytesSent" => &mut self.bytes_sent,
            "connectionMinutes" => &mut self.connection_minutes,
            PEAK => &mut self.peak_connections,
            _ => return,
        };
        *field = value;
    }
}

/// The name of the peak count (JSON and DynamoDB).
pub const PEAK: &str = "peakConnections";

/// One bucket: its start and its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub start: OffsetDateTime,
    pub counts: Counts,
}

impl Bucket {
    /// `{"start", "publishesAccepted", …, "peakConnections"}`.
    pub fn to_json(&self) -> Value {
        let mut object = serde_json::Map::new();
        object.insert(
            "start".into(),
            json!(self.start.format(&Rfc3339).unwrap_or_default()),
        );
        for (name, value) in self.counts.sums() {
            object.insert(name.into(), json!(value));
        }
        object.insert(PEAK.into(), json!(self.counts.peak_connections));
        Value::Object(object)
    }
}

/// The size of the buckets an answer sums minute buckets into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Minute,
    Hour,
    Day,
}

impl Unit {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "minute" => Some(Unit::Minute),
            "hour" => Some(Unit::Hour),
            "day" => Some(Unit::Day),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
        }
    }

    fn seconds(self) -> i64 {
        match self {
            Unit::Minute => 60,
            Unit::Hour => 3_600,
            Unit::Day => 86_400,
        }
    }

    /// The start (UTC) of the bucket holding `at`.
    pub fn floor(self, at: OffsetDateTime) -> OffsetDateTime {
        let seconds = at.unix_timestamp();
        let start = seconds - seconds.rem_euclid(self.seconds());
        OffsetDateTime::from_unix_timestamp(start).unwrap_or(at)
    }
}

/// The first and last minute starts (epoch seconds) in `[from, to)`; `None` when there
/// is none.
pub fn minute_range(from: OffsetDateTime, to: OffsetDateTime) -> Option<(i64, i64)> {
    let floor = Unit::Minute.floor(from);
    let first = if floor == from {
        floor
    } else {
        floor + time::Duration::MINUTE
    };
    let last = Unit::Minute.floor(to - time::Duration::NANOSECOND);
    (first <= last).then(|| (first.unix_timestamp(), last.unix_timestamp()))
}

/// Sums minute buckets (oldest first) into `unit` buckets (oldest first); peaks are the
/// largest minute peak.
pub fn roll_up(minutes: Vec<Bucket>, unit: Unit) -> Vec<Bucket> {
    if unit == Unit::Minute {
        return minutes;
    }
    let mut out: Vec<Bucket> = Vec::new();
    for minute in minutes {
        let start = unit.floor(minute.start);
        match out.last_mut() {
            Some(last) if last.start == start => last.counts.add(&minute.counts),
            _ => out.push(Bucket {
                start,
                counts: minute.counts,
            }),
        }
    }
    out
}

/// Why a usage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("usage store unavailable: {0}")]
    Unavailable(String),
}

/// The usage port. `tenant = None` is the broadcasts' group `*`.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Adds `counts` to the minute bucket holding `at`, atomically: sums are added, the
    /// stored peak is raised to `counts.peak_connections` if that is larger.
    async fn add(
        &self,
        tenant: Option<&TenantId>,
        at: OffsetDateTime,
        counts: &Counts,
    ) -> Result<(), UsageError>;
    /// The non-empty minute buckets starting in `[from, to)` still within the retention,
    /// oldest first.
    async fn minutes(
        &self,
        tenant: Option<&TenantId>,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<Bucket>, UsageError>;
    /// Adds `delta` to the tenant's count of live connections and answers the new count
    /// (AWS's `$connect`/`$disconnect`; `serve` samples its registry instead).
    async fn add_live(&self, tenant: &TenantId, delta: i64) -> Result<i64, UsageError>;
}

/// A usage store with its retention and its error count: what the publisher, the publish
/// API and the connection edges hold.
#[derive(Clone)]
pub struct Usage {
    pub store: Arc<dyn UsageStore>,
    pub retention: Duration,
    errors: Arc<AtomicU64>,
}

impl Usage {
    pub fn new(store: Arc<dyn UsageStore>, config: &UsageConfig) -> Self {
        Self {
            store,
            retention: config.retention,
            errors: Arc::default(),
        }
    }

    /// Adds `counts` to the minute of `at` (nothing when they are all zero). A failure is
    /// logged and counted, never answered: usage is a report.
    pub async fn record(&self, tenant: Option<&TenantId>, at: OffsetDateTime, counts: &Counts) {
        if counts.is_empty() {
            return;
        }
        if let Err(error) = self.store.add(tenant, at, counts).await {
            self.failed(tenant, &error);
        }
    }

    /// Counts and logs a failed usage write.
    pub fn failed(&self, tenant: Option<&TenantId>, error: &UsageError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(tenant = group(tenant), %error, "usage not recorded");
    }

    /// Usage writes that failed since start (the usage then undercounts).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    fn bucket(start: &str, delivered: u64, peak: u64) -> Bucket {
        Bucket {
            start: at(start),
            counts: Counts {
                delivered,
                peak_connections: peak,
                ..Counts::default()
            },
        }
    }

    #[test]
    fn keys_name_the_tenant_or_a_star() {
        assert_eq!(
            storage_key(Some(&TenantId::parse("acme").unwrap())),
            "U#acme"
        );
        assert_eq!(storage_key(None), "U#*");
    }

    #[test]
    fn hours_and_days_sum_minutes_and_keep_the_largest_peak() {
        let minutes = vec![
            bucket("2026-01-01T10:00:00Z", 1, 5),
            bucket("2026-01-01T10:59:00Z", 2, 7),
            bucket("2026-01-01T11:00:00Z", 4, 3),
            bucket("2026-01-02T00:00:00Z", 8, 1),
        ];
        let hours = roll_up(minutes.clone(), Unit::Hour);
        assert_eq!(
            hours,
            vec![
                bucket("2026-01-01T10:00:00Z", 3, 7),
                bucket("2026-01-01T11:00:00Z", 4, 3),
                bucket("2026-01-02T00:00:00Z", 8, 1),
            ]
        );
        let days = roll_up(minutes.clone(), Unit::Day);
        assert_eq!(
            days,
            vec![
                bucket("2026-01-01T00:00:00Z", 7, 7),
                bucket("2026-01-02T00:00:00Z", 8, 1),
            ]
        );
        assert_eq!(roll_up(minutes.clone(), Unit::Minute), minutes);
    }

    #[test]
    fn a_bucket_answers_every_field() {
        let json = bucket("2026-01-01T10:00:00Z", 2, 3).to_json();
        assert_eq!(json["start"], "2026-01-01T10:00:00Z");
        assert_eq!(json["delivered"], 2);
        assert_eq!(json["peakConnections"], 3);
        assert_eq!(json["pushed"], 0);
        assert_eq!(json.as_object().unwrap().len(), 10);
    }

    #[test]
    fn minute_ranges_hold_the_minutes_starting_from_from_and_before_to() {
        let range = |from: &str, to: &str| {
            minute_range(at(from), at(to)).map(|(first, last)| {
                let text = |s: i64| {
                    OffsetDateTime::from_unix_timestamp(s)
                        .unwrap()
                        .format(&Rfc3339)
                        .unwrap()
                };
                (text(first), text(last))
            })
        };
        let pair = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
        assert_eq!(
            range("2026-01-01T10:00:00Z", "2026-01-01T10:03:00Z"),
            pair("2026-01-01T10:00:00Z", "2026-01-01T10:02:00Z")
        );
        assert_eq!(
            range("2026-01-01T10:00:00.5Z", "2026-01-01T10:03:00.5Z"),
            pair("2026-01-01T10:01:00Z", "2026-01-01T10:03:00Z")
        );
        assert_eq!(range("2026-01-01T10:00:01Z", "2026-01-01T10:01:00Z"), None);
    }

    #[test]
    fn units_floor_in_utc() {
        let t = at("2026-03-04T05:06:07Z");
        assert_eq!(Unit::Minute.floor(t), at("2026-03-04T05:06:00Z"));
        assert_eq!(Unit::Hour.floor(t), at("2026-03-04T05:00:00Z"));
        assert_eq!(Unit::Day.floor(t), at("2026-03-04T00:00:00Z"));
        assert_eq!(Unit::parse("week"), None);
    }
}
