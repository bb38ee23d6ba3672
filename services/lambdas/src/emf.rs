//! CloudWatch Embedded Metric Format (EMF): metrics as JSON log lines, which CloudWatch
//! Logs turns into metrics without any API call from the function.
//!
//! One document per event: the publisher writes one per message
//! ([`Metrics::message_report`]: `Messages`, `Matched`, `Delivered`, `Gone`, `Failed`,
//! `Pushed`, `PushFailed`, `DevicesPruned` (Web Push sends), `Retries`, `Throttled`,
//! `EventsPut` and `EventsFailed` (`message.settled` emitted, or not, to EventBridge),
//! `FanoutDuration`), the publish API one per request
//! ([`Metrics::publish_request`]: `Requests`, `Accepted`, `ClientErrors`, `ServerErrors`,
//! `Latency`). The one dimension is `Target`, the target *type* (`users`, `tenant`, …):
//! always a `&'static str` from the code (the publisher's report kind, or the publish API's
//! body mapped through [`target_type`]), never caller-chosen text: each dimension value
//! is a separate billed metric, so the set must stay small. Each document declares two
//! dimension sets, `[["Target"], []]`, so every metric exists per target type and in total
//! (what the alarms use). The namespace is `METRICS_NAMESPACE` (the stack sets
//! `Switchboard/<stack name>`), default [`DEFAULT_NAMESPACE`].
//!
//! The tenant is no dimension by default. `METRICS_TENANTS` opts in a short list (at most
//! [`MAX_METRICS_TENANTS`] tenant ids, comma-separated): a document whose message or
//! request belongs to a listed tenant also declares `["Target","Tenant"]` and carries a
//! `Tenant` member, the listed id. Any other tenant's document is unchanged, so the
//! dimension's values are the list, never text a caller chose.
//!
//! A small writer rather than a crate: `metrics_cloudwatch_embedded` aggregates through the
//! process-global `metrics` recorder and flushes per invocation (global state shared by
//! every test, and no per-message documents); `metrique` (awslabs) is built around its own
//! derive-macro entries and background sinks. A document here is a plain JSON object
//! written as one line; the tests parse it back and check it against the specification.
//!
//! Specification:
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use switchboard_core::config::{optional, ConfigError};
use switchboard_core::publisher::{MessageKind, MessageReport, Outcome};
use switchboard_model::{TargetKind, TenantId};

use crate::events::Counts;

/// The variable naming the namespace.
pub const NAMESPACE_VAR: &str = "METRICS_NAMESPACE";
/// The namespace when `METRICS_NAMESPACE` is unset.
pub const DEFAULT_NAMESPACE: &str = "Switchboard";
/// The dimension every document declares.
pub const TARGET_DIMENSION: &str = "Target";
/// The variable listing the tenants that get a dimension of their own.
pub const TENANTS_VAR: &str = "METRICS_TENANTS";
/// The most tenants `METRICS_TENANTS` may list (each adds metrics × target types).
pub const MAX_METRICS_TENANTS: usize = 20;
/// The dimension a listed tenant's documents add (with [`TARGET_DIMENSION`]).
pub const TENANT_DIMENSION: &str = "Tenant";
/// Longest namespace CloudWatch accepts.
const MAX_NAMESPACE_CHARS: usize = 255;

/// A CloudWatch unit (the subset we emit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One EMF document: a namespace, the `Target` dimension (and `Tenant` for a listed
/// tenant), metrics and plain properties.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    namespace: Arc<str>,
    timestamp_ms: u64,
    target: &'static str,
    /// Only ever a tenant from `METRICS_TENANTS` ([`Metrics::document`] checks).
    tenant: Option<TenantId>,
    metrics: Vec<(&'static str, Unit, f64)>,
    properties: Map<String, Value>,
}

impl Document {
    pub fn new(namespace: Arc<str>, at: SystemTime, target: &'static str) -> Self {
        let timestamp_ms = at
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Self {
            namespace,
            timestamp_ms,
            target,
            tenant: None,
            metrics: Vec::new(),
            properties: Map::new(),
        }
    }

    /// Adds a metric (names are fixed by the code, so they never collide with members
    /// the specification reserves).
    pub fn metric(mut self, name: &'static str, unit: Unit, value: f64) -> Self {
        self.metrics.push((name, unit, value));
        self
    }

    /// Adds a member that is logged but is not a metric (searchable in Logs Insights).
    pub fn property(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.properties.insert(name.to_string(), value.into());
        self
    }

