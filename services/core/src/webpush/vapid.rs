//! VAPID (RFC 8292): the application server identifies itself to push services with an
//! ES256-signed JWT for the push service's origin, and its public key.
//!
//! Keys are given as the web-push libraries write them: `VAPID_PUBLIC_KEY` the 65-byte
//! uncompressed P-256 point and `VAPID_PRIVATE_KEY` the 32-byte scalar, both base64url.
//! The private key never appears in `Debug` output or in an error. The `Authorization`
//! header of an audience is signed once and reused for a while (a bounded cache), so a
//! burst of sends to one push service signs one token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use p256::SecretKey;

/// A token's lifetime (`exp`): RFC 8292 allows at most 24 hours.
const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// A cached header is signed again once it is this old (half its lifetime is left).
const REUSE_FOR: Duration = Duration::from_secs(6 * 60 * 60);
/// Push service origins whose header is kept (there are a handful in practice).
const MAX_CACHED_AUDIENCES: usize = 256;
/// Longest `VAPID_SUBJECT`.
const MAX_SUBJECT_BYTES: usize = 512;

/// Why VAPID keys or a token could not be made; names the variable at fault, never
/// shows the private key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VapidError {
    #[error("VAPID_PUBLIC_KEY: {0}")]
    PublicKey(&'static str),
    #[error("VAPID_PRIVATE_KEY: {0}")]
    PrivateKey(&'static str),
    #[error("VAPID_PUBLIC_KEY does not match VAPID_PRIVATE_KEY")]
    Mismatch,
    #[error("VAPID_SUBJECT: {0}")]
    Subject(&'static str),
    #[error("signing the VAPID token failed")]
    Signing,
    #[error("no randomness available")]
    Random,
}

/// A fresh VAPID key pair, base64url without padding (what `switchboard vapid-keys`
/// prints).
#[derive(Clone)]
pub struct VapidKeyPair {
    pub public_key: String,
    pub private_key: String,
}

impl VapidKeyPair {
    pub fn generate() -> Result<Self, VapidError> {
        let secret = super::encrypt::random_secret_key().ok_or(VapidError::Random)?;
        Ok(Self {
            public_key: URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false)),
            private_key: URL_SAFE_NO_PAD.encode(secret.to_bytes()),
        })
    }
}

impl std::fmt::Debug for VapidKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKeyPair")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

/// The application server's VAPID key pair and subject.
#[derive(Clone)]
pub struct VapidKeys {
    subject: String,
    public_key: String,
    signing: Arc<jsonwebtoken::EncodingKey>,
    headers: Arc<Mutex<HashMap<String, Signed>>>,
}

struct Signed {
    header: String,
    at: Instant,
}

impl std::fmt::Debug for VapidKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKeys")
            .field("subject", &self.subject)
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    aud: &'a str,
    exp: i64,
    sub: &'a str,
}

impl VapidKeys {
    /// Checks and reads the three settings: both keys base64url (padding tolerated), the
    /// public key the private key's, the subject a `mailto:` or `https:` URL.
    pub fn parse(public_key: &str, private_key: &str, subject: &str) -> Result<Self, VapidError> {
        let private = decode(private_key).ok_or(VapidError::PrivateKey("not base64url"))?;
        if private.len() != 32 {
            return Err(VapidError::PrivateKey(
                "expected a 32-byte P-256 private key",
            ));
        }
        let secret = SecretKey::from_slice(&private)
            .map_err(|_| VapidError::PrivateKey("not a valid P-256 private key"))?;
        let public = decode(public_key).ok_or(VapidError::PublicKey("not base64url"))?;
        if public.len() != 65 || public[0] != 0x04 {
            return Err(VapidError::PublicKey(
                "expected a 65-byte uncompressed P-256 public key",
            ));
        }
        if secret.public_key().to_encoded_point(false).as_bytes() != public.as_slice() {
            return Err(VapidError::Mismatch);
        }
        let subject = check_subject(subject)?;
        let pkcs8 = secret
            .to_pkcs8_der()
            .map_err(|_| VapidError::PrivateKey("not a valid P-256 private key"))?;
        Ok(Self {
            subject,
            public_key: URL_SAFE_NO_PAD.encode(&public),
            signing: Arc::new(jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_bytes())),
            headers: Arc::default(),
        })
    }

    /// The public key, base64url (`applicationServerKey` for `PushManager.subscribe`).
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The `Authorization` header for a request to a push service whose origin is
    /// `audience` (`https://host[:port]`): `vapid t=<JWT>, k=<public key>`.
    pub fn authorization(&self, audience: &str) -> Result<String, VapidError> {
        if let Ok(headers) = self.headers.lock() {
            if let Some(signed) = headers.get(audience) {
                if signed.at.elapsed() < REUSE_FOR {
                    return Ok(signed.header.clone());
                }
            }
        }
        let exp =
            time::OffsetDateTime::now_utc().unix_timestamp() + TOKEN_LIFETIME.as_secs() as i64;
        let claims = Claims {
            aud: audience,
            exp,
            sub: &self.subject,
        };
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
            &claims,
            &self.signing,
        )
        .map_err(|_| VapidError::Signing)?;
        let header = format!("vapid t={token}, k={}", self.public_key);
        if let Ok(mut headers) = self.headers.lock() {
            if headers.len() >= MAX_CACHED_AUDIENCES {
                headers.retain(|_, signed| signed.at.elapsed() < REUSE_FOR);
                if headers.len() >= MAX_CACHED_AUDIENCES {
                    headers.clear();
                }
            }
            headers.insert(
                audience.to_string(),
                Signed {
                    header: header.clone(),
                    at: Instant::now(),
                },
            );
        }
        Ok(header)
    }
}

