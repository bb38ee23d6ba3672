//! Web Push settings (`VAPID_*`, `PUSH_*`).

use std::time::Duration;

use super::{VapidError, VapidKeys};
use crate::config::{bounded, ConfigError};
use crate::devices::{EndpointPolicy, DEFAULT_DEVICE_TTL_DAYS, DEFAULT_MAX_DEVICES_PER_USER};

/// Web Push settings.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// `VAPID_PUBLIC_KEY`, `VAPID_PRIVATE_KEY`, `VAPID_SUBJECT`: all three or none (push off).
    pub vapid: Option<VapidKeys>,
    /// `PUSH_MAX_DEVICES_PER_USER` (default 10).
    pub max_devices_per_user: usize,
    /// `PUSH_DEVICE_TTL_DAYS` (default 60).
    pub device_ttl: Duration,
    /// `PUSH_CONCURRENCY_PER_SERVICE`: pushes in flight to one push service origin (default 50).
    pub concurrency_per_service: usize,
    /// `PUSH_TIMEOUT_SECS`: one push request, connect to last byte (default 10).
    pub timeout: Duration,
    /// Which endpoints a subscription may name (not a variable: `serve --dev` allows
    /// `https` on loopback so tests run a local push service).
    pub endpoint_policy: EndpointPolicy,
}

/// Largest `PUSH_MAX_DEVICES_PER_USER`.
pub const MAX_DEVICES_PER_USER: usize = 100;
/// Largest `PUSH_DEVICE_TTL_DAYS`.
pub const MAX_DEVICE_TTL_DAYS: usize = 365;
/// Default and largest `PUSH_CONCURRENCY_PER_SERVICE`.
pub const DEFAULT_CONCURRENCY_PER_SERVICE: usize = 50;
pub const MAX_CONCURRENCY_PER_SERVICE: usize = 1_000;
/// Default and largest `PUSH_TIMEOUT_SECS`.
pub const DEFAULT_TIMEOUT_SECS: usize = 10;
pub const MAX_TIMEOUT_SECS: usize = 60;

const VAPID_VARIABLES: [&str; 3] = ["VAPID_PUBLIC_KEY", "VAPID_PRIVATE_KEY", "VAPID_SUBJECT"];

impl PushConfig {
    /// Reads the settings (endpoint policy: [`EndpointPolicy::Public`]; `serve --dev`
    /// changes it). The three `VAPID_*` variables are set together or not at all; the
    /// private key is never echoed in an error.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let days = bounded(
            &lookup,
            "PUSH_DEVICE_TTL_DAYS",
            DEFAULT_DEVICE_TTL_DAYS as usize,
            MAX_DEVICE_TTL_DAYS,
        )?;
        Ok(Self {
            vapid: vapid(&lookup)?,
            max_devices_per_user: bounded(
                &lookup,
                "PUSH_MAX_DEVICES_PER_USER",
                DEFAULT_MAX_DEVICES_PER_USER,
                MAX_DEVICES_PER_USER,
            )?,
            device_ttl: Duration::from_secs(days as u64 * 86_400),
            concurrency_per_service: bounded(
                &lookup,
                "PUSH_CONCURRENCY_PER_SERVICE",
                DEFAULT_CONCURRENCY_PER_SERVICE,
                MAX_CONCURRENCY_PER_SERVICE,
            )?,
            timeout: Duration::from_secs(bounded(
                &lookup,
                "PUSH_TIMEOUT_SECS",
                DEFAULT_TIMEOUT_SECS,
                MAX_TIMEOUT_SECS,
            )? as u64),
            endpoint_policy: EndpointPolicy::Public,
        })
    }
}

