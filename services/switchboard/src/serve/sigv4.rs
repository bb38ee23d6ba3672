//! SigV4 verification of `@connections` requests (docs/design.md: The one-machine binary), when
//! `MANAGEMENT_ACCESS_KEY_ID` and `MANAGEMENT_SECRET_ACCESS_KEY` are configured.
//!
//! The signature is recomputed with the `aws-sigv4` crate — the signer the AWS SDKs use —
//! over the headers the client says it signed, at the time it says it signed, in the
//! region of its credential scope, and compared in constant time. Service `execute-api`
//! only; the date must be within [`MAX_CLOCK_SKEW`] of now.

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

/// How far the request's `x-amz-date` may be from this machine's clock (AWS's own limit).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);
const SERVICE: &str = "execute-api";
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The credentials requests must be signed with. `Debug` never shows the secret.
#[derive(Clone)]
pub struct ManagementCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for ManagementCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
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
    #[error("signature does not match: {0}")]
    Mismatch(String),
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
/// whole body.
pub fn verify(
    credentials: &ManagementCredentials,
    parts: &Parts,
    body: &[u8],
    now: SystemTime,
) -> Result<(), SigV4Error> {
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
    let uri = format!(
        "http://{host}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let signable_body = match header("x-amz-content-sha256") {
        Some("UNSIGNED-PAYLOAD") => SignableBody::UnsignedPayload,
        _ => SignableBody::Bytes(body),
    };
    let request = SignableRequest::new(
        parts.method.as_str(),
        uri,
        headers.into_iter(),
        signable_body,
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
    if matches {
        Ok(())
    } else {
        Err(SigV4Error::Mismatch("recomputed signature differs".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> ManagementCredentials {
        ManagementCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        }
    }

    /// Signs like an SDK would: the same crate, the request's own headers.
    fn signed_parts(secret: &str, at: SystemTime, body: &[u8]) -> Parts {
        let mut request = axum::http::Request::builder()
            .method("POST")
            .uri("http://127.0.0.1:8081/main/%40connections/abc%3D")
            .header("host", "127.0.0.1:8081")
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let identity: Identity = Credentials::new("AKIDEXAMPLE", secret, None, None, "test").into();
        let params: SigningParams<'_> = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("execute-api")
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
            .collect();
        let signable = SignableRequest::new(
            "POST",
            request.uri().to_string(),
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        instructions.apply_to_request_http1x(&mut request);
        // What the server sees: the origin-form target.
        *request.uri_mut() = "/main/%40connections/abc%3D".parse().unwrap();
        request.into_parts().0
    }

    #[test]
    fn accepts_a_request_signed_with_the_configured_key() {
        let now = SystemTime::now();
        let parts = signed_parts(&credentials().secret_access_key, now, b"hello");
        assert_eq!(verify(&credentials(), &parts, b"hello", now), Ok(()));
    }

    #[test]
    fn refuses_another_key_a_changed_body_and_an_old_date() {
        let now = SystemTime::now();
        let parts = signed_parts("another-secret", now, b"hello");
        assert!(matches!(
            verify(&credentials(), &parts, b"hello", now),
            Err(SigV4Error::Mismatch(_))
        ));
        let parts = signed_parts(&credentials().secret_access_key, now, b"hello");
        assert!(matches!(
            verify(&credentials(), &parts, b"hellO", now),
            Err(SigV4Error::Mismatch(_))
        ));
        let later = now + Duration::from_secs(16 * 60);
        assert_eq!(
            verify(&credentials(), &parts, b"hello", later),
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
            verify(&credentials(), &parts, b"", SystemTime::now()),
            Err(SigV4Error::MissingAuthorization)
        );
        assert!(parse_authorization("Basic abc").is_err());
        assert!(parse_authorization(
            "AWS4-HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature=x"
        )
        .is_err());
    }
}
