//! A validated `PushSubscription`: what a browser's `PushSubscription.toJSON()` gives,
//! checked before anything is stored or sent to it ([`Subscription::parse`]).
//!
//! The endpoint is a URL a client chose and the server will POST to, so it is held to:
//! an absolute `https` URL of at most [`MAX_ENDPOINT_BYTES`], no userinfo, no fragment,
//! and a host that is neither `localhost` (nor `*.localhost`) nor an IP literal in a
//! private, loopback, link-local, unspecified, shared (CGNAT), multicast, broadcast or
//! reserved range ([`EndpointPolicy::AllowLoopback`], for `serve --dev`, lets loopback
//! hosts through and nothing else). A name that *resolves* to such an address is not
//! caught here. The keys must decode (base64url, padded or not) to a 65-byte uncompressed
//! point on P-256 (`p256dh`, first byte `0x04`) and a 16-byte secret (`auth`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde_json::Value;

/// The longest endpoint accepted, in bytes (push services' URLs are a few hundred).
pub const MAX_ENDPOINT_BYTES: usize = 2_048;

/// Length of a decoded `p256dh` key: an uncompressed P-256 point.
pub const P256DH_BYTES: usize = 65;

/// Length of a decoded `auth` secret.
pub const AUTH_BYTES: usize = 16;

/// base64url, with or without padding (browsers omit it; some libraries add it).
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Which endpoints a subscription may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndpointPolicy {
    /// `https` to a public address only (production).
    #[default]
    Public,
    /// Also `https` on loopback (`serve --dev`: tests run a local push service).
    AllowLoopback,
}

/// A browser push subscription as `PushSubscription.toJSON()` gives it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subscription {
    pub endpoint: String,
    pub keys: SubscriptionKeys,
}

/// The subscription's keys, base64url as the browser gives them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SubscriptionKeys {
    /// The user agent's P-256 public key (65 bytes, uncompressed point).
    pub p256dh: String,
    /// The authentication secret (16 bytes).
    pub auth: String,
}

/// Why a body is not a usable subscription: the field at fault and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct SubscriptionError {
    pub field: String,
    pub problem: String,
}

impl SubscriptionError {
    fn new(field: &str, problem: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            problem: problem.into(),
        }
    }
}

impl Subscription {
    /// Reads and validates a subscription (`{"endpoint","keys":{"p256dh","auth"},
    /// "expirationTime"?}`; `expirationTime`, a number or null, is ignored; any other
    /// field is refused by name).
    pub fn parse(value: &Value, policy: EndpointPolicy) -> Result<Self, SubscriptionError> {
        let object = value
            .as_object()
            .ok_or_else(|| SubscriptionError::new("subscription", "must be a JSON object"))?;
        refuse_unknown(object, "", &["endpoint", "keys", "expirationTime"])?;
        match object.get("expirationTime") {
            None | Some(Value::Null | Value::Number(_)) => {}
            Some(_) => {
                return Err(SubscriptionError::new(
                    "expirationTime",
                    "must be a number or null",
                ));
            }
        }
        let endpoint = required_string(object, "", "endpoint")?;
        check_endpoint(endpoint, policy)?;
        let keys = object
            .get("keys")
            .ok_or_else(|| SubscriptionError::new("keys", "is required"))?
            .as_object()
            .ok_or_else(|| SubscriptionError::new("keys", "must be an object"))?;
        refuse_unknown(keys, "keys.", &["p256dh", "auth"])?;
        let p256dh = required_string(keys, "keys.", "p256dh")?;
        let auth = required_string(keys, "keys.", "auth")?;
        let point = decode_key("keys.p256dh", p256dh, P256DH_BYTES)?;
        if point.first() != Some(&0x04) {
            return Err(SubscriptionError::new(
                "keys.p256dh",
                "must be an uncompressed P-256 point (first byte 0x04)",
            ));
        }
        if p256::PublicKey::from_sec1_bytes(&point).is_err() {
            return Err(SubscriptionError::new(
                "keys.p256dh",
                "is not a point on the P-256 curve",
            ));
        }
        decode_key("keys.auth", auth, AUTH_BYTES)?;
        Ok(Self {
            endpoint: endpoint.to_string(),
            keys: SubscriptionKeys {
                p256dh: p256dh.to_string(),
                auth: auth.to_string(),
            },
        })
    }

    /// The user agent's public key, decoded (`None` if this subscription was not built
    /// by [`Subscription::parse`] and the key is malformed).
    pub fn p256dh_bytes(&self) -> Option<[u8; P256DH_BYTES]> {
        KEY_BASE64.decode(&self.keys.p256dh).ok()?.try_into().ok()
    }