/// The VAPID keys, or `None` when none of the three variables is set.
fn vapid(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<VapidKeys>, ConfigError> {
    let values = VAPID_VARIABLES.map(|name| lookup(name).filter(|v| !v.trim().is_empty()));
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    let set = VAPID_VARIABLES
        .iter()
        .zip(&values)
        .find(|(_, v)| v.is_some())
        .map_or("", |(name, _)| *name);
    if let Some((missing, _)) = VAPID_VARIABLES
        .iter()
        .zip(&values)
        .find(|(_, v)| v.is_none())
    {
        return Err(ConfigError::Invalid {
            name: missing,
            value: String::new(),
            reason: format!(
                "must be set when {set} is (VAPID_PUBLIC_KEY, VAPID_PRIVATE_KEY and \
                 VAPID_SUBJECT go together)"
            ),
        });
    }
    let [Some(public), Some(private), Some(subject)] = values else {
        return Ok(None);
    };
    VapidKeys::parse(&public, &private, &subject)
        .map(Some)
        .map_err(|error| {
            let (name, value) = match error {
                VapidError::PrivateKey(_) => ("VAPID_PRIVATE_KEY", "(hidden)".to_string()),
                VapidError::Subject(_) => ("VAPID_SUBJECT", subject.clone()),
                _ => ("VAPID_PUBLIC_KEY", public.clone()),
            };
            ConfigError::Invalid {
                name,
                value,
                reason: error.to_string(),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webpush::VapidKeyPair;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<PushConfig, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PushConfig::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn defaults_with_push_off() {
        let config = config(&[]).unwrap();
        assert!(config.vapid.is_none());
        assert_eq!(config.max_devices_per_user, 10);
        assert_eq!(config.device_ttl, Duration::from_secs(60 * 86_400));
        assert_eq!(config.concurrency_per_service, 50);
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert_eq!(config.endpoint_policy, EndpointPolicy::Public);
    }

    #[test]
    fn reads_every_setting() {
        let pair = VapidKeyPair::generate().unwrap();
        let config = config(&[
            ("VAPID_PUBLIC_KEY", &pair.public_key),
            ("VAPID_PRIVATE_KEY", &pair.private_key),
            ("VAPID_SUBJECT", "mailto:ops@example.com"),
            ("PUSH_MAX_DEVICES_PER_USER", "3"),
            ("PUSH_DEVICE_TTL_DAYS", "7"),
            ("PUSH_CONCURRENCY_PER_SERVICE", "5"),
            ("PUSH_TIMEOUT_SECS", "2"),
        ])
        .unwrap();
        assert_eq!(config.vapid.unwrap().public_key(), pair.public_key);
        assert_eq!(config.max_devices_per_user, 3);
        assert_eq!(config.device_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(config.concurrency_per_service, 5);
        assert_eq!(config.timeout, Duration::from_secs(2));
    }

    #[test]
    fn refuses_out_of_range_numbers_naming_the_variable() {
        for (name, value) in [
            ("PUSH_MAX_DEVICES_PER_USER", "101"),
            ("PUSH_DEVICE_TTL_DAYS", "0"),
            ("PUSH_CONCURRENCY_PER_SERVICE", "1001"),
            ("PUSH_TIMEOUT_SECS", "61"),
            ("PUSH_TIMEOUT_SECS", "soon"),
        ] {
            let error = config(&[(name, value)]).unwrap_err();
            assert!(error.to_string().starts_with(name), "{error}");
        }
    }

    #[test]
    fn refuses_half_set_vapid_keys_naming_the_missing_variable() {
        let pair = VapidKeyPair::generate().unwrap();
        let error = config(&[
            ("VAPID_PUBLIC_KEY", &pair.public_key),
            ("VAPID_PRIVATE_KEY", &pair.private_key),
        ])
        .unwrap_err();
        assert!(error.to_string().starts_with("VAPID_SUBJECT"), "{error}");
        let error = config(&[("VAPID_SUBJECT", "mailto:a@b.c")]).unwrap_err();
        assert!(error.to_string().starts_with("VAPID_PUBLIC_KEY"), "{error}");
        assert!(!error.to_string().contains(&pair.private_key));
    }

    #[test]
    fn refuses_mismatched_or_bad_keys_without_echoing_the_private_key() {
        let pair = VapidKeyPair::generate().unwrap();
        let other = VapidKeyPair::generate().unwrap();
        let error = config(&[
            ("VAPID_PUBLIC_KEY", &other.public_key),
            ("VAPID_PRIVATE_KEY", &pair.private_key),
            ("VAPID_SUBJECT", "mailto:a@b.c"),
        ])
        .unwrap_err();
        let shown = error.to_string();
        assert!(shown.starts_with("VAPID_PUBLIC_KEY"), "{shown}");
        assert!(shown.contains("does not match"), "{shown}");
        assert!(!shown.contains(&pair.private_key), "{shown}");

        let bad_private = format!("{}x", &pair.private_key[..30]);
        let error = config(&[
            ("VAPID_PUBLIC_KEY", &pair.public_key),
            ("VAPID_PRIVATE_KEY", &bad_private),
            ("VAPID_SUBJECT", "mailto:a@b.c"),
        ])
        .unwrap_err();
        let shown = error.to_string();
        assert!(shown.starts_with("VAPID_PRIVATE_KEY"), "{shown}");
        assert!(!shown.contains(&bad_private), "{shown}");

        let error = config(&[
            ("VAPID_PUBLIC_KEY", &pair.public_key),
            ("VAPID_PRIVATE_KEY", &pair.private_key),
            ("VAPID_SUBJECT", "ops@example.com"),
        ])
        .unwrap_err();
        assert!(error.to_string().starts_with("VAPID_SUBJECT"), "{error}");
    }
}
