//! SigV4 verification of `@connections` requests (docs/design.md: The one-machine binary), when
//! `MANAGEMENT_ACCESS_KEY_ID` and `MANAGEMENT_SECRET_ACCESS_KEY` are configured.
//!
//! The signature is recomputed with the `aws-sigv4` crate — the signer the AWS SDKs use —
//! over the headers the client says it signed, at the time it says it signed, in the
//! region of its credential scope, and compared in constant time. Checks, in order: service
//! `execute-api` only; the date within [`MAX_CLOCK_SKEW`] of now; `host` and `x-amz-date`
//! signed, and `host` one of this listener's names ([`AcceptedHosts`]); no
//! `UNSIGNED-PAYLOAD` (the signature always covers the body, and an `x-amz-content-sha256`
//! must be the body's); the signature itself; and, last, that it was not used before
//! ([`replay`]: each signature is good once).

mod replay;

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SigningParams, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;
use time::macros::format_description;
use time::PrimitiveDateTime;

use replay::ReplayCache;

use super::host::Host;
pub use replay::REPLAY_CACHE_ENTRIES;

/// How far the request's `x-amz-date` may be from this machine's clock (AWS's own limit).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);
const SERVICE: &str = "execute-api";
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The credentials requests must be signed with. `Debug` never shows the secret.
#[derive(Clone)]
pub struct ManagementCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `SWITCHBOARD_MANAGEMENT_HOSTS`: `host[:port]` names clients may sign besides the
    /// listener's own address (a name without a port gets the listener's).
    pub hosts: Vec<String>,
}

impl std::fmt::Debug for ManagementCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

/// The `Host` values a request to the listener on `addr` may sign: its address (unless it
/// is the any-address), `localhost`, `127.0.0.1` and `[::1]` when it listens on loopback or
/// on every address, and the configured names. Compared without regard to case; on port
/// 80 also without the port, as clients leave the default port out of `Host`.
#[derive(Debug, Clone)]
pub struct AcceptedHosts(Vec<String>);

impl AcceptedHosts {
    pub fn new(addr: SocketAddr, names: &[String]) -> Self {
        let port = addr.port();
        let mut hosts = Vec::new();
        if !addr.ip().is_unspecified() {
            hosts.push(addr.to_string());
        }
        if addr.ip().is_loopback() || addr.ip().is_unspecified() {
            hosts.extend(["localhost", "127.0.0.1", "[::1]"].map(|h| format!("{h}:{port}")));
        }
        for name in names {
            if has_port(name) {
                hosts.push(name.clone());
            } else {
                hosts.push(format!("{name}:{port}"));
            }
        }
        let mut hosts: Vec<String> = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
        let bare: Vec<String> = hosts
            .iter()
            .filter_map(|h| h.strip_suffix(":80").map(str::to_string))
            .collect();
        hosts.extend(bare);
        hosts.sort();
        hosts.dedup();
        Self(hosts)
    }

    pub fn accepts(&self, host: &str) -> bool {
        self.0.iter().any(|h| h.eq_ignore_ascii_case(host))
    }
}

/// Whether a `host[:port]` name (`[v6]:port` for IPv6) carries a port.
fn has_port(name: &str) -> bool {
    Host::parse(name).is_some_and(|host| host.port.is_some())
}

/// Everything the management listener checks a request against: the credentials, the
/// hosts it answers to, the signatures already used.
#[derive(Debug)]
pub struct SignatureCheck {
    credentials: ManagementCredentials,
    hosts: AcceptedHosts,
    used: Mutex<ReplayCache>,
}

impl SignatureCheck {
    /// For the listener bound to `addr`.
    pub fn new(credentials: ManagementCredentials, addr: SocketAddr) -> Self {
        let hosts = AcceptedHosts::new(addr, &credentials.hosts);
        Self {
            credentials,
            hosts,
            used: Mutex::new(ReplayCache::new(REPLAY_CACHE_ENTRIES)),
        }
    }

