//! Usage per tenant per minute for the `$connect`/`$disconnect` functions
//! (docs/design.md: Usage): the DynamoDB usage store in the history table.

use std::sync::Arc;

use switchboard_core::config::ConfigError;
use switchboard_core::history::HistoryConfig;
use switchboard_core::usage::{Usage, UsageConfig};

/// The usage store on `HISTORY_TABLE` with `USAGE_RETENTION_DAYS`, on the roster's client.
pub fn build(
    lookup: impl Fn(&str) -> Option<String>,
    roster: &switchboard_aws::DynamoRosterStore,
) -> Result<Usage, ConfigError> {
    let history = HistoryConfig::from_lookup(&lookup)?;
    let config = UsageConfig::from_lookup(&lookup)?;
    let store = switchboard_aws::dynamo::DynamoUsageStore::new(
        roster.client().clone(),
        history.table,
        config.retention,
    );
    Ok(Usage::new(Arc::new(store), &config))
}
