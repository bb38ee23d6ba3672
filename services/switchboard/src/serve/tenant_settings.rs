//! Tenant settings on `serve` (docs/design.md: Tenants): `TENANTS_FILE` is re-read every
//! [`RELOAD_INTERVAL`] when its modification time changed; the sockets of tenants it now
//! suspends close with 4003. An invalid new file is logged and counted, and the settings in
//! force stay.

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::tenants::Tenants;
use switchboard_model::close::CLOSE_TENANT_SUSPENDED;
use tokio::sync::watch;

use super::metrics::Metrics;
use super::registry::Registry;

/// How often `TENANTS_FILE`'s modification time is checked.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// Applies one reload check: closes the sockets of the tenants now suspended.
pub fn reload(tenants: &Tenants, registry: &Registry, metrics: &Metrics) {
    match tenants.reload_if_changed() {
        Ok(None) => {}
        Ok(Some(suspended)) => {
            tracing::info!(suspended = suspended.len(), "tenant settings reloaded");
            for tenant in &suspended {
                registry.close_tenant(tenant, CLOSE_TENANT_SUSPENDED, "tenant suspended");
            }
        }
        Err(error) => {
            metrics.tenant_settings_invalid.inc();
            tracing::error!(%error, "tenant settings not reloaded; the settings in force stay");
        }
    }
}

/// Checks `TENANTS_FILE` every [`RELOAD_INTERVAL`] until shutdown.
pub async fn watch(
    tenants: Tenants,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(RELOAD_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => reload(&tenants, &registry, &metrics),
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}
