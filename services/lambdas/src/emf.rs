//! CloudWatch Embedded Metric Format (EMF): metrics as JSON log lines, which CloudWatch
//! Logs turns into metrics without any API call from the function.
//!
//! One document per event: the publisher writes one per message
//! ([`Metrics::message_report`]: `Messages`, `Matched`, `Delivered`, `Gone`, `Failed`,
//! `Retries`, `Throttled`, `FanoutDuration`), the publish API one per request
//! ([`Metrics::publish_request`]: `Requests`, `Accepted`, `ClientErrors`, `ServerErrors`,
//! `Latency`). The one dimension is `Target`, the target *type* (`users`, `tenant`, …):
//! always a `&'static str` from the code (the publisher's report kind, or the publish API's
//! body mapped through [`target_type`]), never the tenant or other caller-chosen text: each
//! dimension value is a separate billed metric, so the set must stay small. Each
//! document declares two dimension sets, `[["Target"], []]`, so every metric exists per
//! target type and in total (what the alarms use). The namespace is `METRICS_NAMESPACE`
//! (the stack sets `Switchboard/<stack name>`), default [`DEFAULT_NAMESPACE`].
//!
//! A small writer rather than a crate: `metrics_cloudwatch_embedded` aggregates through the
//! process-global `metrics` recorder and flushes per invocation (global state shared by
//! every test, and no per-message documents); `metrique` (awslabs) is built around its own
//! derive-macro entries and background sinks. A document here is a plain JSON object
//! written as one line; the tests parse it back and check it against the specification.
//!
//! Specification: <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use switchboard_core::config::{optional, ConfigError};
use switchboard_core::publisher::{MessageReport, Outcome};

/// The variable naming the namespace.
pub const NAMESPACE_VAR: &str = "METRICS_NAMESPACE";
/// The namespace when `METRICS_NAMESPACE` is unset.
pub const DEFAULT_NAMESPACE: &str = "Switchboard";
/// The dimension every document declares.
pub const TARGET_DIMENSION: &str = "Target";
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

