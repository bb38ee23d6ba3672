//! Settings of the connect handler ([`ConnectConfig`]: how long a roster item lives), read
//! once at start-up by the `$connect` Lambda and `serve`.

use crate::config::{optional, ConfigError};
use crate::roster::DEFAULT_CONNECTION_TTL_SECS;

/// Settings of the connect handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectConfig {
    /// Roster item lifetime in seconds (`CONNECTION_TTL_SECS`, default 7,500).
    pub connection_ttl_secs: i64,
}

/// Largest `CONNECTION_TTL_SECS` (one year): `now + ttl` can never overflow.
pub const MAX_CONNECTION_TTL_SECS: i64 = 365 * 24 * 60 * 60;

impl ConnectConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let ttl =
            optional::<i64>(&lookup, "CONNECTION_TTL_SECS")?.unwrap_or(DEFAULT_CONNECTION_TTL_SECS);
        if !(1..=MAX_CONNECTION_TTL_SECS).contains(&ttl) {
            return Err(ConfigError::Invalid {
                name: "CONNECTION_TTL_SECS",
                value: ttl.to_string(),
                reason: format!("must be 1 to {MAX_CONNECTION_TTL_SECS} seconds"),
            });
        }
        Ok(Self {
            connection_ttl_secs: ttl,
        })
    }
}

impl Default for ConnectConfig {
    fn default() -> Self {
        Self {
            connection_ttl_secs: DEFAULT_CONNECTION_TTL_SECS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ttl(value: &str) -> Result<ConnectConfig, ConfigError> {
        let value = value.to_string();
        ConnectConfig::from_lookup(move |k| (k == "CONNECTION_TTL_SECS").then(|| value.clone()))
    }

    #[test]
    fn errors_name_the_variable() {
        for bad in ["9223372036854775807", "31536001", "-5"] {
            let err = ttl(bad).unwrap_err();
            assert!(err.to_string().contains("CONNECTION_TTL_SECS"), "{err}");
        }
        assert!(ttl("31536000").is_ok());
    }

    #[test]
    fn defaults_apply() {
        let config = ConnectConfig::from_lookup(|_| None).unwrap();
        assert_eq!(config.connection_ttl_secs, 7_500);
        assert_eq!(config, ConnectConfig::default());
    }
}
