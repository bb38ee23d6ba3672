#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::model::{activity, day, estimate, floor, price, Design, LogLevel, Scenario, Tracing};
use super::prices::{Prices, IDS};
use super::render::render;

fn prices() -> Prices {
    Prices::embedded().unwrap()
}

/// 1,000 always-on users, 10 messages a day each, sockets of exactly 2 hours, tokens that
/// outlive them, warn logs, no tracing: every figure below is worked out by hand.
fn known() -> Scenario {
    Scenario {
        connections: 1_000.0,
        hours_per_day: 24.0,
        messages_per_user_per_day: 10.0,
        users_per_publish: 1.0,
        message_bytes: 512.0,
        log_level: LogLevel::Warn,
        tracing: Tracing::Off,
        ping_minutes: 9.0,
        lifetime_minutes: 120.0,
        token_minutes: 0.0,
    }
}

fn close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() < 1e-6 * expected.abs().max(1.0),
        "{what}: {actual} != {expected}"
    );
}

#[test]
fn pins_the_arithmetic_of_one_known_case() {
    let s = known();
    // A day: 12 sockets of 120 min; floor(120 / 9) = 13 pings each.
    let d = day(&s, 9.0);
    assert_eq!((d.sockets, d.pings, d.refreshes), (12.0, 156.0, 0.0));
    // A month of 1,000 users is × 30,400 user-days: 364,800 sockets, 304,000 publishes.
    let a = activity(&s, Design::Current, true);
    close(a.connection_minutes, 43_776_000.0, "connection-minutes");
    // pings 2 × 156 × 30,400 + resume/resumed 2 × 364,800 + deliveries 304,000
    close(
        a.websocket_messages,
        9_484_800.0 + 729_600.0 + 304_000.0,
        "messages",
    );
    close(a.http_requests, 304_000.0, "HTTP requests");
    // authorizer, connect, disconnect 3 × 364,800; events 729,600 records / 4; resume
    // 364,800; publish-api 304,000; publisher 304,000 (one message a batch)
    close(a.lambda_requests, 2_249_600.0, "invocations");
    // 0.25 GB × (364,800 × (4 + 15 + 12 + 15 ms) + 182,400 × 20 ms + 304,000 × 15 ms)
    // + 0.5 GB × 304,000 × 60 ms
    close(a.lambda_gb_seconds, 15_367.2, "GB-s");
    // per socket 4 (connect) + 4 (disconnect) + 2 (online item); per publish 2 (receipt,
    // usage) + 4 (claim, finish, receipt, usage) + 1 (history)
    close(a.write_units, 3_648_000.0 + 304_000.0 * 7.0, "write units");
    // per socket 1 (holds) + 1.5 (three history streams); per delivery 0.5
    close(a.read_units, 364_800.0 * 2.5 + 152_000.0, "read units");
    // publishes 304,000 + receives and deletes 608,000 + idle polls 30 × 43,776 minutes
    close(
        a.sqs_requests,
        304_000.0 + 608_000.0 + 1_313_280.0,
        "SQS requests",
    );
    close(a.events, 364_800.0 + 304_000.0, "events");
    // 340 bytes a call; + 500 events EMF, + 450 EMF and 250 access log, + 1,300 EMF
    close(
        a.log_bytes,
        364_800.0 * 4.0 * 340.0 + 182_400.0 * 840.0 + 304_000.0 * 1_040.0 + 304_000.0 * 1_640.0,
        "log bytes",
    );

    let p = prices();
    let lines = price(&s, &a, &p);
    let usd = |item: &str| lines.iter().find(|l| l.item == item).unwrap().usd;
    close(usd("connection-minutes"), 10.944, "$ connection-minutes");
    close(usd("messages (32 KB units)"), 10.5184, "$ messages");
    close(
        usd("write units (GSI and usage included)"),
        3.61,
        "$ write units",
    );
    close(usd("requests (polls included)"), 0.890112, "$ SQS");
    close(usd("logs ingested (EMF included)"), 0.732032, "$ logs");
    close(usd("traces recorded"), 0.0, "$ traces");

    let now = estimate(&s, Design::Current, &p);
    close(now.total, 57.11891143, "total");
    close(now.keep_alive, 9.4848, "keep-alive: its messages only");
    // Previous: floor(120 / 4) = 30 pings a socket, 10,944,000 a month, each also a
    // `default` invocation (2 ms, 256 MB) with its 340 bytes of Lambda lines.
    let before = estimate(&s, Design::Previous, &p);
    let extra = (21_888_000.0 - 9_484_800.0) * 1e-6
        + 10_944_000.0 * 0.2e-6
        + 5_472.0 * 0.0000166667
        + 10_944_000.0 * 340.0 / 1e9 * (0.5 + 0.03);
    close(before.total, now.total + extra, "previous total");
    close(
        floor(&s, &p),
        0.010944 + 2.0 * 43_776.0 / 9.0 * 1e-6,
        "floor",
    );
}

