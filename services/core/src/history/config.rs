//! History settings.

use std::time::Duration;

use crate::config::{bounded, optional, ConfigError};

/// Default `HISTORY_TTL_SECS`: five minutes of history.
pub const DEFAULT_HISTORY_TTL_SECS: u64 = 300;
/// Longest `HISTORY_TTL_SECS` (a day: history is a reconnect buffer, not an archive).
pub const MAX_HISTORY_TTL_SECS: u64 = 86_400;
/// Default `HISTORY_MAX_PER_STREAM` (memory store).
pub const DEFAULT_HISTORY_MAX_PER_STREAM: usize = 1_000;
/// Largest `HISTORY_MAX_PER_STREAM`.
pub const MAX_HISTORY_MAX_PER_STREAM: usize = 100_000;
/// Default `RESUME_MAX`: messages one resume sends at most.
pub const DEFAULT_RESUME_MAX: usize = 500;
/// Largest `RESUME_MAX`.
pub const MAX_RESUME_MAX: usize = 10_000;
/// Default `HISTORY_MAX_BYTES`: what the memory store holds at most, every frame counted
/// once plus an estimate of its bookkeeping per entry, per stream it is in and per stream.
pub const DEFAULT_HISTORY_MAX_BYTES: usize = 256 * 1024 * 1024;
/// Smallest `HISTORY_MAX_BYTES` (a few of the largest frames).
pub const MIN_HISTORY_MAX_BYTES: usize = 1024 * 1024;
/// Largest `HISTORY_MAX_BYTES`.
pub const MAX_HISTORY_MAX_BYTES: usize = 64 * 1024 * 1024 * 1024;
/// Default `RESUME_MAX_BYTES`: frame bytes one `resume` sends at most.
pub const DEFAULT_RESUME_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Smallest `RESUME_MAX_BYTES`: one frame of the largest size always fits.
pub const MIN_RESUME_MAX_BYTES: usize = switchboard_model::MAX_FRAME_BYTES;
/// Largest `RESUME_MAX_BYTES`.
pub const MAX_RESUME_MAX_BYTES: usize = 256 * 1024 * 1024;

/// History settings (`HISTORY_TTL_SECS`, `HISTORY_MAX_PER_STREAM`, `HISTORY_MAX_BYTES`,
/// `RESUME_MAX`, `RESUME_MAX_BYTES`); the table of the DynamoDB store is the adapter's
/// setting (`HISTORY_TABLE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryConfig {
    /// How long entries are kept; zero turns history off.
    pub ttl: Duration,
    /// Newest entries kept per stream by the memory store.
    pub max_per_stream: usize,
    /// Bytes the memory store holds at most (the oldest entries are evicted beyond).
    pub max_bytes: usize,
    /// Most messages one `resume` sends.
    pub resume_max: usize,
    /// Most frame bytes one `resume` sends.
    pub resume_max_bytes: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(DEFAULT_HISTORY_TTL_SECS),
            max_per_stream: DEFAULT_HISTORY_MAX_PER_STREAM,
            max_bytes: DEFAULT_HISTORY_MAX_BYTES,
            resume_max: DEFAULT_RESUME_MAX,
            resume_max_bytes: DEFAULT_RESUME_MAX_BYTES,
        }
    }
}

impl HistoryConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let ttl = optional::<u64>(&lookup, "HISTORY_TTL_SECS")?.unwrap_or(DEFAULT_HISTORY_TTL_SECS);
        if ttl > MAX_HISTORY_TTL_SECS {
            return Err(ConfigError::Invalid {
                name: "HISTORY_TTL_SECS",
                value: ttl.to_string(),
                reason: format!("must be at most {MAX_HISTORY_TTL_SECS} (0 turns history off)"),
            });
        }
        Ok(Self {
            ttl: Duration::from_secs(ttl),
            max_per_stream: bounded(
                &lookup,
                "HISTORY_MAX_PER_STREAM",
                DEFAULT_HISTORY_MAX_PER_STREAM,
                MAX_HISTORY_MAX_PER_STREAM,
            )?,
            max_bytes: between(
                &lookup,
                "HISTORY_MAX_BYTES",
                DEFAULT_HISTORY_MAX_BYTES,
                MIN_HISTORY_MAX_BYTES..=MAX_HISTORY_MAX_BYTES,
            )?,
            resume_max: bounded(&lookup, "RESUME_MAX", DEFAULT_RESUME_MAX, MAX_RESUME_MAX)?,
            resume_max_bytes: between(
                &lookup,
                "RESUME_MAX_BYTES",
                DEFAULT_RESUME_MAX_BYTES,
                MIN_RESUME_MAX_BYTES..=MAX_RESUME_MAX_BYTES,
            )?,
        })
    }

    /// Whether messages are recorded at all.
    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }
}

/// A byte count within `range` (`default` when unset).
fn between(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, ConfigError> {
    let value = optional::<usize>(lookup, name)?.unwrap_or(default);
    if !range.contains(&value) {
        return Err(ConfigError::Invalid {
            name,
            value: value.to_string(),
            reason: format!(
                "must be between {} and {} bytes",
                range.start(),
                range.end()
            ),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_checks_the_environment() {
        assert_eq!(
            HistoryConfig::from_lookup(|_| None).unwrap(),
            HistoryConfig::default()
        );
        let off =
            HistoryConfig::from_lookup(|k| (k == "HISTORY_TTL_SECS").then(|| "0".into())).unwrap();
        assert!(!off.enabled());
        for (name, value) in [
            ("HISTORY_TTL_SECS", "86401"),
            ("HISTORY_TTL_SECS", "soon"),
            ("HISTORY_MAX_PER_STREAM", "0"),
            ("RESUME_MAX", "10001"),
            ("HISTORY_MAX_BYTES", "1000"),
            ("HISTORY_MAX_BYTES", "lots"),
            ("RESUME_MAX_BYTES", "1024"),
            ("RESUME_MAX_BYTES", "268435457"),
        ] {
            let error =
                HistoryConfig::from_lookup(|k| (k == name).then(|| value.to_string())).unwrap_err();
            assert!(error.to_string().contains(name), "{error}");
        }
    }
}
