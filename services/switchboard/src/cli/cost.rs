//! `switchboard cost`: what a deployment on AWS costs a month, per AWS service, from the
//! unit prices in `cost/prices.json` (each with its source page and the day it was last
//! confirmed) and the counts the code makes today (`cost/model.rs` names where each comes
//! from): the total, per connection-month, API Gateway's floor (connection-minutes plus one
//! ping and one pong per interval), keep-alive's share, and the same for the previous design
//! (a `default` Lambda answering a ping every 4 minutes).
//!
//! ```text
//! switchboard cost --connections 100000 --hours-per-day 24 --messages-per-user-per-day 50
//! switchboard cost --prices        # the prices as a Markdown table
//! ```
//!
//! A flag out of range is a refusal naming it (exit 78), like every other command's.

mod model;
mod prices;
mod render;
#[cfg(test)]
mod tests;

use clap::Args;

use super::CliError;
use model::{LogLevel, Scenario, Tracing};
use prices::Prices;

#[derive(Args, Debug)]
pub struct CostArgs {
    /// Connections (one per user) held while connected.
    #[arg(long, default_value = "100000", value_parser = connections, allow_negative_numbers = true)]
    connections: f64,
    /// Hours a day each user is connected: 24 is always on; less is one session a day.
    #[arg(long, default_value = "24", value_parser = hours, allow_negative_numbers = true)]
    hours_per_day: f64,
    /// Notifications each user receives a day.
    #[arg(long, default_value = "50", value_parser = non_negative, allow_negative_numbers = true)]
    messages_per_user_per_day: f64,
    /// Users one publish names (a `users` target): the publish's request, invocations and
    /// queue work are shared by them.
    #[arg(long, default_value = "1", value_parser = at_least_one, allow_negative_numbers = true)]
    users_per_publish: f64,
    /// Bytes of a message's `data`.
    #[arg(long, default_value = "512", value_parser = message_bytes, allow_negative_numbers = true)]
    message_bytes: f64,
    /// The functions' log level (the stack's `LogLevel`).
    #[arg(long, value_enum, default_value = "info")]
    log_level: LogLevel,
    /// X-Ray tracing of the functions.
    #[arg(long, value_enum, default_value = "active")]
    tracing: Tracing,
    /// Minutes between the client's keep-alive pings (clients/js `keepAliveMs`).
    #[arg(long, default_value = "9", value_parser = ping_minutes, allow_negative_numbers = true)]
    ping_minutes: f64,
    /// Minutes a socket lives before the client replaces it (clients/js `lifetimeMs`, under
    /// API Gateway's 2-hour cap).
    #[arg(long, default_value = "115", value_parser = lifetime_minutes, allow_negative_numbers = true)]
    lifetime_minutes: f64,
    /// Minutes a token is valid (the client refreshes it in band 1 minute before); 0: tokens
    /// outlive sockets.
    #[arg(long, default_value = "60", value_parser = non_negative, allow_negative_numbers = true)]
    token_minutes: f64,
    /// Print the unit prices (a Markdown table with sources) instead of an estimate.
    #[arg(long)]
    prices: bool,
}

fn number(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| "not a number".to_string())?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err("not a finite number".into())
    }
}

/// `text` as a number `accepts` takes, else `what` it must be.
fn checked(text: &str, what: &str, accepts: impl Fn(f64) -> bool) -> Result<f64, String> {
    let value = number(text)?;
    if accepts(value) {
        Ok(value)
    } else {
        Err(what.to_string())
    }
}

fn whole(value: f64, low: f64, high: f64) -> bool {
    value.fract() == 0.0 && (low..=high).contains(&value)
}

fn connections(text: &str) -> Result<f64, String> {
    checked(
        text,
        "must be a whole number from 1 to 1,000,000,000",
        |v| whole(v, 1.0, 1e9),
    )
}

fn hours(text: &str) -> Result<f64, String> {
    checked(text, "must be more than 0 and at most 24", |v| {
        v > 0.0 && v <= 24.0
    })
}

fn non_negative(text: &str) -> Result<f64, String> {
    checked(text, "must be from 0 to 1,000,000", |v| {
        (0.0..=1e6).contains(&v)
    })
}

fn at_least_one(text: &str) -> Result<f64, String> {
    checked(text, "must be a whole number from 1 to 1,000,000", |v| {
        whole(v, 1.0, 1e6)
    })
}

fn message_bytes(text: &str) -> Result<f64, String> {
    // API Gateway's WebSocket frame limit is 128 KB.
    checked(
        text,
        "must be from 1 to 131,072 (API Gateway's 128 KB frame)",
        |v| (1.0..=131_072.0).contains(&v),
    )
}

fn ping_minutes(text: &str) -> Result<f64, String> {
    // API Gateway closes a socket after 10 idle minutes.
    checked(
        text,
        "must be more than 0 and under 10 (API Gateway's idle limit)",
        |v| v > 0.0 && v < 10.0,
    )
}

fn lifetime_minutes(text: &str) -> Result<f64, String> {
    checked(
        text,
        "must be from 10 to 120 (API Gateway's 2-hour cap)",
        |v| (10.0..=120.0).contains(&v),
    )
}

impl CostArgs {
    fn scenario(&self) -> Scenario {
        Scenario {
            connections: self.connections,
            hours_per_day: self.hours_per_day,
            messages_per_user_per_day: self.messages_per_user_per_day,
            users_per_publish: self.users_per_publish,
            message_bytes: self.message_bytes,
            log_level: self.log_level,
            tracing: self.tracing,
            ping_minutes: self.ping_minutes,
            lifetime_minutes: self.lifetime_minutes,
            token_minutes: self.token_minutes,
        }
    }
}

pub fn cost_command(args: CostArgs) -> Result<(), CliError> {
    let prices = Prices::embedded().map_err(|e| CliError::Failed(e.to_string()))?;
    if args.prices {
        print!("{}", prices.markdown());
    } else {
        print!("{}", render::render(&args.scenario(), &prices));
    }
    Ok(())
}
