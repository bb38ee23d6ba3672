//! `switchboard cost`, run as a process: the monthly table for 100,000 always-on connections
//! with 50 messages per user per day, and refusals naming the flag for input it cannot price.

use super::cli::switchboard;
use super::harness::{assert_refused, command_refused};

const SERVICES: [&str; 8] = [
    "API Gateway WebSocket",
    "API Gateway HTTP API",
    "Lambda",
    "DynamoDB",
    "SQS",
    "EventBridge",
    "CloudWatch",
    "X-Ray",
];

/// The dollar figures of the line starting with `label`.
fn dollars(table: &str, label: &str) -> Vec<f64> {
    let line = table
        .lines()
        .find(|line| line.starts_with(label))
        .unwrap_or_else(|| panic!("no line {label:?} in\n{table}"));
    line.split_whitespace()
        .filter_map(|word| word.strip_prefix('$'))
        .map(|amount| amount.replace(',', "").parse().unwrap())
        .collect()
}

#[test]
fn cost_prints_a_monthly_table_per_service_with_the_floor_and_the_previous_design() {
    let (ok, table, stderr) = switchboard(
        &[
            "cost",
            "--connections",
            "100000",
            "--hours-per-day",
            "24",
            "--messages-per-user-per-day",
            "50",
        ],
        &[],
    );
    assert!(ok, "{stderr}");
    assert!(table.contains("one month (30.4 days)"), "{table}");
    assert!(table.contains("100,000 connections"), "{table}");
    for service in SERVICES {
        let [now, before] = dollars(&table, service)[..] else {
            panic!("{service}: two amounts expected in\n{table}");
        };
        assert!(now > 0.0 && before >= now, "{service}: {now} vs {before}");
    }
    // 43,776 connection-minutes a connection: $0.25 per million, 100,000 connections.
    assert_eq!(
        dollars(&table, "  connection-minutes"),
        vec![1_094.40, 1_094.40]
    );
    let [total, previous_total] = dollars(&table, "total per month")[..] else {
        panic!("{table}");
    };
    let [per_connection, previous_per_connection] = dollars(&table, "per connection-month")[..]
    else {
        panic!("{table}");
    };
    assert!(
        (per_connection - total / 100_000.0).abs() < 0.0001,
        "{table}"
    );
    assert!(previous_total > total && previous_per_connection > per_connection);
    // The floor: connection-minutes plus a ping and a pong every 9 minutes.
    assert_eq!(dollars(&table, "floor per connection-month"), vec![0.0207]);
    assert!(table.contains("keep-alive share of the total"), "{table}");
    assert!(table.contains("target: at most $0.025"), "{table}");
}

#[test]
fn cost_prints_its_prices_with_sources() {
    let (ok, prices, stderr) = switchboard(&["cost", "--prices"], &[]);
    assert!(ok, "{stderr}");
    assert!(
        prices.contains("| API Gateway | WebSocket connection-minutes | $0.25 |"),
        "{prices}"
    );
    assert!(
        prices.contains("https://aws.amazon.com/api-gateway/pricing/"),
        "{prices}"
    );
}

#[test]
fn cost_refuses_input_it_cannot_price_naming_the_flag() {
    for (args, flag) in [
        (&["--connections", "0"][..], "--connections"),
        (&["--connections", "-5"], "--connections"),
        (&["--hours-per-day", "25"], "--hours-per-day"),
        (&["--hours-per-day", "0"], "--hours-per-day"),
        (
            &["--messages-per-user-per-day", "-1"],
            "--messages-per-user-per-day",
        ),
        (&["--log-level", "debug"], "--log-level"),
        (&["--tracing", "sometimes"], "--tracing"),
        (&["--ping-minutes", "10"], "--ping-minutes"),
    ] {
        let mut argv = vec!["cost"];
        argv.extend_from_slice(args);
        let (status, stderr) = command_refused(&argv, &[]);
        assert_refused(status, &stderr, flag);
    }
}
