//! Tenant settings (docs/design.md: Tenants): the per-tenant limits of `TENANTS_FILE`, the
//! checks both deployments make with them, and the errors they answer.
//!
//! - [`Tenants::admit_publish`]: the publish API, after the caller's right to the target —
//!   a suspended tenant (403), a target type it may not be sent (403), a `data` over its
//!   `maxPayloadBytes` (413), a publish over its `publishesPerSecond` (429 + `Retry-After`).
//! - [`Tenants::admit_connection`]: the handshake — suspended (403), at `maxConnections` or
//!   `maxConnectionsPerUser` (429). `serve` counts exactly under its registry's lock; the
//!   AWS `$connect` counts the roster, approximately (docs/design.md: Tenants).
//!
//! The file is read and validated at start (a mistake refuses start-up, naming the key);
//! `serve` re-reads it when it changes ([`Tenants::reload_if_changed`]) and keeps the
//! settings it has when the new text is invalid.

mod rate;
mod settings;
mod share;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use switchboard_model::{Claims, Target, TenantId};

use crate::config::ConfigError;

pub use rate::{PublishRates, MAX_RATE_TENANTS};
pub use settings::{
    SettingsTable, TenantSettings, MAX_CONNECTIONS_SETTING, MAX_PUBLISH_RATE_SETTING,
    MAX_SETTINGS_FILE_BYTES, SETTINGS_KEYS,
};
pub use share::{share_of, BoundedState, Bounds, DEFAULT_SHARE_PERCENT};

/// A tenant setting a request ran into (its key in the settings file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    MaxConnections,
    MaxConnectionsPerUser,
    PublishesPerSecond,
    MaxPayloadBytes,
    AllowedTargets,
}

impl Limit {
    /// The setting's key, as written in the file and answered in `"limit"`.
    pub fn key(self) -> &'static str {
        match self {
            Limit::MaxConnections => "maxConnections",
            Limit::MaxConnectionsPerUser => "maxConnectionsPerUser",
            Limit::PublishesPerSecond => "publishesPerSecond",
            Limit::MaxPayloadBytes => "maxPayloadBytes",
            Limit::AllowedTargets => "allowedTargets",
        }
    }
}

/// Why a tenant's request was refused by its settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("tenant {tenant} is suspended")]
    Suspended { tenant: TenantId },
    #[error("{message}")]
    Exceeded {
        limit: Limit,
        message: String,
        /// When the request may succeed again (rates only).
        retry_after_secs: Option<u64>,
    },
}

struct Source {
    path: PathBuf,
    modified: Option<SystemTime>,
}

struct Inner {
    table: RwLock<Arc<SettingsTable>>,
    rates: PublishRates,
    source: Option<Mutex<Source>>,
}

/// The tenant settings in force (cheap to clone; one per process).
#[derive(Clone)]
pub struct Tenants {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Tenants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenants")
            .field("listed", &self.table().tenants.len())
            .finish_non_exhaustive()
    }
}

impl Default for Tenants {
    fn default() -> Self {
        Self::unlimited()
    }
}

impl Tenants {
    /// No settings file: no tenant limits beyond the process-wide ones.
    pub fn unlimited() -> Self {
        Self::from_table(SettingsTable::default())
    }

    /// Fixed settings (tests, and a file already read).
    pub fn from_table(table: SettingsTable) -> Self {
        Self::build(table, None)
    }

    fn build(table: SettingsTable, source: Option<Source>) -> Self {
        Self {
            inner: Arc::new(Inner {
                table: RwLock::new(Arc::new(table)),
                rates: PublishRates::default(),
                source: source.map(Mutex::new),
            }),
        }
    }

