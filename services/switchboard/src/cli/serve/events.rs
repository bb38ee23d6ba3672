//! The event settings of `serve` (docs/design.md, "Events"): `EVENTS_OFFLINE_DELAY_SECS`
//! and the `WEBHOOK_*` endpoints, read once at start. Events are on iff an endpoint is
//! configured (`WEBHOOK_URL` or `WEBHOOK_FILE`); the tenants of `TENANTS_FILE`, when it is
//! set, are the only ones `WEBHOOK_FILE` may name.

use std::collections::HashSet;
use std::time::Duration;

use switchboard_core::config::{optional, ConfigError};
use switchboard_core::events::{DEFAULT_OFFLINE_DELAY_SECS, MAX_OFFLINE_DELAY_SECS};
use switchboard_core::tenants::SettingsTable;
use switchboard_model::TenantId;

use crate::cli::Refusal;
use crate::serve::webhooks::WebhookConfig;

/// The variable of the offline delay.
const OFFLINE_DELAY_VAR: &str = "EVENTS_OFFLINE_DELAY_SECS";

/// What events run with, when they are on.
pub struct EventsConfig {
    pub webhooks: WebhookConfig,
    pub offline_delay: Duration,
}

/// `EVENTS_OFFLINE_DELAY_SECS` (default 3, 0..=900): how long a user has had no connection
/// before `user.offline`.
pub fn offline_delay(lookup: &impl Fn(&str) -> Option<String>) -> Result<Duration, ConfigError> {
    let secs = optional::<u64>(lookup, OFFLINE_DELAY_VAR)?.unwrap_or(DEFAULT_OFFLINE_DELAY_SECS);
    if secs > MAX_OFFLINE_DELAY_SECS {
        return Err(ConfigError::Invalid {
            name: OFFLINE_DELAY_VAR,
            value: secs.to_string(),
            reason: format!("must be between 0 and {MAX_OFFLINE_DELAY_SECS}"),
        });
    }
    Ok(Duration::from_secs(secs))
}

/// The event settings from `lookup` (every one checked, events on or off); `None` when no
/// endpoint is configured. `dev`: `serve --dev`; `tenants_file`: `TENANTS_FILE` (already
/// read and validated).
pub fn config(
    lookup: impl Fn(&str) -> Option<String>,
    dev: bool,
    tenants_file: Option<&str>,
) -> Result<Option<EventsConfig>, Refusal> {
    let offline_delay = offline_delay(&lookup).map_err(Refusal::from)?;
    let known = known_tenants(tenants_file)?;
    let webhooks =
        WebhookConfig::from_lookup(&lookup, dev, known.as_ref()).map_err(Refusal::from)?;
    Ok(webhooks.map(|webhooks| EventsConfig {
        webhooks,
        offline_delay,
    }))
}

/// The tenants `TENANTS_FILE` lists, when it is set.
fn known_tenants(tenants_file: Option<&str>) -> Result<Option<HashSet<TenantId>>, Refusal> {
    let Some(path) = tenants_file.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let refuse = |problem: String| {
        Refusal::new(
            "TENANTS_FILE",
            problem,
            "fix the file (WEBHOOK_FILE names only tenants it lists)",
        )
    };
    let text = std::fs::read_to_string(path).map_err(|e| refuse(format!("{path}: {e}")))?;
    let table = SettingsTable::parse(&text).map_err(|e| refuse(format!("{path}: {e}")))?;
    Ok(Some(table.tenants.into_keys().collect()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn delay(value: &str) -> Result<Duration, ConfigError> {
        let value = value.to_string();
        offline_delay(&move |name: &str| (name == OFFLINE_DELAY_VAR).then(|| value.clone()))
    }

    #[test]
    fn the_offline_delay_is_0_to_900_seconds_default_3() {
        assert_eq!(
            offline_delay(&|_: &str| None).unwrap(),
            Duration::from_secs(3)
        );
        assert_eq!(delay("0").unwrap(), Duration::ZERO);
        assert_eq!(delay("900").unwrap(), Duration::from_secs(900));
        assert!(delay("901").is_err());
        assert!(delay("-1").is_err());
        assert!(delay("soon").is_err());
    }

    #[test]
    fn no_endpoint_means_events_off() {
        assert!(config(|_: &str| None, false, None).unwrap().is_none());
    }
}