    /// The document as a JSON object: `_aws` metadata, the dimensions, the metric values
    /// and the properties as root members.
    pub fn to_json(&self) -> Value {
        let definitions: Vec<Value> = self
            .metrics
            .iter()
            .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        let mut dimensions = vec![json!([TARGET_DIMENSION]), json!([])];
        let mut root = self.properties.clone();
        if let Some(tenant) = &self.tenant {
            dimensions.insert(1, json!([TARGET_DIMENSION, TENANT_DIMENSION]));
            root.insert(TENANT_DIMENSION.to_string(), json!(tenant.as_str()));
        }
        root.insert(
            "_aws".to_string(),
            json!({
                "Timestamp": self.timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": &*self.namespace,
                    "Dimensions": dimensions,
                    "Metrics": definitions,
                }],
            }),
        );
        root.insert(TARGET_DIMENSION.to_string(), json!(self.target));
        for (name, _, value) in &self.metrics {
            root.insert((*name).to_string(), json!(value));
        }
        Value::Object(root)
    }

    /// The document as one log line (no trailing newline).
    pub fn to_line(&self) -> String {
        self.to_json().to_string()
    }
}

/// Where documents go: standard output in Lambda, memory in tests
/// ([`testkit::MemorySink`]).
pub trait LineSink: Send + Sync {
    fn write_line(&self, line: &str);
}

/// Standard output, one `write_all` per line under the stdout lock, so a document is
/// never interleaved with a log line written by `tracing` on another thread.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdoutSink;

impl LineSink for StdoutSink {
    fn write_line(&self, line: &str) {
        let mut buffer = String::with_capacity(line.len() + 1);
        buffer.push_str(line);
        buffer.push('\n');
        let mut out = std::io::stdout().lock();
        if let Err(error) = out.write_all(buffer.as_bytes()).and_then(|()| out.flush()) {
            tracing::warn!(%error, "could not write an EMF document");
        }
    }
}

/// The `Target` dimension's values: every target kind, `legacy` (a raw body of the
/// original broadcast design) and `invalid` (anything else). infra/lib/names.ts lists the
/// kinds for the dashboard (tests/target_types.rs holds the two together).
pub fn target_types() -> impl Iterator<Item = &'static str> {
    TargetKind::ALL
        .into_iter()
        .map(TargetKind::as_str)
        .chain([MessageKind::Legacy.as_str(), MessageKind::INVALID])
}

/// Maps text to one of the fixed target types (`invalid` when unknown), so no caller
/// input ever becomes a dimension value.
pub fn target_type(text: &str) -> &'static str {
    target_types()
        .find(|t| *t == text)
        .unwrap_or(MessageKind::INVALID)
}

