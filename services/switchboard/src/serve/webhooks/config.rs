//! The webhook settings of `serve` (docs/design.md: Events), read once at start:
//!
//! - `WEBHOOK_URL` + `WEBHOOK_SECRET`: the global endpoint (both or neither);
//! - `WEBHOOK_FILE`: `{"tenants":{"<tenant>":{"url","secret"}}}`, a tenant's own endpoint
//!   (over the global one), validated whole: an unknown key, a bad tenant id, a tenant not
//!   in `TENANTS_FILE` (when that is set), a bad URL or secret refuses start-up, naming the
//!   entry (`tenants.acme.secret: …`);
//! - `WEBHOOK_RETRY_HOURS` (24, 1..=72), `WEBHOOK_QUEUE_CAPACITY` (100,000, 1..=1,000,000),
//!   `WEBHOOK_TIMEOUT_SECS` (10, 1..=60).
//!
//! A URL is `https` — or, with `--dev`, `http` to a loopback host — without user info or
//! fragment. A secret's value never appears in an error.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use reqwest::Url;
use serde_json::{Map, Value};
use switchboard_core::config::{bounded, http_url, ConfigError};
use switchboard_model::TenantId;

use super::sign::Secret;

pub const URL_VAR: &str = "WEBHOOK_URL";
pub const SECRET_VAR: &str = "WEBHOOK_SECRET";
pub const FILE_VAR: &str = "WEBHOOK_FILE";
pub const RETRY_HOURS_VAR: &str = "WEBHOOK_RETRY_HOURS";
pub const QUEUE_CAPACITY_VAR: &str = "WEBHOOK_QUEUE_CAPACITY";
pub const TIMEOUT_SECS_VAR: &str = "WEBHOOK_TIMEOUT_SECS";

pub const DEFAULT_RETRY_HOURS: usize = 24;
pub const MAX_RETRY_HOURS: usize = 72;
pub const DEFAULT_QUEUE_CAPACITY: usize = 100_000;
pub const MAX_QUEUE_CAPACITY: usize = 1_000_000;
pub const DEFAULT_TIMEOUT_SECS: usize = 10;
pub const MAX_TIMEOUT_SECS: usize = 60;
/// Largest `WEBHOOK_FILE` read.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// What a refusal shows instead of a secret's value.
const HIDDEN: &str = "(not shown)";

/// One endpoint: where deliveries go and the key they are signed with.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: Url,
    pub secret: Secret,
}

/// Every webhook setting.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `WEBHOOK_URL` + `WEBHOOK_SECRET`: events of tenants without their own endpoint, and
    /// broadcasts' `message.settled`.
    pub global: Option<Endpoint>,
    /// `WEBHOOK_FILE`: tenants' own endpoints.
    pub tenants: BTreeMap<TenantId, Endpoint>,
    /// `WEBHOOK_RETRY_HOURS`: an event not delivered this long after it was created is
    /// dropped (counted `expired`).
    pub retry_window: Duration,
    /// `WEBHOOK_QUEUE_CAPACITY`: events waiting or in flight, all endpoints together.
    pub capacity: usize,
    /// `WEBHOOK_TIMEOUT_SECS`: one delivery's whole time.
    pub timeout: Duration,
}

impl WebhookConfig {
    /// Reads the settings; `None` when no endpoint is configured (neither `WEBHOOK_URL`
    /// nor `WEBHOOK_FILE`): events are then off. The numbers are checked either way.
    /// `dev`: `serve --dev` (loopback `http` allowed). `known_tenants`: the tenants of
    /// `TENANTS_FILE`, when it is set.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        dev: bool,
        known_tenants: Option<&HashSet<TenantId>>,
    ) -> Result<Option<Self>, ConfigError> {
        let hours = bounded(
            &lookup,
            RETRY_HOURS_VAR,
            DEFAULT_RETRY_HOURS,
            MAX_RETRY_HOURS,
        )?;
        let capacity = bounded(
            &lookup,
            QUEUE_CAPACITY_VAR,
            DEFAULT_QUEUE_CAPACITY,
            MAX_QUEUE_CAPACITY,
        )?;
        let timeout = bounded(
            &lookup,
            TIMEOUT_SECS_VAR,
            DEFAULT_TIMEOUT_SECS,
            MAX_TIMEOUT_SECS,
        )?;
        let set = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let global = match (set(URL_VAR), set(SECRET_VAR)) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    SECRET_VAR,
                    String::new(),
                    format!("must be set when {URL_VAR} is"),
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    URL_VAR,
                    String::new(),
                    format!("must be set when {SECRET_VAR} is"),
                ))
            }
            (Some(url), Some(secret)) => Some(Endpoint {
                url: endpoint_url(URL_VAR, &url, dev)?,
                secret: Secret::parse(&secret)
                    .map_err(|reason| invalid(SECRET_VAR, HIDDEN.into(), reason))?,
            }),
        };
        let file = lookup(FILE_VAR);
        let tenants = match &file {
            None => BTreeMap::new(),
            Some(path) if path.trim().is_empty() => {
                return Err(invalid(FILE_VAR, path.clone(), "set but empty".into()))
            }
            Some(path) => read_file(Path::new(path.trim()), dev, known_tenants)?,
        };
        if global.is_none() && file.is_none() {
            return Ok(None);
        }
        Ok(Some(Self {
            global,
            tenants,
            retry_window: Duration::from_secs(hours as u64 * 3600),
            capacity,
            timeout: Duration::from_secs(timeout as u64),
        }))
    }

    /// One line for the start-up log: hosts only (a URL's path or query may carry a token).
    pub fn summary(&self) -> String {
        let host = |endpoint: &Endpoint| endpoint.url.host_str().unwrap_or("?").to_string();
        format!(
            "webhooks: global endpoint {}, {} tenant endpoints, retried for {} h, queue of {} events, timeout {} s",
            self.global.as_ref().map_or("none".into(), host),
            self.tenants.len(),
            self.retry_window.as_secs() / 3600,
            self.capacity,
            self.timeout.as_secs(),
        )
    }
}

