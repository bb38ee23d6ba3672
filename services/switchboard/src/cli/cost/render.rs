//! The table `switchboard cost` prints: per AWS service and item, this design's monthly
//! quantity and dollars beside the previous design's dollars; the totals, per
//! connection-month, API Gateway's floor, keep-alive's share and the target.

use std::fmt::Write as _;

use super::model::{
    estimate, floor, Design, LogLevel, Scenario, Tracing, GOAL_PER_CONNECTION, MONTH_DAYS,
    PREVIOUS_PING_MINUTES, SERVICES,
};
use super::prices::Prices;

/// `1234567.8` → `1,234,568`.
pub fn count(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Dollars: cents, with thousands separators.
fn usd(value: f64) -> String {
    let cents = (value * 100.0).round();
    format!(
        "${}.{:02}",
        count((cents / 100.0).trunc()),
        (cents % 100.0) as u64
    )
}

/// A quantity: whole numbers with separators, small ones with two decimals.
fn quantity(value: f64) -> String {
    if value >= 100.0 || value == value.trunc() {
        count(value)
    } else {
        format!("{value:.2}")
    }
}

fn percent(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.0} %", 100.0 * part / whole)
    } else {
        "-".into()
    }
}

fn minutes(value: f64) -> String {
    if value == value.trunc() {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

/// The whole report for `scenario`.
pub fn render(scenario: &Scenario, prices: &Prices) -> String {
    let now = estimate(scenario, Design::Current, prices);
    let before = estimate(scenario, Design::Previous, prices);
    let floor = floor(scenario, prices);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Switchboard on AWS: one month ({MONTH_DAYS} days), {} list prices (prices.json), free tiers ignored",
        prices.region
    );
    let _ = writeln!(
        out,
        "{} connections (one per user), {} h a day, {} messages per user per day, {} user(s) per publish, {} bytes each",
        count(scenario.connections),
        minutes(scenario.hours_per_day),
        minutes(scenario.messages_per_user_per_day),
        count(scenario.users_per_publish),
        count(scenario.message_bytes),
    );
    let _ = writeln!(
        out,
        "keep-alive: a ping every {} min (MOCK route, no Lambda); a new socket every {} min; tokens of {} min; logs {}; tracing {}",
        minutes(scenario.ping_minutes),
        minutes(scenario.lifetime_minutes),
        minutes(scenario.token_minutes),
        match scenario.log_level {
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
        },
        match scenario.tracing {
            Tracing::Active => "active",
            Tracing::Passthrough => "passthrough",
            Tracing::Off => "off",
        },
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<40} {:>16} {:<12} {:>12} {:>12}",
        "service / item", "quantity", "unit", "this design", "previous"
    );
    for service in SERVICES {
        let mine: Vec<_> = now.lines.iter().filter(|l| l.service == service).collect();
        let theirs: Vec<_> = before
            .lines
            .iter()
            .filter(|l| l.service == service)
            .collect();
        let subtotal = |lines: &[&super::model::Line]| lines.iter().map(|l| l.usd).sum::<f64>();
        let _ = writeln!(
            out,
            "{:<40} {:>16} {:<12} {:>12} {:>12}",
            service,
            "",
            "",
            usd(subtotal(&mine)),
            usd(subtotal(&theirs))
        );
        for (line, old) in mine.iter().zip(&theirs) {
            let _ = writeln!(
                out,
                "  {:<38} {:>16} {:<12} {:>12} {:>12}",
                line.item,
                quantity(line.quantity),
                line.unit,
                usd(line.usd),
                usd(old.usd)
            );
        }
    }
    let _ = writeln!(
        out,
        "{:<70} {:>12} {:>12}",
        "total per month",
        usd(now.total),
        usd(before.total)
    );
    let _ = writeln!(
        out,
        "{:<70} {:>12} {:>12}",
        "per connection-month",
        format!("${:.4}", now.per_connection),
        format!("${:.4}", before.per_connection)
    );
    let _ = writeln!(
        out,
        "{:<70} {:>12} {:>12}",
        "keep-alive share of the total",
        percent(now.keep_alive, now.total),
        percent(before.keep_alive, before.total)
    );
    let _ = writeln!(
        out,
        "{:<70} {:>12}",
        format!(
            "floor per connection-month (connection-minutes + ping + pong every {} min)",
            minutes(scenario.ping_minutes)
        ),
        format!("${floor:.4}")
    );
    let _ = writeln!(
        out,
        "previous design: `default` Lambda answers a ping every {} min",
        minutes(PREVIOUS_PING_MINUTES)
    );
    let verdict = if now.per_connection <= GOAL_PER_CONNECTION {
        "met"
    } else {
        "not met"
    };
    let _ = writeln!(
        out,
        "target: at most ${GOAL_PER_CONNECTION:.3} per connection-month: {verdict} (${:.4}, {:.2} × the floor)",
        now.per_connection,
        now.per_connection / floor
    );
    out
}
