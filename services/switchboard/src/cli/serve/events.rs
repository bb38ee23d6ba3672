//! The event settings of `serve` (docs/design.md: Events): `EVENTS_OFFLINE_DELAY_SECS`
//! and the `WEBHOOK_*` endpoints, read once at start. Events are on iff an endpoint is
//! configured (`WEBHOOK_URL` or `WEBHOOK_FILE`); the tenants of `TENANTS_FILE`, when it is
//! set, are the only ones `WEBHOOK_FILE` may name.

use std::time::Duration;

use switchboard_core::events::offline_delay;
use switchboard_core::tenants::Tenants;

use crate::cli::Refusal;
use crate::serve::webhooks::WebhookConfig;

/// What events run with, when they are on.
pub struct EventsConfig {
    pub webhooks: WebhookConfig,
    pub offline_delay: Duration,
}

/// The event settings from `lookup` (every one checked, events on or off); `None` when no
/// endpoint is configured. `dev`: `serve --dev`; `tenants`: the settings of `TENANTS_FILE`
/// (already read and validated), whose tenants are the only ones `WEBHOOK_FILE` may name.
pub fn config(
    lookup: impl Fn(&str) -> Option<String>,
    dev: bool,
    tenants: &Tenants,
) -> Result<Option<EventsConfig>, Refusal> {
    let offline_delay = offline_delay(&lookup).map_err(Refusal::from)?;
    let known = tenants.listed();
    let webhooks =
        WebhookConfig::from_lookup(&lookup, dev, known.as_ref()).map_err(Refusal::from)?;
    Ok(webhooks.map(|webhooks| EventsConfig {
        webhooks,
        offline_delay,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn no_endpoint_means_events_off() {
        assert!(config(|_: &str| None, false, &Tenants::unlimited())
            .unwrap()
            .is_none());
    }
}