fn decode(value: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(value.trim().trim_end_matches('='))
        .ok()
}

fn check_subject(subject: &str) -> Result<String, VapidError> {
    let subject = subject.trim();
    if subject.len() > MAX_SUBJECT_BYTES {
        return Err(VapidError::Subject("longer than 512 bytes"));
    }
    let valid = match subject.strip_prefix("mailto:") {
        Some(address) => address.contains('@') && !address.contains(char::is_whitespace),
        None => reqwest::Url::parse(subject).is_ok_and(|url| {
            url.scheme() == "https" && url.host_str().is_some_and(|h| !h.is_empty())
        }),
    };
    if !valid {
        return Err(VapidError::Subject(
            "expected a mailto: address or an https: URL",
        ));
    }
    Ok(subject.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (VapidKeyPair, VapidKeys) {
        let pair = VapidKeyPair::generate().unwrap();
        let keys = VapidKeys::parse(
            &pair.public_key,
            &pair.private_key,
            "mailto:ops@example.com",
        )
        .unwrap();
        (pair, keys)
    }

    /// Verifies the header's JWT with jsonwebtoken's ES256 check against the `k=` key as
    /// a JWK (x, y); answers the claims.
    fn verify(header: &str, audience: &str) -> jsonwebtoken::errors::Result<serde_json::Value> {
        let rest = header.strip_prefix("vapid t=").unwrap();
        let (token, k) = rest.split_once(", k=").unwrap();
        let point = URL_SAFE_NO_PAD.decode(k).unwrap();
        assert_eq!(point.len(), 65);
        let key = jsonwebtoken::DecodingKey::from_ec_components(
            &URL_SAFE_NO_PAD.encode(&point[1..33]),
            &URL_SAFE_NO_PAD.encode(&point[33..]),
        )
        .unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).map(|t| t.claims)
    }

    #[test]
    fn the_header_carries_a_token_for_the_audience_signed_with_the_key() {
        let (pair, keys) = keys();
        let header = keys.authorization("https://push.example.net").unwrap();
        assert!(header.ends_with(&format!(", k={}", pair.public_key)));
        let claims = verify(&header, "https://push.example.net").unwrap();
        assert!(
            verify(&header, "https://other.example.net").is_err(),
            "audience checked"
        );
        assert_eq!(claims["sub"], "mailto:ops@example.com");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let exp = claims["exp"].as_i64().unwrap();
        assert!(
            exp > now + 11 * 3600 && exp <= now + 24 * 3600,
            "exp {exp} now {now}"
        );
    }

    #[test]
    fn a_token_made_with_another_key_does_not_verify() {
        let (_, keys) = keys();
        let other = VapidKeyPair::generate().unwrap().public_key;
        let header = keys.authorization("https://a.example").unwrap();
        let forged = format!("{}, k={other}", header.split(", k=").next().unwrap());
        assert!(verify(&forged, "https://a.example").is_err());
    }

    #[test]
    fn the_header_is_reused_per_audience() {
        let (_, keys) = keys();
        let first = keys.authorization("https://a.example").unwrap();
        assert_eq!(keys.authorization("https://a.example").unwrap(), first);
        let other = keys.authorization("https://b.example").unwrap();
        assert_ne!(other, first);
        verify(&other, "https://b.example").unwrap();
    }

    #[test]
    fn the_cache_stays_bounded() {
        let (_, keys) = keys();
        for i in 0..MAX_CACHED_AUDIENCES + 10 {
            keys.authorization(&format!("https://p{i}.example"))
                .unwrap();
        }
        assert!(keys.headers.lock().unwrap().len() <= MAX_CACHED_AUDIENCES);
    }

    #[test]
    fn refuses_a_public_key_of_another_private_key() {
        let (pair, _) = keys();
        let other_public = VapidKeyPair::generate().unwrap().public_key;
        let refused = VapidKeys::parse(&other_public, &pair.private_key, "mailto:a@b.c");
        assert_eq!(refused.unwrap_err(), VapidError::Mismatch);
    }

    #[test]
    fn refuses_bad_keys_and_subjects_without_showing_the_private_key() {
        let (pair, keys) = keys();
        let short = &pair.private_key[..20];
        let error = VapidKeys::parse(&pair.public_key, short, "mailto:a@b.c").unwrap_err();
        assert!(error.to_string().starts_with("VAPID_PRIVATE_KEY"));
        let error = VapidKeys::parse(&pair.public_key[..40], &pair.private_key, "mailto:a@b.c")
            .unwrap_err();
        assert!(error.to_string().starts_with("VAPID_PUBLIC_KEY"));
        for subject in [
            "",
            "ops@example.com",
            "http://example.com",
            "mailto:",
            "https://",
        ] {
            let error = VapidKeys::parse(&pair.public_key, &pair.private_key, subject).unwrap_err();
            assert!(
                matches!(error, VapidError::Subject(_)),
                "{subject}: {error}"
            );
        }
        assert!(VapidKeys::parse(
            &pair.public_key,
            &pair.private_key,
            "https://example.com/contact"
        )
        .is_ok());
        let shown = format!("{keys:?} {pair:?}");
        assert!(!shown.contains(&pair.private_key), "{shown}");
        assert!(shown.contains(&pair.public_key));
    }

    #[test]
    fn accepts_padded_base64url() {
        let (pair, _) = keys();
        let padded = format!("{}=", pair.private_key);
        assert!(VapidKeys::parse(&pair.public_key, &padded, "mailto:a@b.c").is_ok());
    }
}