#[test]
fn sockets_pings_and_refreshes_follow_the_client() {
    let mut s = known();
    s.lifetime_minutes = 115.0;
    s.token_minutes = 60.0;
    // Always on: 1,440 / 115 sockets a day; floor(115 / 9) = 12 pings and one refresh each.
    let d = day(&s, 9.0);
    close(d.sockets, 1_440.0 / 115.0, "sockets");
    close(d.pings, 12.0 * 1_440.0 / 115.0, "pings");
    close(d.refreshes, 1_440.0 / 115.0, "refreshes");
    assert_eq!(d.sessions_ended, 0.0);
    // Eight hours: sockets of 115, 115, 115, 115 and 20 min, then offline.
    s.hours_per_day = 8.0;
    let d = day(&s, 9.0);
    assert_eq!(
        (d.sockets, d.pings, d.refreshes, d.sessions_ended),
        (5.0, 50.0, 4.0, 1.0)
    );
}

#[test]
fn warn_logs_and_no_tracing_cost_less() {
    let p = prices();
    let mut s = known();
    s.log_level = LogLevel::Info;
    s.tracing = Tracing::Active;
    let full = estimate(&s, Design::Current, &p).total;
    s.tracing = Tracing::Passthrough;
    let passthrough = estimate(&s, Design::Current, &p).total;
    s.log_level = LogLevel::Warn;
    let warn = estimate(&s, Design::Current, &p).total;
    assert!(
        warn < passthrough && passthrough < full,
        "{warn} {passthrough} {full}"
    );
}

#[test]
fn every_price_has_a_source_and_a_date() {
    let p = prices();
    assert_eq!(p.region, "us-east-1");
    assert_eq!(p.prices.len(), IDS.len(), "every price in the file is used");
    for price in &p.prices {
        assert!(
            price.source.starts_with("https://aws.amazon.com/"),
            "{price:?}"
        );
        assert!(price.read.starts_with("20"), "{price:?}");
        assert!(!price.confirmed_by.is_empty(), "{price:?}");
        assert!(price.usd > 0.0 && price.per >= 1.0, "{price:?}");
    }
    // The figures issue 21 names.
    close(p.per_unit("websocket_message"), 1.0e-6, "message");
    close(p.per_unit("websocket_connection_minute"), 0.25e-6, "minute");
    close(p.per_unit("dynamodb_write_unit"), 0.625e-6, "WRU");
}

/// The scenarios infra/README.md ("Cost per month") shows: 10k, 100k and 1M connections.
pub fn readme_scenario(connections: f64) -> Scenario {
    Scenario {
        connections,
        hours_per_day: 24.0,
        messages_per_user_per_day: 50.0,
        users_per_publish: 1.0,
        message_bytes: 512.0,
        log_level: LogLevel::Info,
        tracing: Tracing::Active,
        ping_minutes: 9.0,
        lifetime_minutes: 115.0,
        token_minutes: 60.0,
    }
}

#[test]
fn infra_readme_shows_these_prices_and_outputs() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let p = prices();
    assert!(
        readme.contains(&p.markdown()),
        "infra/README.md's prices table differs from `switchboard cost --prices`:\n{}",
        p.markdown()
    );
    for connections in [10_000.0, 100_000.0, 1_000_000.0] {
        let output = render(&readme_scenario(connections), &p);
        assert!(
            readme.contains(&output),
            "infra/README.md lacks the output for {connections} connections:\n{output}"
        );
    }
}
