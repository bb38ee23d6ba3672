//! Receipt settings.

use std::time::Duration;

use crate::config::{bounded, optional, ConfigError};

/// Default `RECEIPT_TTL_SECS`: a day.
pub const DEFAULT_RECEIPT_TTL_SECS: u64 = 86_400;
/// Longest `RECEIPT_TTL_SECS` (a week: receipts are reports, not an archive).
pub const MAX_RECEIPT_TTL_SECS: u64 = 604_800;
/// Default `RECEIPT_CAPACITY`: receipts the memory store holds at most (each tenant up to
/// its share; see [`super::MemoryReceiptStore`]).
pub const MAX_MEMORY_RECEIPTS: usize = 100_000;
/// Largest `RECEIPT_CAPACITY`.
pub const MAX_RECEIPT_CAPACITY: usize = 10_000_000;

/// Receipt settings (`RECEIPT_TTL_SECS`, `RECEIPT_CAPACITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptConfig {
    /// How long a receipt is kept; zero turns receipts (and idempotent publish) off.
    pub ttl: Duration,
    /// Receipts the memory store holds at most (`serve` with the memory roster).
    pub capacity: usize,
}

impl Default for ReceiptConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(DEFAULT_RECEIPT_TTL_SECS),
            capacity: MAX_MEMORY_RECEIPTS,
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
            capacity: bounded(
                &lookup,
                "RECEIPT_CAPACITY",
                MAX_MEMORY_RECEIPTS,
                MAX_RECEIPT_CAPACITY,
            )?,
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
        for (name, value) in [
            ("RECEIPT_TTL_SECS", "604801"),
            ("RECEIPT_TTL_SECS", "a day"),
            ("RECEIPT_TTL_SECS", "-1"),
            ("RECEIPT_CAPACITY", "0"),
            ("RECEIPT_CAPACITY", "10000001"),
            ("RECEIPT_CAPACITY", "many"),
        ] {
            let error =
                ReceiptConfig::from_lookup(|k| (k == name).then(|| value.to_string())).unwrap_err();
            assert!(error.to_string().contains(name), "{error}");
        }
        let small = ReceiptConfig::from_lookup(|k| (k == "RECEIPT_CAPACITY").then(|| "500".into()))
            .unwrap();
        assert_eq!(small.capacity, 500);
    }
}