    /// `TENANTS_FILE` (a path; unset: [`Tenants::unlimited`]), read and validated now.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        match lookup("TENANTS_FILE") {
            None => Ok(Self::unlimited()),
            Some(path) if path.trim().is_empty() => Err(invalid(&path, "set but empty".into())),
            Some(path) => {
                let path = PathBuf::from(path.trim());
                let (table, modified) = read(&path)?;
                Ok(Self::build(table, Some(Source { path, modified })))
            }
        }
    }

    fn table(&self) -> Arc<SettingsTable> {
        self.inner
            .table
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The tenants `TENANTS_FILE` lists, when the settings come from it (`None` without a
    /// file: every tenant gets the defaults).
    pub fn listed(&self) -> Option<HashSet<TenantId>> {
        self.inner
            .source
            .is_some()
            .then(|| self.table().tenants.keys().cloned().collect())
    }

    /// The settings of `tenant` (its entry, or the defaults).
    pub fn settings(&self, tenant: &TenantId) -> Arc<TenantSettings> {
        self.table().get(tenant).clone()
    }

    /// Re-reads `TENANTS_FILE` if it changed since it was last read. `Ok(Some(tenants))`:
    /// new settings are in force, and `tenants` are the listed tenants now suspended (their
    /// live sockets must close). An invalid file keeps the settings in force.
    pub fn reload_if_changed(&self) -> Result<Option<Vec<TenantId>>, ConfigError> {
        let Some(source) = &self.inner.source else {
            return Ok(None);
        };
        let mut source = source
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let modified = std::fs::metadata(&source.path)
            .and_then(|m| m.modified())
            .ok();
        if modified == source.modified {
            return Ok(None);
        }
        source.modified = modified;
        let (table, _) = read(&source.path)?;
        let suspended = table
            .tenants
            .iter()
            .filter(|(_, settings)| settings.suspended)
            .map(|(tenant, _)| tenant.clone())
            .collect();
        *self
            .inner
            .table
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(table);
        Ok(Some(suspended))
    }

    /// Whether `tenant`'s tokens are refused.
    pub fn is_suspended(&self, tenant: &TenantId) -> bool {
        self.table().get(tenant).suspended
    }

    /// Whether a new connection of `tenant` may open, given the tenant's and the user's
    /// live connections before it.
    pub fn admit_connection(
        &self,
        tenant: &TenantId,
        tenant_connections: u64,
        user_connections: u64,
    ) -> Result<(), LimitError> {
        let settings = self.settings(tenant);
        if settings.suspended {
            return Err(LimitError::Suspended {
                tenant: tenant.clone(),
            });
        }
        if let Some(max) = settings.max_connections {
            if tenant_connections >= max {
                return Err(exceeded(
                    Limit::MaxConnections,
                    format!("tenant {tenant} holds its maximum of {max} connections"),
                ));
            }
        }
        if let Some(max) = settings.max_connections_per_user {
            if user_connections >= max {
                return Err(exceeded(
                    Limit::MaxConnectionsPerUser,
                    format!("this user of tenant {tenant} holds its maximum of {max} connections"),
                ));
            }
        }
        Ok(())
    }

    /// Whether `claims` may publish this to `target` under the target tenant's settings
    /// (after [`crate::publish_api::authorize`]); `payload_bytes` is the serialized `data`.
    /// A publish that passes takes one from the tenant's `publishesPerSecond` bucket.
    pub fn admit_publish(
        &self,
        claims: &Claims,
        target: &Target,
        payload_bytes: usize,
    ) -> Result<(), LimitError> {
        let table = self.table();
        if table.get(&claims.tenant).suspended {
            return Err(LimitError::Suspended {
                tenant: claims.tenant.clone(),
            });
        }
        // A broadcast belongs to no tenant: only the caller's suspension applies.
        let Some(tenant) = target.tenant() else {
            return Ok(());
        };
        let settings = table.get(tenant);
        if settings.suspended {
            return Err(LimitError::Suspended {
                tenant: tenant.clone(),
            });
        }
        let kind = target.kind();
        if let Some(allowed) = &settings.allowed_targets {
            if !allowed.contains(&kind) {
                return Err(exceeded(
                    Limit::AllowedTargets,
                    format!(
                        "tenant {tenant} may not be sent `{}` targets (allowed: {})",
                        kind.as_str(),
                        allowed
                            .iter()
                            .map(|k| k.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        if let Some(max) = settings.max_payload_bytes {
            if payload_bytes > max {
                return Err(exceeded(
                    Limit::MaxPayloadBytes,
                    format!("data is {payload_bytes} bytes, over tenant {tenant}'s {max}"),
                ));
            }
        }
        if let Some(rate) = settings.publishes_per_second {
            let burst = settings.publish_burst.unwrap_or(rate);
            if let Err(wait) = self.inner.rates.take(tenant, rate, burst) {
                return Err(LimitError::Exceeded {
                    limit: Limit::PublishesPerSecond,
                    message: format!(
                        "tenant {tenant} is over its {rate} publishes per second; retry later"
                    ),
                    retry_after_secs: Some(wait.as_secs_f64().ceil().max(1.0) as u64),
                });
            }
        }
        Ok(())
    }

    /// How long `tenant`'s history is kept: its `historyTtlSecs`, else `default`.
    pub fn history_ttl(&self, tenant: Option<&TenantId>, default: Duration) -> Duration {
        tenant
            .and_then(|tenant| self.settings(tenant).history_ttl_secs)
            .map_or(default, Duration::from_secs)
    }
}

fn exceeded(limit: Limit, message: String) -> LimitError {
    LimitError::Exceeded {
        limit,
        message,
        retry_after_secs: None,
    }
}

fn invalid(path: &str, reason: String) -> ConfigError {
    ConfigError::Invalid {
        name: "TENANTS_FILE",
        value: path.to_string(),
        reason,
    }
}

/// Reads and validates the file at `path`, with its modification time.
fn read(path: &std::path::Path) -> Result<(SettingsTable, Option<SystemTime>), ConfigError> {
    let shown = path.display().to_string();
    let metadata = std::fs::metadata(path).map_err(|e| invalid(&shown, e.to_string()))?;
    if metadata.len() > MAX_SETTINGS_FILE_BYTES {
        return Err(invalid(
            &shown,
            format!("over {MAX_SETTINGS_FILE_BYTES} bytes"),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| invalid(&shown, e.to_string()))?;
    let table = SettingsTable::parse(&text).map_err(|reason| invalid(&shown, reason))?;
    Ok((table, metadata.modified().ok()))
}

#[cfg(test)]
mod tests;
