//! The tenant settings file (`TENANTS_FILE`, docs/design.md: Tenants):
//! `{"defaults": {…}, "tenants": {"<tenant>": {…}}}`, validated whole before anything uses
//! it. Every problem names its place in the file (`tenants.acme.maxConnections`); an
//! unknown key, a negative or zero limit, an unknown target type or an invalid tenant id
//! refuses the file.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use switchboard_model::{TargetKind, TenantId, MAX_FRAME_BYTES};

use crate::history::MAX_HISTORY_TTL_SECS;

/// Largest `maxConnections` / `maxConnectionsPerUser`.
pub const MAX_CONNECTIONS_SETTING: u64 = 100_000_000;
/// Largest `publishesPerSecond` / `publishBurst`.
pub const MAX_PUBLISH_RATE_SETTING: u64 = 1_000_000;
/// Largest settings file read.
pub const MAX_SETTINGS_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Every key a settings object may hold (the infra's synth-time check uses the same list).
pub const SETTINGS_KEYS: [&str; 8] = [
    "maxConnections",
    "maxConnectionsPerUser",
    "publishesPerSecond",
    "publishBurst",
    "maxPayloadBytes",
    "allowedTargets",
    "historyTtlSecs",
    "suspended",
];

/// Target types a tenant may be allowed (`broadcast` belongs to no tenant).
const TENANT_TARGETS: [TargetKind; 3] = [
    TargetKind::Users,
    TargetKind::Tenant,
    TargetKind::Connections,
];

/// One tenant's effective settings: its own entry over `defaults`. `None` = no limit of
/// the tenant's own (the process-wide limits still apply).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantSettings {
    /// `maxConnections`: live connections of the tenant.
    pub max_connections: Option<u64>,
    /// `maxConnectionsPerUser`: live connections of one user of the tenant.
    pub max_connections_per_user: Option<u64>,
    /// `publishesPerSecond`: accepted publishes per second to the tenant (token bucket).
    pub publishes_per_second: Option<u32>,
    /// `publishBurst`: the bucket's size (default: `publishesPerSecond`).
    pub publish_burst: Option<u32>,
    /// `maxPayloadBytes`: largest `data`, serialized, of a publish to the tenant.
    pub max_payload_bytes: Option<usize>,
    /// `allowedTargets`: target types the tenant may be sent (`None`: all).
    pub allowed_targets: Option<Vec<TargetKind>>,
    /// `historyTtlSecs`: how long the tenant's history is kept (over `HISTORY_TTL_SECS`).
    pub history_ttl_secs: Option<u64>,
    /// `suspended`: tokens of the tenant refused at connect and publish.
    pub suspended: bool,
}

/// The parsed file: `defaults` and each listed tenant's merged settings.
#[derive(Debug, Clone, Default)]
pub struct SettingsTable {
    pub defaults: Arc<TenantSettings>,
    pub tenants: HashMap<TenantId, Arc<TenantSettings>>,
}

impl SettingsTable {
    /// The settings of `tenant`: its entry, or the defaults.
    pub fn get(&self, tenant: &TenantId) -> &Arc<TenantSettings> {
        self.tenants.get(tenant).unwrap_or(&self.defaults)
    }

    /// Parses and validates a settings file's text; the error names the place at fault.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(root) = value else {
            return Err("must be a JSON object with `defaults` and `tenants`".into());
        };
        if let Some(key) = root
            .keys()
            .find(|k| !matches!(k.as_str(), "defaults" | "tenants"))
        {
            return Err(format!("unknown key `{key}` (expected defaults, tenants)"));
        }
        let defaults = match root.get("defaults") {
            None => TenantSettings::default(),
            Some(value) => overlay(TenantSettings::default(), value, "defaults")?,
        };
        let mut tenants = HashMap::new();
        match root.get("tenants") {
            None => {}
            Some(Value::Object(entries)) => {
                for (name, value) in entries {
                    let place = format!("tenants.{name}");
                    let tenant = TenantId::parse(name)
                        .map_err(|e| format!("{place}: bad tenant id: {e}"))?;
                    let settings = overlay(defaults.clone(), value, &place)?;
                    tenants.insert(tenant, Arc::new(settings));
                }
            }
            Some(_) => return Err("tenants: must be an object of tenant ids".into()),
        }
        Ok(Self {
            defaults: Arc::new(defaults),
            tenants,
        })
    }
}

