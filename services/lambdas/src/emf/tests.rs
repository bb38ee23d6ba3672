//! The EMF writer's tests: documents checked against the specification.

use super::testkit::{parse_document, MemorySink};
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
        tenant: Some(TenantId::parse("acme").unwrap()),
        matched: 10,
        delivered: 7,
        gone: 2,
        failed: 1,
        retries: 3,
        throttled: 2,
        deferred: 0,
        pushed: 5,
        push_failed: 1,
        devices_pruned: 2,
        deferred_sends: 0,
        skipped: 0,
        expired_tokens: 4,
        work_item: false,
        receipt_errors: 0,
        events: 1,
        event_errors: 2,
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
        ("Pushed", 5.0),
        ("PushFailed", 1.0),
        ("DevicesPruned", 2.0),
        ("Retries", 3.0),
        ("Throttled", 2.0),
        ("ExpiredTokens", 4.0),
        ("Duplicates", 0.0),
        ("RunawayChains", 1.0),
        ("WorkLogErrors", 1.0),
        ("EventsPut", 1.0),
        ("EventsFailed", 2.0),
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
fn settled_events_put_and_failed_are_declared_counts_of_each_report() {
    let (metrics, sink) = metrics();
    metrics.message_report(&report());
    metrics.message_report(&MessageReport {
        events: 0,
        event_errors: 0,
        ..report()
    });
    let docs: Vec<Value> = sink
        .lines()
        .iter()
        .map(|l| parse_document(l).unwrap())
        .collect();
    for name in ["EventsPut", "EventsFailed"] {
        let declared = docs[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["Name"] == name)
            .map(|m| m["Unit"].clone())
            .collect::<Vec<_>>();
        assert_eq!(declared, [json!("Count")], "{name}");
        assert_eq!(docs[1][name].as_f64(), Some(0.0), "{name}");
    }
    assert_eq!(docs[0]["EventsPut"].as_f64(), Some(1.0));
    assert_eq!(docs[0]["EventsFailed"].as_f64(), Some(2.0));
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
    metrics.publish_request("users", None, 202, Duration::from_millis(4));
    metrics.publish_request("invalid", None, 400, Duration::from_millis(1));
    metrics.publish_request("tenant", Some("acme"), 503, Duration::from_millis(2));
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
    let set =
        Metrics::from_lookup(|k| (k == NAMESPACE_VAR).then(|| "Switchboard/Prod".into())).unwrap();
    assert_eq!(set.namespace(), "Switchboard/Prod");
    let err = Metrics::from_lookup(|k| (k == NAMESPACE_VAR).then(|| ":bad".into())).unwrap_err();
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

fn with_tenants(list: &str) -> (Metrics, Arc<MemorySink>) {
    let (metrics, sink) = metrics();
    (metrics.with_tenants(list).unwrap(), sink)
}

#[test]
fn a_listed_tenant_adds_the_target_and_tenant_dimension_set() {
    let (metrics, sink) = with_tenants(" big-co , acme,acme ");
    assert_eq!(
        metrics.tenants().len(),
        2,
        "trimmed, blanks and repeats dropped"
    );
    metrics.message_report(&report());
    metrics.publish_request("users", Some("acme"), 202, Duration::from_millis(4));
    for line in sink.lines() {
        let doc = parse_document(&line).unwrap();
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Target"], ["Target", "Tenant"], []])
        );
        assert_eq!(doc["Tenant"], "acme");
    }
}

#[test]
fn an_unlisted_tenant_leaves_the_document_unchanged() {
    let (metrics, sink) = with_tenants("big-co");
    metrics.message_report(&report());
    metrics.publish_request("users", Some("acme"), 202, Duration::from_millis(4));
    metrics.publish_request("broadcast", None, 202, Duration::from_millis(4));
    let (plain, plain_sink) = self::metrics();
    plain.message_report(&report());
    for line in sink.lines() {
        let doc = parse_document(&line).unwrap();
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Target"], []])
        );
        assert!(doc.get("Tenant").is_none(), "{line}");
    }
    // Identical to a writer without the setting (but for the time stamp).
    let strip = |line: &str| {
        let mut doc = parse_document(line).unwrap();
        doc["_aws"]["Timestamp"] = json!(0);
        doc
    };
    assert_eq!(strip(&sink.lines()[0]), strip(&plain_sink.lines()[0]));
}

