//! The unit prices of the cost model: `prices.json` beside this file, embedded at build
//! time, one entry per priced item with its source page and the day it was last confirmed.

use serde::Deserialize;

/// The prices file, as shipped.
pub const PRICES_JSON: &str = include_str!("prices.json");

/// One unit price: `usd` per `per` `unit`s.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Price {
    pub id: String,
    pub service: String,
    pub item: String,
    pub usd: f64,
    pub per: f64,
    pub unit: String,
    pub source: String,
    pub read: String,
    pub confirmed_by: String,
}

/// Every price, in one Region.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Prices {
    pub region: String,
    pub note: String,
    pub prices: Vec<Price>,
}

/// Why the prices file is unusable (a build-time file: a test parses it).
#[derive(Debug, thiserror::Error)]
pub enum PricesError {
    #[error("prices.json does not parse: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("prices.json has no price {0:?}")]
    Missing(&'static str),
}

/// Every id the model prices.
pub const IDS: [&str; 17] = [
    "websocket_connection_minute",
    "websocket_message",
    "http_api_request",
    "lambda_request",
    "lambda_gb_second",
    "dynamodb_write_unit",
    "dynamodb_read_unit",
    "dynamodb_storage",
    "sqs_request",
    "eventbridge_event",
    "eventbridge_archive_gb",
    "logs_ingested_gb",
    "logs_stored_gb",
    "custom_metric",
    "alarm",
    "dashboard",
    "xray_trace",
];

impl Prices {
    /// The embedded file, checked to hold every price the model uses.
    pub fn embedded() -> Result<Self, PricesError> {
        let prices: Prices = serde_json::from_str(PRICES_JSON)?;
        for id in IDS {
            if !prices.prices.iter().any(|p| p.id == id) {
                return Err(PricesError::Missing(id));
            }
        }
        Ok(prices)
    }

    /// Dollars for one unit of `id` (0 for an id not in the file: [`Prices::embedded`]
    /// checked every id the model uses).
    pub fn per_unit(&self, id: &str) -> f64 {
        self.prices
            .iter()
            .find(|p| p.id == id)
            .map_or(0.0, |p| p.usd / p.per)
    }

    /// The prices as a Markdown table (infra/README.md shows it; a test compares).
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "| service | item | USD | per | source ({}) | last confirmed | how |\n|---|---|---:|---|---|---|---|\n",
            self.region
        );
        for p in &self.prices {
            let per = if p.per == 1.0 {
                p.unit.clone()
            } else {
                format!("{} {}", super::render::count(p.per), p.unit)
            };
            out.push_str(&format!(
                "| {} | {} | ${} | {} | {} | {} | {} |\n",
                p.service, p.item, p.usd, per, p.source, p.read, p.confirmed_by
            ));
        }
        out
    }
}