    /// The authentication secret, decoded (`None` when malformed, as above).
    pub fn auth_bytes(&self) -> Option<[u8; AUTH_BYTES]> {
        KEY_BASE64.decode(&self.keys.auth).ok()?.try_into().ok()
    }

    /// The push service's origin, `https://host[:port]` (the port only when not 443): the
    /// audience of the VAPID token. Empty if the endpoint is not a URL.
    pub fn origin(&self) -> String {
        url::Url::parse(&self.endpoint)
            .map(|url| url.origin().ascii_serialization())
            .unwrap_or_default()
    }
}

fn refuse_unknown(
    object: &serde_json::Map<String, Value>,
    prefix: &str,
    known: &[&str],
) -> Result<(), SubscriptionError> {
    let unknown: Vec<&str> = object
        .keys()
        .map(String::as_str)
        .filter(|key| !known.contains(key))
        .collect();
    match unknown.first() {
        None => Ok(()),
        Some(first) => Err(SubscriptionError::new(
            &format!("{prefix}{first}"),
            format!(
                "unknown field{} {} (expected {})",
                if unknown.len() > 1 { "s" } else { "" },
                unknown.join(", "),
                known.join(", ")
            ),
        )),
    }
}

fn required_string<'a>(
    object: &'a serde_json::Map<String, Value>,
    prefix: &str,
    name: &str,
) -> Result<&'a str, SubscriptionError> {
    let field = format!("{prefix}{name}");
    match object.get(name) {
        None | Some(Value::Null) => Err(SubscriptionError::new(&field, "is required")),
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(SubscriptionError::new(&field, "must be a string")),
    }
}

fn decode_key(field: &str, text: &str, len: usize) -> Result<Vec<u8>, SubscriptionError> {
    // Base64 of `len` bytes is at most this long (padded); refuse more before decoding.
    if text.len() > len.div_ceil(3) * 4 {
        return Err(SubscriptionError::new(
            field,
            format!("must decode to {len} bytes (too long)"),
        ));
    }
    let bytes = KEY_BASE64
        .decode(text)
        .map_err(|e| SubscriptionError::new(field, format!("must be base64url ({e})")))?;
    if bytes.len() != len {
        return Err(SubscriptionError::new(
            field,
            format!("must decode to {len} bytes, not {}", bytes.len()),
        ));
    }
    Ok(bytes)
}

fn check_endpoint(endpoint: &str, policy: EndpointPolicy) -> Result<(), SubscriptionError> {
    let refuse = |problem: String| SubscriptionError::new("endpoint", problem);
    if endpoint.len() > MAX_ENDPOINT_BYTES {
        return Err(refuse(format!(
            "must be at most {MAX_ENDPOINT_BYTES} bytes, not {}",
            endpoint.len()
        )));
    }
    let url =
        url::Url::parse(endpoint).map_err(|e| refuse(format!("must be an absolute URL ({e})")))?;
    if url.scheme() != "https" {
        return Err(refuse(format!(
            "must be an https URL, not {}:",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("must not carry a user name or password".into()));
    }
    if url.fragment().is_some() {
        return Err(refuse("must not carry a fragment (#…)".into()));
    }
    let loopback = match url.host() {
        None => return Err(refuse("must name a host".into())),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                true
            } else {
                return Ok(());
            }
        }
        Some(url::Host::Ipv4(ip)) => classify(IpAddr::V4(ip)).map_err(refuse)?,
        Some(url::Host::Ipv6(ip)) => classify(IpAddr::V6(ip)).map_err(refuse)?,
    };
    if loopback && policy != EndpointPolicy::AllowLoopback {
        return Err(refuse(
            "must not be a loopback host (allowed only in dev mode)".into(),
        ));
    }
    Ok(())
}

/// `Ok(false)` for a public address, `Ok(true)` for loopback, `Err` for every other
/// non-public range (also the push client's check of every address it connects to).
pub(crate) fn classify(ip: IpAddr) -> Result<bool, String> {
    let ip = match ip {
        // An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is that IPv4 address.
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    if ip.is_loopback() {
        return Ok(true);
    }
    let range = match ip {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => v6_range(v6),
    };
    match range {
        Some(range) => Err(format!("must not be a {range} address ({ip})")),
        None => Ok(false),
    }
}

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if a == 100 && (b & 0xc0) == 64 {
        Some("shared (CGNAT)")
    } else if ip.is_broadcast() {
        Some("broadcast")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if a >= 240 {
        Some("reserved")
    } else {
        None
    }
}

fn v6_range(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unique_local() {
        Some("private (unique local)")
    } else if ip.is_unicast_link_local() {
        Some("link-local")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
