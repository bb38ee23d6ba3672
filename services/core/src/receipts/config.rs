//! Receipt settings.

use std::time::Duration;

use crate::config::{optional, ConfigError};

/// Default `RECEIPT_TTL_SECS`: a day.
pub const DEFAULT_RECEIPT_TTL_SECS: u64 = 86_400;
/// Longest `RECEIPT_TTL_SECS` (a week: receipts are reports, not an archive).
pub const MAX_RECEIPT_TTL_SECS: u64 = 604_800;
/// Receipts the memory store holds at most; the oldest go first when it is full.
pub const MAX_MEMORY_RECEIPTS: usize = 100_000;

/// Receipt settings (`RECEIPT_TTL_SECS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptConfig {
    /// How long a receipt is kept; zero turns receipts (and idempotent publish) off.
    pub ttl: Duration,
}

impl Default for ReceiptConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(DEFAULT_RECEIPT_TTL_SECS),
        }
    }
}

impl ReceiptConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let ttl = optional::<u64>(&lookup, "RECEIPT_TTL_SECS")?.unwrap_or(DEFAULT_RECEIPT_TTL_SECS);
        if ttl > MAX_RECEIPT_TTL_SECS {
            return Err(ConfigError::Invalid {
                name: "RECEIPT_TTL_SECS",
                value: ttl.to_string(),
                reason: format!("must be at most {MAX_RECEIPT_TTL_SECS} (0 turns receipts off)"),
            });
        }
        Ok(Self {
            ttl: Duration::from_secs(ttl),
        })
    }

    /// Whether receipts are kept at all.
    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_checks_the_environment() {
        assert_eq!(
            ReceiptConfig::from_lookup(|_| None).unwrap(),
            ReceiptConfig::default()
        );
        let off =
            ReceiptConfig::from_lookup(|k| (k == "RECEIPT_TTL_SECS").then(|| "0".into())).unwrap();
        assert!(!off.enabled());
        for value in ["604801", "a day", "-1"] {
            let error = ReceiptConfig::from_lookup(|k| {
                (k == "RECEIPT_TTL_SECS").then(|| value.to_string())
            })
            .unwrap_err();
            assert!(error.to_string().contains("RECEIPT_TTL_SECS"), "{error}");
        }
    }
}
