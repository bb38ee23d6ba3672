//! Publisher settings.

use std::time::Duration;

use crate::auth::config::{DEFAULT_LEEWAY_SECS, MAX_LEEWAY_SECS};
use crate::config::{bounded, flag, optional, scan_segments, ConfigError, DEFAULT_SCAN_SEGMENTS};

/// Most posts one message may have in flight (`FANOUT_CONCURRENCY` upper bound).
pub const MAX_FANOUT_CONCURRENCY: usize = 1_024;
/// Default `FANOUT_SHARD_SIZE`: connections per roster page (per work item).
pub const DEFAULT_PAGE_SIZE: usize = 1_000;
/// Largest `FANOUT_SHARD_SIZE`.
pub const MAX_PAGE_SIZE: usize = 10_000;
/// Default `GONE_GRACE_SECS`: API Gateway answers 410 until a handshake completes.
pub const DEFAULT_GONE_GRACE_SECS: u64 = 30;
/// Largest `GONE_GRACE_SECS`.
pub const MAX_GONE_GRACE_SECS: u64 = 3_600;
/// Largest `FANOUT_RATE` (posts per second per publisher process).
pub const MAX_FANOUT_RATE: u32 = 1_000_000;
/// Default `FANOUT_MAX_CONNECTIONS`: the most connections one tenant, or one broadcast,
/// is expected to reach; it sets how long a chain of work items may grow ([`max_hops`]).
///
/// [`max_hops`]: PublisherConfig::max_hops
pub const DEFAULT_MAX_CONNECTIONS: u64 = 10_000_000;
/// Largest `FANOUT_MAX_CONNECTIONS`.
pub const MAX_MAX_CONNECTIONS: u64 = 1_000_000_000;

// The time budget of an invocation with a deadline (a Lambda's), in one place
// (docs/design.md: Fan-out at any size, "Time budget"). A unit posts until `DEADLINE_MARGIN` is
// left, then settles: enqueues remainders and retries, dead-letters, writes its receipt and its
// work log entry. The margin is what the last post may still take plus what settling may take,
// with a second to spare; every client the publisher calls has timeouts that keep each
// call inside it.

/// Per-attempt timeout of one post (the management API client; retries are the
/// publisher's own).
pub const POST_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Per-attempt timeout of one SQS or DynamoDB call.
pub const STORE_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Timeout of one SQS or DynamoDB operation, its SDK retries included.
pub const STORE_OPERATION_TIMEOUT: Duration = Duration::from_secs(4);
/// What settling a unit may take: a few SQS and DynamoDB calls of tens of milliseconds
/// each, or one that hangs until its operation timeout.
pub const SETTLE_ALLOWANCE: Duration = STORE_OPERATION_TIMEOUT;
/// Left when the function returns, whatever happened.
pub const DEADLINE_SPARE: Duration = Duration::from_secs(1);
/// No post starts with less than this left before the deadline (and none starts after a
/// wait for the rate limiter that brought the deadline that close): 5 + 4 + 1 = 10 s.
pub const DEADLINE_MARGIN: Duration = POST_ATTEMPT_TIMEOUT
    .saturating_add(SETTLE_ALLOWANCE)
    .saturating_add(DEADLINE_SPARE);

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