/// `base` with the keys of the settings object `value` (at `place`) applied.
fn overlay(mut base: TenantSettings, value: &Value, place: &str) -> Result<TenantSettings, String> {
    let Value::Object(object) = value else {
        return Err(format!("{place}: must be an object of settings"));
    };
    check_keys(object, place)?;
    let number = |key: &str, max: u64| -> Result<Option<u64>, String> {
        match object.get(key) {
            None => Ok(None),
            Some(value) => match value.as_u64() {
                Some(n) if (1..=max).contains(&n) => Ok(Some(n)),
                _ => Err(format!(
                    "{place}.{key}: {value} is not a whole number from 1 to {max}"
                )),
            },
        }
    };
    let narrow = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    if let Some(n) = number("maxConnections", MAX_CONNECTIONS_SETTING)? {
        base.max_connections = Some(n);
    }
    if let Some(n) = number("maxConnectionsPerUser", MAX_CONNECTIONS_SETTING)? {
        base.max_connections_per_user = Some(n);
    }
    if let Some(n) = number("publishesPerSecond", MAX_PUBLISH_RATE_SETTING)? {
        base.publishes_per_second = Some(narrow(n));
    }
    if let Some(n) = number("publishBurst", MAX_PUBLISH_RATE_SETTING)? {
        base.publish_burst = Some(narrow(n));
    }
    if let Some(n) = number("maxPayloadBytes", MAX_FRAME_BYTES as u64)? {
        base.max_payload_bytes = Some(usize::try_from(n).unwrap_or(MAX_FRAME_BYTES));
    }
    if let Some(n) = number("historyTtlSecs", MAX_HISTORY_TTL_SECS)? {
        base.history_ttl_secs = Some(n);
    }
    if let Some(value) = object.get("allowedTargets") {
        base.allowed_targets = Some(targets(value, &format!("{place}.allowedTargets"))?);
    }
    if let Some(value) = object.get("suspended") {
        base.suspended = value
            .as_bool()
            .ok_or_else(|| format!("{place}.suspended: {value} is not true or false"))?;
    }
    if base.publish_burst.is_some() && base.publishes_per_second.is_none() {
        return Err(format!(
            "{place}.publishBurst: set without publishesPerSecond"
        ));
    }
    Ok(base)
}

fn check_keys(object: &Map<String, Value>, place: &str) -> Result<(), String> {
    match object.keys().find(|k| !SETTINGS_KEYS.contains(&k.as_str())) {
        Some(key) => Err(format!(
            "{place}.{key}: unknown setting (expected one of {})",
            SETTINGS_KEYS.join(", ")
        )),
        None => Ok(()),
    }
}

fn targets(value: &Value, place: &str) -> Result<Vec<TargetKind>, String> {
    let Value::Array(items) = value else {
        return Err(format!("{place}: must be a list of target types"));
    };
    let mut kinds = Vec::with_capacity(items.len());
    for item in items {
        let kind = item
            .as_str()
            .and_then(|word| TENANT_TARGETS.into_iter().find(|k| k.as_str() == word))
            .ok_or_else(|| format!("{place}: {item} is not one of users, tenant, connections"))?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    #[test]
    fn listed_tenants_override_the_defaults_key_by_key() {
        let table = SettingsTable::parse(
            r#"{"defaults":{"maxConnections":100,"publishesPerSecond":50},
                "tenants":{"acme":{"maxConnections":5,"allowedTargets":["users"],"suspended":true}}}"#,
        )
        .unwrap();
        let acme = table.get(&tenant("acme"));
        assert_eq!(acme.max_connections, Some(5));
        assert_eq!(acme.publishes_per_second, Some(50));
        assert_eq!(acme.allowed_targets, Some(vec![TargetKind::Users]));
        assert!(acme.suspended);
        let other = table.get(&tenant("globex"));
        assert_eq!(other.max_connections, Some(100));
        assert!(!other.suspended);
        assert_eq!(
            SettingsTable::parse("{}")
                .unwrap()
                .get(&tenant("x"))
                .max_connections,
            None
        );
    }

    #[test]
    fn every_mistake_names_its_place() {
        for (text, named) in [
            (
                r#"{"defaults":{"maxConnection":5}}"#,
                "defaults.maxConnection",
            ),
            (
                r#"{"tenants":{"acme":{"maxConnections":-5}}}"#,
                "tenants.acme.maxConnections",
            ),
            (
                r#"{"tenants":{"acme":{"maxConnections":0}}}"#,
                "tenants.acme.maxConnections",
            ),
            (
                r#"{"tenants":{"acme":{"publishesPerSecond":1.5}}}"#,
                "tenants.acme.publishesPerSecond",
            ),
            (
                r#"{"tenants":{"acme":{"maxPayloadBytes":200000}}}"#,
                "tenants.acme.maxPayloadBytes",
            ),
            (
                r#"{"tenants":{"acme":{"allowedTargets":["broadcast"]}}}"#,
                "tenants.acme.allowedTargets",
            ),
            (
                r#"{"tenants":{"acme":{"suspended":"yes"}}}"#,
                "tenants.acme.suspended",
            ),
            (
                r#"{"tenants":{"acme":{"publishBurst":5}}}"#,
                "tenants.acme.publishBurst",
            ),
            (r#"{"tenants":{"bad#tenant":{}}}"#, "tenants.bad#tenant"),
            (r#"{"tenant":{}}"#, "tenant"),
            (r#"[]"#, "JSON object"),
        ] {
            let error = SettingsTable::parse(text).unwrap_err();
            assert!(error.contains(named), "{text}: {error}");
        }
    }
}