/// One EMF document: a namespace, one `Target` dimension, metrics and plain properties.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    namespace: Arc<str>,
    timestamp_ms: u64,
    target: &'static str,
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

    /// The document as a JSON object: `_aws` metadata, the dimension, the metric values
    /// and the properties as root members.
    pub fn to_json(&self) -> Value {
        let definitions: Vec<Value> = self
            .metrics
            .iter()
            .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        let mut root = self.properties.clone();
        root.insert(
            "_aws".to_string(),
            json!({
                "Timestamp": self.timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": &*self.namespace,
                    "Dimensions": [[TARGET_DIMENSION], []],
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

/// Where documents go: standard output in Lambda, memory in tests.
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

/// Keeps every line (tests read them back).
#[derive(Debug, Default)]
pub struct MemorySink {
    lines: Mutex<Vec<String>>,
}

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl LineSink for MemorySink {
    fn write_line(&self, line: &str) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(line.to_string());
        }
    }
}

/// The target types the publish API may name; anything else is reported as `invalid`.
const TARGET_TYPES: [&str; 6] = [
    "users",
    "tenant",
    "connections",
    "broadcast",
    "legacy",
    "invalid",
];

/// Maps text to one of the fixed target types (`invalid` when unknown), so no caller
/// input ever becomes a dimension value.
pub fn target_type(text: &str) -> &'static str {
    TARGET_TYPES
        .iter()
        .find(|t| **t == text)
        .copied()
        .unwrap_or("invalid")
}

/// The metrics writer a function builds once at init.
#[derive(Clone)]
pub struct Metrics {
    namespace: Arc<str>,
    sink: Arc<dyn LineSink>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("namespace", &self.namespace)
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
        })
    }

    /// `METRICS_NAMESPACE` (default [`DEFAULT_NAMESPACE`]), writing to standard output.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let namespace: Option<String> = optional(&lookup, NAMESPACE_VAR)?;
        Self::new(
            namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE),
            Arc::new(StdoutSink),
        )
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// A new document in this namespace, stamped now.
    pub fn document(&self, target: &'static str) -> Document {
        Document::new(self.namespace.clone(), SystemTime::now(), target)
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
            .document(report.target)
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
            .metric(
                "FanoutDuration",
                Unit::Milliseconds,
                millis(report.duration),
            )
            .property("id", report.id.as_str())
            .property("outcome", report.outcome.as_str());
        self.emit(&document);
    }

    /// One document for one publish API request.
    pub fn publish_request(&self, target: &'static str, status: u16, latency: Duration) {
        let flag = |on: bool| if on { 1.0 } else { 0.0 };
        let document = self
            .document(target)
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

/// Checks `line` against the EMF specification's structure and returns the document; the
/// tests of every function that emits metrics use it.
pub fn parse_document(line: &str) -> Result<Value, String> {
    let doc: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let root = doc.as_object().ok_or("the root is not an object")?;
    let aws = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("no _aws object")?;
    if !aws.get("Timestamp").is_some_and(Value::is_u64) {
        return Err("_aws.Timestamp is not a non-negative integer".into());
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("_aws.CloudWatchMetrics is not an array")?;
    if directives.is_empty() {
        return Err("_aws.CloudWatchMetrics is empty".into());
    }
    for directive in directives {
        let namespace = directive
            .get("Namespace")
            .and_then(Value::as_str)
            .ok_or("a directive has no Namespace string")?;
        if namespace.is_empty() || namespace.chars().count() > MAX_NAMESPACE_CHARS {
            return Err(format!("Namespace {namespace:?} is not 1-255 characters"));
        }
        let sets = directive
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or("Dimensions is not an array")?;
        for set in sets {
            let keys = set.as_array().ok_or("a DimensionSet is not an array")?;
            if keys.len() > 30 {
                return Err("a DimensionSet has more than 30 keys".into());
            }
            for key in keys {
                let key = key.as_str().ok_or("a dimension key is not a string")?;
                if !root.get(key).is_some_and(Value::is_string) {
                    return Err(format!(
                        "dimension {key} is not a string member of the root"
                    ));
                }
            }
        }
        let metrics = directive
            .get("Metrics")
            .and_then(Value::as_array)
            .ok_or("Metrics is not an array")?;
        if metrics.len() > 100 {
            return Err("more than 100 metrics in a directive".into());
        }
        for metric in metrics {
            let name = metric
                .get("Name")
                .and_then(Value::as_str)
                .ok_or("a metric has no Name")?;
            if !root.get(name).is_some_and(Value::is_number) {
                return Err(format!("metric {name} is not a number member of the root"));
            }
            match metric.get("Unit") {
                None => {}
                Some(Value::String(unit)) if VALID_UNITS.contains(&unit.as_str()) => {}
                Some(other) => return Err(format!("metric {name} has an invalid Unit {other}")),
            }
        }
    }
    Ok(doc)
}

/// The units CloudWatch accepts.
const VALID_UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> (Metrics, Arc<MemorySink>) {
        let sink = Arc::new(MemorySink::new());
        (
            Metrics::new("Switchboard/Test", sink.clone()).unwrap(),
            sink,
        )
    }

    fn report() -> MessageReport {
        MessageReport {
            message_id: "q-1".into(),
            id: "m-1".into(),
            target: "tenant",
            matched: 10,
            delivered: 7,
            gone: 2,
            failed: 1,
            retries: 3,
            throttled: 2,
            deferred: 0,
            skipped: 0,
            expired_tokens: 4,
            work_item: false,
            receipt_errors: 0,
            work_log_errors: 1,
            hops: 3,
            runaway: true,
            duration: Duration::from_micros(12_500),
            outcome: Outcome::Retry,
            error: None,
        }
    }

    #[test]
    fn a_message_report_is_one_valid_emf_line_dimensioned_by_target_type() {
        let (metrics, sink) = metrics();
        metrics.message_report(&report());
        let lines = sink.lines();
        assert_eq!(lines.len(), 1);
        assert!(!lines[0].contains('\n'));
        let doc = parse_document(&lines[0]).unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Switchboard/Test");
        assert_eq!(directive["Dimensions"], json!([["Target"], []]));
        assert_eq!(doc["Target"], "tenant");
        for (name, value) in [
            ("Messages", 1.0),
            ("Matched", 10.0),
            ("Delivered", 7.0),
            ("Gone", 2.0),
            ("Failed", 1.0),
            ("Retries", 3.0),
            ("Throttled", 2.0),
            ("ExpiredTokens", 4.0),
            ("Duplicates", 0.0),
            ("RunawayChains", 1.0),
            ("WorkLogErrors", 1.0),
            ("FanoutDuration", 12.5),
        ] {
            assert_eq!(doc[name].as_f64(), Some(value), "{name}");
        }
        assert_eq!(doc["outcome"], "retry");
        assert_eq!(doc["id"], "m-1");
        let units: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Unit"].as_str().unwrap())
            .collect();
        assert_eq!(units.iter().filter(|u| **u == "Milliseconds").count(), 1);
    }

    #[test]
    fn the_timestamp_is_epoch_milliseconds() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let doc = Document::new("N".into(), at, "users").to_json();
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_123_u64);
    }

    #[test]
    fn publish_requests_count_by_status_class() {
        let (metrics, sink) = metrics();
        metrics.publish_request("users", 202, Duration::from_millis(4));
        metrics.publish_request("invalid", 400, Duration::from_millis(1));
        metrics.publish_request("tenant", 503, Duration::from_millis(2));
        let docs: Vec<Value> = sink
            .lines()
            .iter()
            .map(|l| parse_document(l).unwrap())
            .collect();
        let row = |d: &Value| {
            (
                d["Target"].as_str().unwrap().to_string(),
                d["Accepted"].as_f64().unwrap(),
                d["ClientErrors"].as_f64().unwrap(),
                d["ServerErrors"].as_f64().unwrap(),
            )
        };
        assert_eq!(row(&docs[0]), ("users".into(), 1.0, 0.0, 0.0));
        assert_eq!(row(&docs[1]), ("invalid".into(), 0.0, 1.0, 0.0));
        assert_eq!(row(&docs[2]), ("tenant".into(), 0.0, 0.0, 1.0));
        assert_eq!(docs[0]["Latency"].as_f64(), Some(4.0));
        assert_eq!(docs[2]["status"], 503);
    }

    #[test]
    fn unknown_target_text_never_becomes_a_dimension_value() {
        assert_eq!(target_type("broadcast"), "broadcast");
        assert_eq!(target_type("acme-tenant-42"), "invalid");
        assert_eq!(target_type(""), "invalid");
    }

    #[test]
    fn namespace_comes_from_the_environment_and_is_validated() {
        let none = Metrics::from_lookup(|_| None).unwrap();
        assert_eq!(none.namespace(), DEFAULT_NAMESPACE);
        let set = Metrics::from_lookup(|k| (k == NAMESPACE_VAR).then(|| "Switchboard/Prod".into()))
            .unwrap();
        assert_eq!(set.namespace(), "Switchboard/Prod");
        let err =
            Metrics::from_lookup(|k| (k == NAMESPACE_VAR).then(|| ":bad".into())).unwrap_err();
        assert!(err.to_string().contains(NAMESPACE_VAR));
        assert!(Metrics::new(&"x".repeat(256), Arc::new(MemorySink::new())).is_err());
    }

    #[test]
    fn the_parser_rejects_documents_cloudwatch_would_reject() {
        let valid = json!({
            "_aws": {"Timestamp": 1, "CloudWatchMetrics": [{
                "Namespace": "N", "Dimensions": [["Target"]],
                "Metrics": [{"Name": "Delivered", "Unit": "Count"}]}]},
            "Target": "users", "Delivered": 1
        });
        assert!(parse_document(&valid.to_string()).is_ok());
        let broken = |pointer: &str, value: Value| {
            let mut doc = valid.clone();
            *doc.pointer_mut(pointer).unwrap() = value;
            parse_document(&doc.to_string())
        };
        assert!(
            broken("/Target", json!(3)).is_err(),
            "dimension not a string"
        );
        assert!(
            broken("/Delivered", json!("1")).is_err(),
            "metric not a number"
        );
        assert!(broken("/_aws/Timestamp", json!("now")).is_err());
        assert!(broken("/_aws/CloudWatchMetrics/0/Metrics/0/Unit", json!("Parsecs")).is_err());
        assert!(broken("/_aws/CloudWatchMetrics/0/Namespace", json!("")).is_err());
        assert!(parse_document("not json").is_err());
    }
}
