//! Publisher settings.

use std::time::Duration;

use crate::auth::config::{DEFAULT_LEEWAY_SECS, MAX_LEEWAY_SECS};
use crate::config::{bounded, flag, optional, scan_segments, ConfigError, DEFAULT_SCAN_SEGMENTS};

/// Most posts one message may have in flight (`FANOUT_CONCURRENCY` upper bound).
pub const MAX_FANOUT_CONCURRENCY: usize = 1_024;
/// Default `FANOUT_SHARD_SIZE`: connections per roster page (per work item).
pub const DEFAULT_SHARD_SIZE: usize = 1_000;
/// Largest `FANOUT_SHARD_SIZE`.
pub const MAX_SHARD_SIZE: usize = 10_000;
/// Default `GONE_GRACE_SECS`: API Gateway answers 410 until a handshake completes.
pub const DEFAULT_GONE_GRACE_SECS: u64 = 30;
/// Largest `GONE_GRACE_SECS`.
pub const MAX_GONE_GRACE_SECS: u64 = 3_600;
/// Largest `FANOUT_RATE` (posts per second per publisher process).
pub const MAX_FANOUT_RATE: u32 = 1_000_000;
/// A Lambda publisher starts no post with less than this left before its deadline.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

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

/// Settings of the publisher (`docs/design.md`, "Configuration").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherConfig {
    /// Posts in flight per message (`FANOUT_CONCURRENCY`, default 64).
    pub fanout_concurrency: usize,
    /// Non-envelope bodies go verbatim to every connection (`LEGACY_BROADCAST`).
    pub legacy_broadcast: bool,
    /// Connections per roster page, so per work item (`FANOUT_SHARD_SIZE`, default 1,000).
    pub shard_size: usize,
    /// Broadcast chains, one per scan segment (`SCAN_SEGMENTS`, default 4).
    pub scan_segments: u32,
    /// A `410` for a connection younger than this keeps its roster item
    /// (`GONE_GRACE_SECS`, default 30).
    pub gone_grace: Duration,
    /// Posts per second of this publisher process, all messages together
    /// (`FANOUT_RATE`; 0 = unlimited, the default).
    pub fanout_rate: u32,
    /// No post starts with less than this left before the invocation's deadline.
    pub deadline_margin: Duration,
    /// Delay of the first retry work item; doubles with each attempt (capped at the
    /// queue's longest delay).
    pub retry_item_delay: Duration,
    pub retry: RetryPolicy,
    /// Clock skew allowed on a connection's `tokenExpiresAt` before it counts as expired
    /// (`JWT_LEEWAY_SECS`, default 30, as the verifier and the local gateway use).
    pub token_leeway_secs: u64,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        Self {
            fanout_concurrency: 64,
            legacy_broadcast: false,
            shard_size: DEFAULT_SHARD_SIZE,
            scan_segments: DEFAULT_SCAN_SEGMENTS as u32,
            gone_grace: Duration::from_secs(DEFAULT_GONE_GRACE_SECS),
            fanout_rate: 0,
            deadline_margin: DEADLINE_MARGIN,
            retry_item_delay: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            token_leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }
}

impl PublisherConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let gone_grace_secs =
            optional::<u64>(&lookup, "GONE_GRACE_SECS")?.unwrap_or(DEFAULT_GONE_GRACE_SECS);
        if gone_grace_secs > MAX_GONE_GRACE_SECS {
            return Err(ConfigError::Invalid {
                name: "GONE_GRACE_SECS",
                value: gone_grace_secs.to_string(),
                reason: format!("must be at most {MAX_GONE_GRACE_SECS}"),
            });
        }
        let fanout_rate = optional::<u32>(&lookup, "FANOUT_RATE")?.unwrap_or(0);
        if fanout_rate > MAX_FANOUT_RATE {
            return Err(ConfigError::Invalid {
                name: "FANOUT_RATE",
                value: fanout_rate.to_string(),
                reason: format!("must be at most {MAX_FANOUT_RATE} (0 = unlimited)"),
            });
        }
        let token_leeway_secs =
            optional::<u64>(&lookup, "JWT_LEEWAY_SECS")?.unwrap_or(DEFAULT_LEEWAY_SECS);
        if token_leeway_secs > MAX_LEEWAY_SECS {
            return Err(ConfigError::Invalid {
                name: "JWT_LEEWAY_SECS",
                value: token_leeway_secs.to_string(),
                reason: format!("must be at most {MAX_LEEWAY_SECS}"),
            });
        }
        let scan_segments = scan_segments(&lookup)?;
        Ok(Self {
            fanout_concurrency: bounded(&lookup, "FANOUT_CONCURRENCY", 64, MAX_FANOUT_CONCURRENCY)?,
            legacy_broadcast: flag(&lookup, "LEGACY_BROADCAST", false)?,
            shard_size: bounded(
                &lookup,
                "FANOUT_SHARD_SIZE",
                DEFAULT_SHARD_SIZE,
                MAX_SHARD_SIZE,
            )?,
            scan_segments: u32::try_from(scan_segments).unwrap_or(1),
            gone_grace: Duration::from_secs(gone_grace_secs),
            fanout_rate,
            token_leeway_secs,
            ..Self::default()
        })
    }

    /// The delay of a retry work item for `attempt` (2 for the first retry).
    pub fn retry_item_delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(2).min(10);
        self.retry_item_delay
            .saturating_mul(1 << exponent)
            .min(crate::queue::MAX_ENQUEUE_DELAY)
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
    fn retry_items_back_off_up_to_the_queue_limit() {
        let config = PublisherConfig::default();
        assert_eq!(config.retry_item_delay(2), Duration::from_secs(5));
        assert_eq!(config.retry_item_delay(3), Duration::from_secs(10));
        assert_eq!(config.retry_item_delay(5), Duration::from_secs(40));
        assert_eq!(config.retry_item_delay(40), Duration::from_secs(900));
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
        assert_eq!(config.token_leeway_secs, 30);
        let leeway = PublisherConfig::from_lookup(|k| (k == "JWT_LEEWAY_SECS").then(|| "0".into()));
        assert_eq!(leeway.unwrap().token_leeway_secs, 0);
        assert!(
            PublisherConfig::from_lookup(|k| (k == "JWT_LEEWAY_SECS").then(|| "3601".into()))
                .is_err()
        );
        let sharded = PublisherConfig::from_lookup(|k| match k {
            "FANOUT_SHARD_SIZE" => Some("500".into()),
            "SCAN_SEGMENTS" => Some("8".into()),
            "GONE_GRACE_SECS" => Some("0".into()),
            "FANOUT_RATE" => Some("2500".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(sharded.shard_size, 500);
        assert_eq!(sharded.scan_segments, 8);
        assert_eq!(sharded.gone_grace, Duration::ZERO);
        assert_eq!(sharded.fanout_rate, 2_500);
        for (name, value) in [
            ("FANOUT_SHARD_SIZE", "0"),
            ("FANOUT_SHARD_SIZE", "10001"),
            ("SCAN_SEGMENTS", "0"),
            ("GONE_GRACE_SECS", "-1"),
            ("GONE_GRACE_SECS", "3601"),
            ("FANOUT_RATE", "1000001"),
            ("FANOUT_RATE", "fast"),
        ] {
            let error = PublisherConfig::from_lookup(|k| (k == name).then(|| value.to_string()))
                .unwrap_err();
            assert!(error.to_string().contains(name), "{name}={value}: {error}");
        }
        assert_eq!(
            PublisherConfig::from_lookup(|_| None).unwrap(),
            PublisherConfig::default()
        );
    }
}