/// The metrics writer a function builds once at init.
#[derive(Clone)]
pub struct Metrics {
    namespace: Arc<str>,
    sink: Arc<dyn LineSink>,
    /// `METRICS_TENANTS`: at most [`MAX_METRICS_TENANTS`], distinct.
    tenants: Arc<[TenantId]>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("namespace", &self.namespace)
            .field("tenants", &self.tenants)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// A writer to `sink` under `namespace` (1–255 characters, not starting with `:`).
    pub fn new(namespace: &str, sink: Arc<dyn LineSink>) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::Invalid {
            name: NAMESPACE_VAR,
            value: namespace.to_string(),
            reason: reason.to_string(),
        };
        if namespace.is_empty() || namespace.chars().count() > MAX_NAMESPACE_CHARS {
            return Err(invalid("must be 1 to 255 characters"));
        }
        if namespace.starts_with(':') || namespace.chars().any(char::is_control) {
            return Err(invalid(
                "must not start with ':' or contain control characters",
            ));
        }
        Ok(Self {
            namespace: namespace.into(),
            sink,
            tenants: Arc::new([]),
        })
    }

    /// The same writer, with a `Tenant` dimension for `tenants` (`METRICS_TENANTS`'s
    /// text: comma-separated tenant ids, blanks ignored, at most [`MAX_METRICS_TENANTS`]).
    /// An id must also be ASCII, as CloudWatch requires of a dimension value
    /// (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_Dimension.html>).
    pub fn with_tenants(mut self, tenants: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            name: TENANTS_VAR,
            value: tenants.to_string(),
            reason,
        };
        let mut list: Vec<TenantId> = Vec::new();
        for text in tenants.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let tenant =
                TenantId::parse(text).map_err(|e| invalid(format!("tenant id {text:?} {e}")))?;
            if !text.is_ascii() {
                let reason = "must be ASCII (a CloudWatch dimension value)";
                return Err(invalid(format!("tenant id {text:?} {reason}")));
            }
            if !list.contains(&tenant) {
                list.push(tenant);
            }
        }
        if list.len() > MAX_METRICS_TENANTS {
            return Err(invalid(format!(
                "lists {} tenants; at most {MAX_METRICS_TENANTS} (each is billed as metrics \
                 of its own)",
                list.len()
            )));
        }
        self.tenants = list.into();
        Ok(self)
    }

    /// `METRICS_NAMESPACE` (default [`DEFAULT_NAMESPACE`]) and `METRICS_TENANTS` (default
    /// none), writing to standard output.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let namespace: Option<String> = optional(&lookup, NAMESPACE_VAR)?;
        Self::new(
            namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE),
            Arc::new(StdoutSink),
        )?
        .with_tenants(&lookup(TENANTS_VAR).unwrap_or_default())
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The tenants with a dimension of their own (`METRICS_TENANTS`).
    pub fn tenants(&self) -> &[TenantId] {
        &self.tenants
    }

    /// A new document in this namespace, stamped now, with the `Tenant` dimension when
    /// `tenant` is listed in `METRICS_TENANTS` (and only then).
    pub fn document(&self, target: &'static str, tenant: Option<&str>) -> Document {
        let mut document = Document::new(self.namespace.clone(), SystemTime::now(), target);
        document.tenant = tenant
            .and_then(|tenant| self.tenants.iter().find(|t| t.as_str() == tenant))
            .cloned();
        document
    }

    pub fn emit(&self, document: &Document) {
        self.sink.write_line(&document.to_line());
    }

    /// One document for one message the publisher handled.
    pub fn message_report(&self, report: &MessageReport) {
        let count = |n: usize| n as f64;
        // `report.target` is a `&'static str` the core chose from its own fixed set (a
        // target kind, `legacy`, `invalid`, …), never text from the message.
        let document = self
            .document(report.target, report.tenant.as_ref().map(TenantId::as_str))
            // A work item (a page, retry or remainder of a message) is not a new message.
            .metric(
                "Messages",
                Unit::Count,
                if report.work_item { 0.0 } else { 1.0 },
            )
            .metric(
                "WorkItems",
                Unit::Count,
                if report.work_item { 1.0 } else { 0.0 },
            )
            .metric("Matched", Unit::Count, count(report.matched))
            .metric("Delivered", Unit::Count, count(report.delivered))
            .metric("Gone", Unit::Count, count(report.gone))
            .metric("Failed", Unit::Count, count(report.failed))
            .metric("Pushed", Unit::Count, count(report.pushed))
            .metric("PushFailed", Unit::Count, count(report.push_failed))
            .metric("DevicesPruned", Unit::Count, count(report.devices_pruned))
            .metric("Retries", Unit::Count, f64::from(report.retries))
            .metric("Throttled", Unit::Count, f64::from(report.throttled))
            .metric("Deferred", Unit::Count, count(report.deferred))
            .metric("SkippedRosterItems", Unit::Count, count(report.skipped))
            .metric("ExpiredTokens", Unit::Count, count(report.expired_tokens))
            .metric(
                "Duplicates",
                Unit::Count,
                if report.outcome == Outcome::Duplicate {
                    1.0
                } else {
                    0.0
                },
            )
            .metric(
                "RunawayChains",
                Unit::Count,
                if report.runaway { 1.0 } else { 0.0 },
            )
            .metric(
                "WorkLogErrors",
                Unit::Count,
                f64::from(report.work_log_errors),
            )
            .metric("EventsPut", Unit::Count, f64::from(report.events))
            .metric("EventsFailed", Unit::Count, f64::from(report.event_errors))
            .metric(
                "FanoutDuration",
                Unit::Milliseconds,
                millis(report.duration),
            )
            .property("id", report.id.as_str())
            .property("outcome", report.outcome.as_str());
        self.emit(&document);
    }

    /// One document for one invocation of the events function; `target` is `stream` or
    /// `offline`, the kind of batch it took.
    pub fn events_report(&self, target: &'static str, counts: &Counts, records: usize) {
        let document = self
            .document(target, None)
            .metric("Online", Unit::Count, f64::from(counts.online))
            .metric("Offline", Unit::Count, f64::from(counts.offline))
            .metric("EventsPut", Unit::Count, f64::from(counts.events_put))
            .metric("EventsFailed", Unit::Count, f64::from(counts.events_failed))
            .metric("Skipped", Unit::Count, f64::from(counts.skipped))
            .metric("ItemFailures", Unit::Count, f64::from(counts.item_failures))
            .property("records", records);
        self.emit(&document);
    }

    /// One document for one publish API request; `tenant` is the tenant its body names.
    pub fn publish_request(
        &self,
        target: &'static str,
        tenant: Option<&str>,
        status: u16,
        latency: Duration,
    ) {
        let flag = |on: bool| if on { 1.0 } else { 0.0 };
        let document = self
            .document(target, tenant)
            .metric("Requests", Unit::Count, 1.0)
            .metric("Accepted", Unit::Count, flag((200..300).contains(&status)))
            .metric(
                "ClientErrors",
                Unit::Count,
                flag((400..500).contains(&status)),
            )
            .metric("ServerErrors", Unit::Count, flag(status >= 500))
            .metric("Latency", Unit::Milliseconds, millis(latency))
            .property("status", status);
        self.emit(&document);
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
#[cfg(test)]
mod tests;