/// Settings of the publisher (docs/design.md: Configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherConfig {
    /// Posts in flight per message (`FANOUT_CONCURRENCY`, default 64).
    pub fanout_concurrency: usize,
    /// Non-envelope bodies go verbatim to every connection (`LEGACY_BROADCAST`).
    pub legacy_broadcast: bool,
    /// Connections per roster page, so per work item: the page size (`FANOUT_SHARD_SIZE`,
    /// default 1,000; the variable keeps its first name, the size is a page's).
    pub page_size: usize,
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
    /// The most connections one tenant or broadcast is expected to reach
    /// (`FANOUT_MAX_CONNECTIONS`, default 10,000,000): bounds chains ([`Self::max_hops`]).
    pub max_connections: u64,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        Self {
            fanout_concurrency: 64,
            legacy_broadcast: false,
            page_size: DEFAULT_PAGE_SIZE,
            scan_segments: DEFAULT_SCAN_SEGMENTS as u32,
            gone_grace: Duration::from_secs(DEFAULT_GONE_GRACE_SECS),
            fanout_rate: 0,
            deadline_margin: DEADLINE_MARGIN,
            retry_item_delay: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            token_leeway_secs: DEFAULT_LEEWAY_SECS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
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
        let max_connections =
            optional::<u64>(&lookup, "FANOUT_MAX_CONNECTIONS")?.unwrap_or(DEFAULT_MAX_CONNECTIONS);
        if !(1..=MAX_MAX_CONNECTIONS).contains(&max_connections) {
            return Err(ConfigError::Invalid {
                name: "FANOUT_MAX_CONNECTIONS",
                value: max_connections.to_string(),
                reason: format!("must be 1 to {MAX_MAX_CONNECTIONS}"),
            });
        }
        Ok(Self {
            fanout_concurrency: bounded(&lookup, "FANOUT_CONCURRENCY", 64, MAX_FANOUT_CONCURRENCY)?,
            legacy_broadcast: flag(&lookup, "LEGACY_BROADCAST", false)?,
            page_size: bounded(
                &lookup,
                "FANOUT_SHARD_SIZE",
                DEFAULT_PAGE_SIZE,
                MAX_PAGE_SIZE,
            )?,
            scan_segments: u32::try_from(scan_segments).unwrap_or(1),
            gone_grace: Duration::from_secs(gone_grace_secs),
            fanout_rate,
            token_leeway_secs,
            max_connections,
            ..Self::default()
        })
    }

    /// The longest chain of work items a message may make before its next item is
    /// dead-lettered as a runaway (docs/design.md: Fan-out at any size):
    ///
    /// `2 × ⌈FANOUT_MAX_CONNECTIONS / FANOUT_SHARD_SIZE⌉ + 2 × MAX_WORK_ATTEMPTS + 10`
    ///
    /// A chain of pages is one hop per page, `⌈connections / page size⌉` of them; the factor
    /// 2 leaves room for pages cut short (roster items TTL has not swept yet, DynamoDB's 1 MB
    /// read limit); each retry of failed posts (at most `MAX_WORK_ATTEMPTS − 1`) and each
    /// deadline remainder adds a hop, and a redriven dead letter continues its count.
    /// With the defaults (10,000,000 connections, pages of 1,000): 20,020 hops.
    pub fn max_hops(&self) -> u32 {
        let page = u64::try_from(self.page_size.max(1)).unwrap_or(u64::MAX);
        let pages = self.max_connections.div_ceil(page);
        let hops = pages
            .saturating_mul(2)
            .saturating_add(2 * u64::from(super::MAX_WORK_ATTEMPTS) + 10);
        u32::try_from(hops).unwrap_or(u32::MAX)
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
    fn the_hop_bound_follows_the_configuration() {
        assert_eq!(PublisherConfig::default().max_hops(), 20_020);
        let tiny = PublisherConfig {
            page_size: 1,
            max_connections: 40,
            ..PublisherConfig::default()
        };
        assert_eq!(tiny.max_hops(), 100);
        let huge = PublisherConfig {
            page_size: 1,
            max_connections: MAX_MAX_CONNECTIONS,
            ..PublisherConfig::default()
        };
        assert_eq!(huge.max_hops(), 2_000_000_020);
        let config = PublisherConfig::from_lookup(|k| {
            (k == "FANOUT_MAX_CONNECTIONS").then(|| "5000".into())
        })
        .unwrap();
        assert_eq!(config.max_connections, 5_000);
        for bad in ["0", "1000000001", "many"] {
            let error = PublisherConfig::from_lookup(|k| {
                (k == "FANOUT_MAX_CONNECTIONS").then(|| bad.to_string())
            })
            .unwrap_err();
            assert!(
                error.to_string().contains("FANOUT_MAX_CONNECTIONS"),
                "{error}"
            );
        }
    }

    #[test]
    fn the_deadline_margin_covers_a_post_and_settling() {
        assert_eq!(DEADLINE_MARGIN, Duration::from_secs(10));
        assert!(DEADLINE_MARGIN >= POST_ATTEMPT_TIMEOUT + STORE_OPERATION_TIMEOUT + DEADLINE_SPARE);
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
        let paged = PublisherConfig::from_lookup(|k| match k {
            "FANOUT_SHARD_SIZE" => Some("500".into()),
            "SCAN_SEGMENTS" => Some("8".into()),
            "GONE_GRACE_SECS" => Some("0".into()),
            "FANOUT_RATE" => Some("2500".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(paged.page_size, 500);
        assert_eq!(paged.scan_segments, 8);
        assert_eq!(paged.gone_grace, Duration::ZERO);
        assert_eq!(paged.fanout_rate, 2_500);
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