    /// [`verify`], then records the signature: a second use is [`SigV4Error::Replayed`].
    pub fn check(
        &self,
        parts: &Parts,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Verified, SigV4Error> {
        let verified = verify(&self.credentials, &self.hosts, parts, body, now)?;
        self.used()
            .record(verified.signature, verified.expires(), now)?;
        Ok(verified)
    }

    /// Makes a checked request's signature usable again: for a request refused without
    /// effect that its client will retry (429), possibly signed in the same second.
    pub fn forget(&self, verified: &Verified) {
        self.used().forget(verified.signature, verified.expires());
    }

    fn used(&self) -> std::sync::MutexGuard<'_, ReplayCache> {
        // A poisoned lock only means a panic elsewhere mid-update; the sets stay consistent
        // enough to keep refusing what they hold.
        self.used.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A request whose signature matched.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    signature: replay::Signature,
    signed_at: SystemTime,
}

impl Verified {
    /// When the signature leaves the clock-skew window.
    fn expires(&self) -> SystemTime {
        self.signed_at + MAX_CLOCK_SKEW
    }
}

/// Why a request was refused (logged; the client gets a plain 403).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    #[error("missing or unreadable Authorization header")]
    MissingAuthorization,
    #[error("not an {ALGORITHM} Authorization header")]
    Malformed,
    #[error("unknown access key id")]
    UnknownAccessKey,
    #[error("credential scope is not for service {SERVICE}")]
    WrongService,
    #[error("missing or malformed x-amz-date")]
    BadDate,
    #[error("x-amz-date is more than 15 minutes from the server's clock")]
    Skewed,
    #[error("the signed headers must include host and x-amz-date")]
    HostOrDateUnsigned,
    #[error("the signed host {0:?} is not this listener's")]
    WrongHost(String),
    #[error("x-amz-content-sha256 is UNSIGNED-PAYLOAD: the body must be signed")]
    UnsignedPayload,
    #[error("x-amz-content-sha256 is not the SHA-256 of the body")]
    PayloadHashMismatch,
    #[error("signature does not match: {0}")]
    Mismatch(String),
    #[error("signature already used")]
    Replayed,
    #[error("too many signatures within the clock-skew window to remember another")]
    ReplayCacheFull,
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
struct AuthorizationHeader<'a> {
    access_key_id: &'a str,
    scope_date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<AuthorizationHeader<'_>, SigV4Error> {
    let rest = value
        .strip_prefix(ALGORITHM)
        .ok_or(SigV4Error::Malformed)?
        .trim_start();
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (key, value) = part.trim().split_once('=').ok_or(SigV4Error::Malformed)?;
        match key {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed = Some(value),
            "Signature" => signature = Some(value),
            _ => return Err(SigV4Error::Malformed),
        }
    }
    let credential = credential.ok_or(SigV4Error::Malformed)?;
    let mut scope = credential.split('/');
    let (
        Some(access_key_id),
        Some(scope_date),
        Some(region),
        Some(service),
        Some("aws4_request"),
        None,
    ) = (
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
    )
    else {
        return Err(SigV4Error::Malformed);
    };
    let signed_headers: Vec<&str> = signed.ok_or(SigV4Error::Malformed)?.split(';').collect();
    Ok(AuthorizationHeader {
        access_key_id,
        scope_date,
        region,
        service,
        signed_headers,
        signature: signature.ok_or(SigV4Error::Malformed)?,
    })
}

fn parse_amz_date(text: &str) -> Result<SystemTime, SigV4Error> {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    let parsed = PrimitiveDateTime::parse(text, format).map_err(|_| SigV4Error::BadDate)?;
    Ok(parsed.assume_utc().into())
}

