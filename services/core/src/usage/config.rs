//! Usage settings.

use std::time::Duration;

use crate::config::{optional, ConfigError};

/// Default `USAGE_RETENTION_DAYS`: a month and a few days, enough to bill a month.
pub const DEFAULT_USAGE_RETENTION_DAYS: u64 = 35;
/// Longest `USAGE_RETENTION_DAYS`: a year and a month.
pub const MAX_USAGE_RETENTION_DAYS: u64 = 400;
/// Minute buckets the memory store holds at most (about 150 bytes each: ~30 MB). With the
/// default 25 % share a tenant may hold 50,000 of them, the minutes of 34.7 days.
pub const MAX_MEMORY_USAGE_BUCKETS: usize = 200_000;

const DAY: u64 = 86_400;

/// Usage settings (`USAGE_RETENTION_DAYS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageConfig {
    /// How long minute buckets are kept, and the longest range one usage request reads.
    pub retention: Duration,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(DEFAULT_USAGE_RETENTION_DAYS * DAY),
        }
    }
}

impl UsageConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let days = optional::<u64>(&lookup, "USAGE_RETENTION_DAYS")?
            .unwrap_or(DEFAULT_USAGE_RETENTION_DAYS);
        if !(1..=MAX_USAGE_RETENTION_DAYS).contains(&days) {
            return Err(ConfigError::Invalid {
                name: "USAGE_RETENTION_DAYS",
                value: days.to_string(),
                reason: format!("must be 1 to {MAX_USAGE_RETENTION_DAYS}"),
            });
        }
        Ok(Self {
            retention: Duration::from_secs(days * DAY),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_checks_the_environment() {
        assert_eq!(
            UsageConfig::from_lookup(|_| None).unwrap(),
            UsageConfig::default()
        );
        let year =
            UsageConfig::from_lookup(|k| (k == "USAGE_RETENTION_DAYS").then(|| "400".into()))
                .unwrap();
        assert_eq!(year.retention, Duration::from_secs(400 * DAY));
        for value in ["0", "401", "a month", "-1"] {
            let error = UsageConfig::from_lookup(|k| {
                (k == "USAGE_RETENTION_DAYS").then(|| value.to_string())
            })
            .unwrap_err();
            assert!(
                error.to_string().contains("USAGE_RETENTION_DAYS"),
                "{error}"
            );
        }
    }
}
