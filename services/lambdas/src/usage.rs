//! Usage per tenant per minute for the `$connect`/`$disconnect` functions
//! (docs/design.md: Usage): the DynamoDB usage store.

use std::sync::Arc;

use switchboard_aws::dynamo::DynamoStores;
use switchboard_core::config::ConfigError;
use switchboard_core::usage::{Usage, UsageConfig};

/// The usage store with `USAGE_RETENTION_DAYS`.
pub fn build(
    lookup: impl Fn(&str) -> Option<String>,
    stores: &DynamoStores,
) -> Result<Usage, ConfigError> {
    let config = UsageConfig::from_lookup(&lookup)?;
    Ok(Usage::new(
        Arc::new(stores.usage(config.retention)),
        &config,
    ))
}