/// Verifies one request: `parts` as received (the URI is the raw request target) and its
/// whole body. Does not know whether the signature was used before ([`SignatureCheck`]).
pub fn verify(
    credentials: &ManagementCredentials,
    hosts: &AcceptedHosts,
    parts: &Parts,
    body: &[u8],
    now: SystemTime,
) -> Result<Verified, SigV4Error> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let authorization =
        parse_authorization(header("authorization").ok_or(SigV4Error::MissingAuthorization)?)?;
    // Both sides are public-length identifiers; the secret comparison is the signature's.
    if authorization.access_key_id != credentials.access_key_id {
        return Err(SigV4Error::UnknownAccessKey);
    }
    if authorization.service != SERVICE {
        return Err(SigV4Error::WrongService);
    }
    let amz_date = header("x-amz-date").ok_or(SigV4Error::BadDate)?;
    if !amz_date.starts_with(authorization.scope_date) {
        return Err(SigV4Error::BadDate);
    }
    let signed_at = parse_amz_date(amz_date)?;
    let skew = now
        .duration_since(signed_at)
        .unwrap_or_else(|e| e.duration());
    if skew > MAX_CLOCK_SKEW {
        return Err(SigV4Error::Skewed);
    }
    if !authorization.signed_headers.contains(&"host")
        || !authorization.signed_headers.contains(&"x-amz-date")
    {
        return Err(SigV4Error::HostOrDateUnsigned);
    }
    // The signer adds x-amz-date itself (from `time`); every other signed header is taken
    // from the request as received.
    let mut headers = Vec::with_capacity(authorization.signed_headers.len());
    for name in &authorization.signed_headers {
        if *name == "x-amz-date" {
            continue;
        }
        for value in parts.headers.get_all(*name) {
            let value = value
                .to_str()
                .map_err(|_| SigV4Error::Mismatch(format!("header {name} is not text")))?;
            headers.push((*name, value));
        }
    }
    let host = header("host").ok_or(SigV4Error::HostOrDateUnsigned)?;
    if !hosts.accepts(host) {
        return Err(SigV4Error::WrongHost(host.to_string()));
    }
    let body_hash = hex::encode(ring::digest::digest(&ring::digest::SHA256, body).as_ref());
    match header("x-amz-content-sha256") {
        Some("UNSIGNED-PAYLOAD") => return Err(SigV4Error::UnsignedPayload),
        Some(claimed) if claimed != body_hash => return Err(SigV4Error::PayloadHashMismatch),
        _ => {}
    }
    let uri = format!(
        "http://{host}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let request = SignableRequest::new(
        parts.method.as_str(),
        uri,
        headers.into_iter(),
        SignableBody::Precomputed(body_hash),
    )
    .map_err(|e| SigV4Error::Mismatch(e.to_string()))?;
    let identity: Identity = Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.clone(),
        None,
        None,
        "management",
    )
    .into();
    let params: SigningParams<'_> = v4::SigningParams::builder()
        .identity(&identity)
        .region(authorization.region)
        .name(SERVICE)
        .time(signed_at)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| SigV4Error::Mismatch(e.to_string()))?
        .into();
    let expected = sign(request, &params).map_err(|e| SigV4Error::Mismatch(e.to_string()))?;
    let matches: bool = expected
        .signature()
        .as_bytes()
        .ct_eq(authorization.signature.as_bytes())
        .into();
    if !matches {
        return Err(SigV4Error::Mismatch("recomputed signature differs".into()));
    }
    let signature = replay::decode(expected.signature())
        .ok_or_else(|| SigV4Error::Mismatch("the signer made no hex signature".into()))?;
    Ok(Verified {
        signature,
        signed_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> ManagementCredentials {
        ManagementCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            hosts: vec![],
        }
    }

    fn listener() -> SocketAddr {
        "127.0.0.1:8081".parse().unwrap()
    }

    fn hosts() -> AcceptedHosts {
        AcceptedHosts::new(listener(), &[])
    }

    /// Signs like an SDK would: the same crate, the request's own headers.
    fn signed_parts(secret: &str, at: SystemTime, host: &str, body: SignableBody<'_>) -> Parts {
        let mut request = axum::http::Request::builder()
            .method("POST")
            .uri(format!("http://{host}/main/%40connections/abc%3D"))
            .header("host", host)
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let identity: Identity = Credentials::new("AKIDEXAMPLE", secret, None, None, "test").into();
        let mut settings = SigningSettings::default();
        if !matches!(body, SignableBody::Bytes(_)) {
            settings.payload_checksum_kind =
                aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
        }
        let params: SigningParams<'_> = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("execute-api")
            .time(at)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
            .collect();
        let signable =
            SignableRequest::new("POST", request.uri().to_string(), headers.into_iter(), body)
                .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        instructions.apply_to_request_http1x(&mut request);
        // What the server sees: the origin-form target.
        *request.uri_mut() = "/main/%40connections/abc%3D".parse().unwrap();
        request.into_parts().0
    }

    fn signed(secret: &str, at: SystemTime, body: &[u8]) -> Parts {
        signed_parts(secret, at, "127.0.0.1:8081", SignableBody::Bytes(body))
    }

    #[test]
    fn accepts_a_request_signed_with_the_configured_key() {
        let now = SystemTime::now();
        let parts = signed(&credentials().secret_access_key, now, b"hello");
        assert!(verify(&credentials(), &hosts(), &parts, b"hello", now).is_ok());
    }

    #[test]
    fn refuses_another_key_a_changed_body_and_an_old_date() {
        let now = SystemTime::now();
        let parts = signed("another-secret", now, b"hello");
        assert!(matches!(
            verify(&credentials(), &hosts(), &parts, b"hello", now),
            Err(SigV4Error::Mismatch(_))
        ));
        let parts = signed(&credentials().secret_access_key, now, b"hello");
        assert!(matches!(
            verify(&credentials(), &hosts(), &parts, b"hellO", now),
            Err(SigV4Error::Mismatch(_))
        ));
        let later = now + Duration::from_secs(16 * 60);
        assert_eq!(
            verify(&credentials(), &hosts(), &parts, b"hello", later),
            Err(SigV4Error::Skewed)
        );
    }

    #[test]
    fn refuses_unsigned_and_malformed_requests() {
        let parts = axum::http::Request::builder()
            .uri("/main/@connections/x")
            .header("host", "h")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        assert_eq!(
            verify(&credentials(), &hosts(), &parts, b"", SystemTime::now()),
            Err(SigV4Error::MissingAuthorization)
        );
        assert!(parse_authorization("Basic abc").is_err());
        assert!(parse_authorization(
            "AWS4-HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature=x"
        )
        .is_err());
    }

    #[test]
    fn refuses_an_unsigned_payload_and_a_payload_hash_that_is_not_the_body() {
        let now = SystemTime::now();
        let secret = credentials().secret_access_key;
        let parts = signed_parts(
            &secret,
            now,
            "127.0.0.1:8081",
            SignableBody::UnsignedPayload,
        );
        assert_eq!(
            verify(&credentials(), &hosts(), &parts, b"anything", now),
            Err(SigV4Error::UnsignedPayload)
        );
        let other = hex::encode(ring::digest::digest(&ring::digest::SHA256, b"other").as_ref());
        let parts = signed_parts(
            &secret,
            now,
            "127.0.0.1:8081",
            SignableBody::Precomputed(other),
        );
        assert_eq!(
            verify(&credentials(), &hosts(), &parts, b"hello", now),
            Err(SigV4Error::PayloadHashMismatch)
        );
        // The body's own hash in the header is fine.
        let own = hex::encode(ring::digest::digest(&ring::digest::SHA256, b"hello").as_ref());
        let parts = signed_parts(
            &secret,
            now,
            "127.0.0.1:8081",
            SignableBody::Precomputed(own),
        );
        assert!(verify(&credentials(), &hosts(), &parts, b"hello", now).is_ok());
    }

    #[test]
    fn refuses_a_request_signed_for_another_host() {
        let now = SystemTime::now();
        let secret = credentials().secret_access_key;
        for host in ["example.com:8081", "127.0.0.1:8082", "127.0.0.2:8081"] {
            let parts = signed_parts(&secret, now, host, SignableBody::Bytes(b"x"));
            assert_eq!(
                verify(&credentials(), &hosts(), &parts, b"x", now),
                Err(SigV4Error::WrongHost(host.into())),
                "{host}"
            );
        }
        let parts = signed_parts(&secret, now, "LocalHost:8081", SignableBody::Bytes(b"x"));
        assert!(verify(&credentials(), &hosts(), &parts, b"x", now).is_ok());
    }

    #[test]
    fn accepted_hosts_follow_the_listener_and_the_configured_names() {
        let names = ["switchboard.internal".to_string(), "lb.example:9000".into()];
        let loopback = AcceptedHosts::new(listener(), &names);
        for host in [
            "127.0.0.1:8081",
            "localhost:8081",
            "[::1]:8081",
            "switchboard.internal:8081",
            "lb.example:9000",
        ] {
            assert!(loopback.accepts(host), "{host}");
        }
        for host in [
            "switchboard.internal",
            "lb.example:8081",
            "localhost",
            "127.0.0.1",
        ] {
            assert!(!loopback.accepts(host), "{host}");
        }
        let private = AcceptedHosts::new("10.0.0.5:80".parse().unwrap(), &[]);
        for host in ["10.0.0.5:80", "10.0.0.5"] {
            assert!(private.accepts(host), "{host}");
        }
        assert!(!private.accepts("localhost:80"));
        let any = AcceptedHosts::new("[::]:8081".parse().unwrap(), &names);
        assert!(any.accepts("localhost:8081") && any.accepts("switchboard.internal:8081"));
        assert!(!any.accepts("[::]:8081") && !any.accepts("0.0.0.0:8081"));
        let v6 = AcceptedHosts::new("[fd00::1]:8081".parse().unwrap(), &["[fd00::2]:99".into()]);
        assert!(v6.accepts("[fd00::1]:8081") && v6.accepts("[fd00::2]:99"));
    }

    #[test]
    fn a_signed_request_is_accepted_once() {
        let now = SystemTime::now();
        let check = SignatureCheck::new(credentials(), listener());
        let parts = signed(&credentials().secret_access_key, now, b"hello");
        let verified = check.check(&parts, b"hello", now).unwrap();
        assert_eq!(
            check.check(&parts, b"hello", now + Duration::from_secs(60)),
            Err(SigV4Error::Replayed)
        );
        // Forgotten (its request was throttled): usable once more.
        check.forget(&verified);
        assert!(check.check(&parts, b"hello", now).is_ok());
        assert_eq!(
            check.check(&parts, b"hello", now),
            Err(SigV4Error::Replayed)
        );
        // A refused request is not remembered: it did not use up anything.
        let other = signed("another-secret", now, b"hello");
        assert!(check.check(&other, b"hello", now).is_err());
        let fresh = signed(&credentials().secret_access_key, now, b"hello!");
        assert!(check.check(&fresh, b"hello!", now).is_ok());
    }
}