#[test]
fn metrics_tenants_comes_from_the_environment() {
    let lookup = |value: &'static str| move |k: &str| (k == TENANTS_VAR).then(|| value.into());
    assert!(Metrics::from_lookup(|_| None).unwrap().tenants().is_empty());
    assert!(Metrics::from_lookup(lookup(" "))
        .unwrap()
        .tenants()
        .is_empty());
    let set = Metrics::from_lookup(lookup("acme,big-co")).unwrap();
    assert_eq!(set.tenants()[1].as_str(), "big-co");
}

#[test]
fn invalid_metrics_tenants_are_refused_naming_the_variable() {
    for bad in ["acme,*", "a#b", "caf\u{e9}", &"x".repeat(129), "ok,tab\tin"] {
        let err =
            Metrics::from_lookup(|k| (k == TENANTS_VAR).then(|| bad.to_string())).unwrap_err();
        assert!(err.to_string().contains(TENANTS_VAR), "{bad}: {err}");
    }
}

#[test]
fn more_than_twenty_metrics_tenants_are_refused() {
    let list = |n: usize| {
        (0..n)
            .map(|i| format!("t{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert!(metrics().0.with_tenants(&list(MAX_METRICS_TENANTS)).is_ok());
    let err = metrics()
        .0
        .with_tenants(&list(MAX_METRICS_TENANTS + 1))
        .unwrap_err();
    assert!(err.to_string().contains(TENANTS_VAR), "{err}");
    assert!(err.to_string().contains("at most 20"), "{err}");
}

/// The metric names in one emitted document.
fn names(line: &str) -> Vec<String> {
    let doc = parse_document(line).unwrap();
    doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap().to_owned())
        .collect()
}

/// The backticked names in the "metrics" cell of `function`'s row of infra/README.md's
/// Metrics table.
fn documented(readme: &str, function: &str) -> Vec<String> {
    let section = &readme[readme.find("## Metrics").unwrap()..];
    let row = section
        .lines()
        .find(|line| line.starts_with(&format!("| {function} |")))
        .unwrap_or_else(|| panic!("no row for {function} in infra/README.md's Metrics table"));
    let cell = row.split('|').nth(3).unwrap();
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_infra_readme_lists_every_metric_each_function_writes_and_their_count() {
    let readme = include_str!("../../../../infra/README.md");
    let (metrics, sink) = metrics();
    metrics.message_report(&report());
    metrics.publish_request("users", Some("acme"), 202, Duration::from_millis(3));
    metrics.events_report("stream", &Counts::default(), 0);
    let lines = sink.lines();
    let publisher = names(&lines[0]);
    let publish_api = names(&lines[1]);
    let events = names(&lines[2]);
    assert_eq!(documented(readme, "publisher"), publisher);
    assert_eq!(documented(readme, "publish-api"), publish_api);
    assert_eq!(documented(readme, "events"), events);
    let (p, a, e) = (publisher.len(), publish_api.len(), events.len());
    let total = format!("{} metrics in all ({p} + {a} + {e};", p + a + e);
    assert!(
        readme.contains(&total),
        "infra/README.md should say: {total}"
    );
    // A listed tenant: the publisher's metrics for the 3 target types that carry a tenant,
    // the publish API's for all 6.
    let per_tenant = p * 3 + a * 6;
    for text in [
        format!("the publisher's\n{p} metrics × 3 target types"),
        format!(
            "publish API's {a} metrics × 6 target types, {per_tenant} custom metrics per tenant"
        ),
        {
            let most = per_tenant * 20;
            format!("at most {},{:03} for 20", most / 1000, most % 1000)
        },
    ] {
        assert!(readme.contains(&text), "infra/README.md should say: {text}");
    }
    let root = include_str!("../../../../README.md");
    let settings = format!("billed as up to {per_tenant} custom metrics");
    assert!(root.contains(&settings), "README.md should say: {settings}");
}
