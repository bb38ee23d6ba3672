//! Publisher settings.

use std::time::Duration;

use crate::config::{bounded, flag, ConfigError};

/// Most posts one message may have in flight (`FANOUT_CONCURRENCY` upper bound).
pub const MAX_FANOUT_CONCURRENCY: usize = 1_024;

/// How failed posts are retried: exponential backoff with full jitter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per post, the first included.
    pub max_attempts: u32,
    /// Backoff ceiling before the first retry; doubles each retry.
    pub base_delay: Duration,
    /// Largest backoff ceiling.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1-based): uniform in `[0, ceiling]`, where the
    /// ceiling is `base_delay × 2^(retry-1)` capped at `max_delay` ("full jitter").
    pub fn delay(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(20);
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::random_range(0..=millis))
    }
}

/// Settings of the publisher (SPEC §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherConfig {
    /// Posts in flight per message (`FANOUT_CONCURRENCY`, default 64).
    pub fanout_concurrency: usize,
    /// Non-envelope bodies go verbatim to every connection (`LEGACY_BROADCAST`).
    pub legacy_broadcast: bool,
    pub retry: RetryPolicy,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        Self {
            fanout_concurrency: 64,
            legacy_broadcast: false,
            retry: RetryPolicy::default(),
        }
    }
}

impl PublisherConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            fanout_concurrency: bounded(&lookup, "FANOUT_CONCURRENCY", 64, MAX_FANOUT_CONCURRENCY)?,
            legacy_broadcast: flag(&lookup, "LEGACY_BROADCAST", false)?,
            retry: RetryPolicy::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(400),
        };
        for _ in 0..200 {
            assert!(policy.delay(1) <= Duration::from_millis(100));
            assert!(policy.delay(2) <= Duration::from_millis(200));
            assert!(policy.delay(9) <= Duration::from_millis(400));
        }
        let spread: std::collections::BTreeSet<_> = (0..50).map(|_| policy.delay(3)).collect();
        assert!(spread.len() > 5, "jitter spreads the delays");
    }

    #[test]
    fn reads_environment() {
        let config = PublisherConfig::from_lookup(|k| match k {
            "FANOUT_CONCURRENCY" => Some("8".into()),
            "LEGACY_BROADCAST" => Some("true".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(config.fanout_concurrency, 8);
        assert!(config.legacy_broadcast);
        assert_eq!(
            PublisherConfig::from_lookup(|_| None).unwrap(),
            PublisherConfig::default()
        );
    }
}