fn invalid(name: &'static str, value: String, reason: String) -> ConfigError {
    ConfigError::Invalid {
        name,
        value,
        reason,
    }
}

/// `value` of `name` as an endpoint URL, or its refusal (a URL with user info is shown
/// without it).
fn endpoint_url(name: &'static str, value: &str, dev: bool) -> Result<Url, ConfigError> {
    let text = http_url(name, value)?;
    check_url(&text, dev).map_err(|(reason, shown)| invalid(name, shown, reason))
}

/// The URL `text` (already an http(s) URL with a host) checked for an endpoint: the
/// reason it is refused and the URL as it may be shown.
fn check_url(text: &str, dev: bool) -> Result<Url, (String, String)> {
    let mut url = Url::parse(text).map_err(|e| (format!("not a URL: {e}"), text.into()))?;
    if !url.username().is_empty() || url.password().is_some() {
        let _ = url.set_username("");
        let _ = url.set_password(None);
        return Err((
            "must not carry user info (the secret signs each delivery)".into(),
            url.to_string(),
        ));
    }
    if url.fragment().is_some() {
        return Err(("must not have a #fragment".into(), text.into()));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if dev && is_loopback(&url) => Ok(url),
        "http" if dev => Err((
            "http is allowed only to a loopback host (localhost, 127.0.0.0/8, [::1]); use https"
                .into(),
            text.into(),
        )),
        _ => Err((
            "must be https (http to a loopback host only with --dev)".into(),
            text.into(),
        )),
    }
}

fn is_loopback(url: &Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Reads and validates `WEBHOOK_FILE`; a refusal names the path and the entry at fault.
fn read_file(
    path: &Path,
    dev: bool,
    known_tenants: Option<&HashSet<TenantId>>,
) -> Result<BTreeMap<TenantId, Endpoint>, ConfigError> {
    let shown = path.display().to_string();
    let refuse = |reason: String| invalid(FILE_VAR, shown.clone(), reason);
    let metadata = std::fs::metadata(path).map_err(|e| refuse(e.to_string()))?;
    if metadata.len() > MAX_FILE_BYTES {
        return Err(refuse(format!("over {MAX_FILE_BYTES} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| refuse(e.to_string()))?;
    parse_file(&text, dev, known_tenants).map_err(refuse)
}

/// Parses the file's text; the error names the place at fault (`tenants.acme.url: …`).
fn parse_file(
    text: &str,
    dev: bool,
    known_tenants: Option<&HashSet<TenantId>>,
) -> Result<BTreeMap<TenantId, Endpoint>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(root) = value else {
        return Err("must be a JSON object with `tenants`".into());
    };
    only_keys(&root, &["tenants"], "")?;
    let Some(Value::Object(entries)) = root.get("tenants") else {
        return Err("tenants: must be an object of tenant ids".into());
    };
    let mut tenants = BTreeMap::new();
    for (name, entry) in entries {
        let place = format!("tenants.{name}");
        let tenant = TenantId::parse(name).map_err(|e| format!("{place}: bad tenant id: {e}"))?;
        if known_tenants.is_some_and(|known| !known.contains(&tenant)) {
            return Err(format!("{place}: not a tenant of TENANTS_FILE"));
        }
        let Value::Object(entry) = entry else {
            return Err(format!("{place}: must be an object with url and secret"));
        };
        only_keys(entry, &["url", "secret"], &place)?;
        let text = |key: &str| match entry.get(key) {
            Some(Value::String(text)) if !text.trim().is_empty() => Ok(text.trim()),
            Some(_) => Err(format!("{place}.{key}: must be a non-empty string")),
            None => Err(format!("{place}.{key}: required")),
        };
        let url = text("url")?;
        let url = check_url(url, dev)
            .and_then(|url| {
                if url.host_str().is_none_or(str::is_empty) {
                    Err(("must have a host".into(), url.to_string()))
                } else {
                    Ok(url)
                }
            })
            .map_err(|(reason, shown)| format!("{place}.url: {shown:?}: {reason}"))?;
        let secret =
            Secret::parse(text("secret")?).map_err(|reason| format!("{place}.secret: {reason}"))?;
        tenants.insert(tenant, Endpoint { url, secret });
    }
    Ok(tenants)
}

fn only_keys(object: &Map<String, Value>, allowed: &[&str], place: &str) -> Result<(), String> {
    match object.keys().find(|key| !allowed.contains(&key.as_str())) {
        None => Ok(()),
        Some(key) => {
            let at = if place.is_empty() {
                String::new()
            } else {
                format!("{place}: ")
            };
            Err(format!(
                "{at}unknown key `{key}` (expected {})",
                allowed.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests;
