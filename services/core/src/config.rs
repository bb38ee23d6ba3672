//! Typed configuration read once at start-up from a lookup function
//! (`|k| std::env::var(k).ok()` in production, a map in tests). A missing required
//! variable or an invalid value is an error naming the variable.

use std::str::FromStr;

/// A variable that is missing or does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is required but not set")]
    Missing(&'static str),
    #[error("{name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// Reads an optional variable and parses it; blank counts as unset.
pub fn optional<T: FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match lookup(name) {
        None => Ok(None),
        Some(value) if value.trim().is_empty() => Ok(None),
        Some(value) => value
            .trim()
            .parse::<T>()
            .map(Some)
            .map_err(|e| ConfigError::Invalid {
                name,
                reason: e.to_string(),
                value,
            }),
    }
}

/// Reads a required variable.
pub fn required<T: FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    optional(lookup, name)?.ok_or(ConfigError::Missing(name))
}

/// A boolean variable: `true/false/1/0/yes/no`.
pub fn flag(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match lookup(name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v.is_empty() => Ok(default),
        Some(v) if matches!(v.as_str(), "true" | "1" | "yes" | "on") => Ok(true),
        Some(v) if matches!(v.as_str(), "false" | "0" | "no" | "off") => Ok(false),
        Some(v) => Err(ConfigError::Invalid {
            name,
            value: v,
            reason: "expected true or false".into(),
        }),
    }
}

/// An `http://` or `https://` URL with a host (the value of variable `name`), trimmed: the
/// one URL check of every configuration (JWKS, endpoints, queue and callback URLs).
pub fn http_url(name: &'static str, value: &str) -> Result<String, ConfigError> {
    let value = value.trim();
    let invalid = |reason: String| ConfigError::Invalid {
        name,
        value: value.to_string(),
        reason,
    };
    let parsed = reqwest::Url::parse(value).map_err(|e| invalid(format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("expected an http:// or https:// URL".into()));
    }
    Ok(value.to_string())
}

/// A positive integer within `1..=max`.
pub fn bounded(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: usize,
    max: usize,
) -> Result<usize, ConfigError> {
    let value = optional::<usize>(lookup, name)?.unwrap_or(default);
    if value == 0 || value > max {
        return Err(ConfigError::Invalid {
            name,
            value: value.to_string(),
            reason: format!("must be between 1 and {max}"),
        });
    }
    Ok(value)
}

/// Default `SCAN_SEGMENTS`: parallel scan segments of a broadcast (one publisher chain each).
pub const DEFAULT_SCAN_SEGMENTS: usize = 4;
/// Largest `SCAN_SEGMENTS`.
pub const MAX_SCAN_SEGMENTS: usize = 1_000;

/// `SCAN_SEGMENTS` (1..=1000, default 4): read by the roster's full scan and the
/// publisher's broadcast chains alike.
pub fn scan_segments(lookup: &impl Fn(&str) -> Option<String>) -> Result<usize, ConfigError> {
    bounded(
        lookup,
        "SCAN_SEGMENTS",
        DEFAULT_SCAN_SEGMENTS,
        MAX_SCAN_SEGMENTS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn map(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn errors_name_the_variable() {
        let err = bounded(
            &map(&[("FANOUT_CONCURRENCY", "lots")]),
            "FANOUT_CONCURRENCY",
            64,
            1000,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("FANOUT_CONCURRENCY="), "{err}");
        let err = bounded(
            &map(&[("FANOUT_CONCURRENCY", "0")]),
            "FANOUT_CONCURRENCY",
            64,
            1000,
        )
        .unwrap_err();
        assert!(err.to_string().contains("FANOUT_CONCURRENCY"));
        let err = flag(
            &map(&[("LEGACY_BROADCAST", "maybe")]),
            "LEGACY_BROADCAST",
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("LEGACY_BROADCAST"));
        let err = required::<String>(&map(&[]), "QUEUE_URL").unwrap_err();
        assert_eq!(err.to_string(), "QUEUE_URL is required but not set");
    }

    #[test]
    fn defaults_apply() {
        assert_eq!(bounded(&map(&[]), "X", 64, 1000).unwrap(), 64);
        assert!(!flag(&map(&[]), "X", false).unwrap());
        assert!(flag(&map(&[("X", "TRUE")]), "X", false).unwrap());
    }
}
