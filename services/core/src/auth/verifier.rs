//! [`Verifier`]: checks a JWT against the configured keys and maps it to [`Claims`].
//!
//! Order of checks: size (before any parsing), shape and header, key selection by `kid`,
//! the header's `alg` against the one algorithm of that key, then signature and the
//! registered claims (`exp` required, `nbf`, leeway, `iss`/`aud` when configured) by
//! `jsonwebtoken`, and last the tenant, user and roles claims.

use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use switchboard_model::{Claims, TenantId, UserId};

use super::config::{AuthConfig, KeySource};
use super::jwks::{load_file, KeySet, RemoteJwks, VerifyKey};
use super::AuthError;

/// Tokens longer than this are refused before parsing (SPEC §2).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

enum Keys {
    Hs256(Arc<VerifyKey>),
    Static(KeySet),
    Remote(RemoteJwks),
}

struct Inner {
    keys: Keys,
    /// One validation per algorithm a key can have.
    validations: Vec<(Algorithm, Validation)>,
    tenant_claim: String,
    roles_claim: String,
}

/// Verifies tokens. Build it once per process (it holds the keys and, for a JWKS URL, the
/// key cache); clones share everything.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = match &self.inner.keys {
            Keys::Hs256(_) => "HS256 secret",
            Keys::Static(_) => "JWKS file",
            Keys::Remote(_) => "JWKS URL",
        };
        f.debug_struct("Verifier").field("keys", &keys).finish()
    }
}

#[derive(Deserialize)]
struct RawHeader {
    alg: Option<String>,
    kid: Option<String>,
    crit: Option<Value>,
}

impl Verifier {
    /// Loads the keys. Fails on [`KeySource::None`] ([`AuthError::NoKeySource`]) and on a
    /// JWKS file that is unreadable or holds no usable key ([`AuthError::InvalidJwks`]).
    /// For a JWKS URL it tries one fetch now; a failure is logged, not fatal (the endpoint
    /// is retried on the next verification, rate-limited).
    pub async fn new(config: AuthConfig) -> Result<Self, AuthError> {
        let keys = match &config.keys {
            KeySource::None => return Err(AuthError::NoKeySource),
            KeySource::Hs256(secret) => Keys::Hs256(Arc::new(VerifyKey {
                alg: Algorithm::HS256,
                key: DecodingKey::from_secret(secret.as_bytes()),
            })),
            KeySource::JwksFile(path) => Keys::Static(load_file(path)?),
            KeySource::JwksUrl(url) => {
                let remote = RemoteJwks::new(
                    url.clone(),
                    config.jwks_fetch_timeout,
                    config.jwks_min_refresh_interval,
                    config.jwks_max_age,
                )?;
                remote.refresh().await;
                Keys::Remote(remote)
            }
        };
        let validations = [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256]
            .into_iter()
            .map(|alg| (alg, validation(&config, alg)))
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                keys,
                validations,
                tenant_claim: config.tenant_claim,
                roles_claim: config.roles_claim,
            }),
        })
    }

    /// Verifies `token` and returns who it names.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLarge(token.len()));
        }
        let header = parse_header(token)?;
        let key = match &self.inner.keys {
            Keys::Hs256(key) => Arc::clone(key),
            Keys::Static(set) => set
                .select(header.kid.as_deref())
                .ok_or_else(|| AuthError::UnknownKid(header.kid.clone()))?,
            Keys::Remote(remote) => remote.key_for(header.kid.as_deref()).await?,
        };
        let alg = header.alg.unwrap_or_default();
        if Algorithm::from_str(&alg).ok() != Some(key.alg) {
            return Err(AuthError::WrongAlgorithm(alg));
        }
        let validation = self
            .inner
            .validations
            .iter()
            .find(|(a, _)| *a == key.alg)
            .map(|(_, v)| v)
            .ok_or_else(|| AuthError::WrongAlgorithm(alg.clone()))?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation)
            .map_err(|e| map_jwt_error(e.into_kind()))?;
        self.claims(&data.claims)
    }

    fn claims(&self, claims: &Map<String, Value>) -> Result<Claims, AuthError> {
        let tenant_claim = &self.inner.tenant_claim;
        let tenant = TenantId::parse(string_claim(claims, tenant_claim)?)
            .map_err(|e| AuthError::InvalidClaim(tenant_claim.clone(), e.to_string()))?;
        let user = UserId::parse(string_claim(claims, "sub")?)
            .map_err(|e| AuthError::InvalidClaim("sub".to_string(), e.to_string()))?;
        let roles_claim = &self.inner.roles_claim;
        let roles = match claims.get(roles_claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(text)) => Claims::split_roles(text),
            Some(Value::Array(items)) => {
                let mut roles = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(role) => roles.push(role.clone()),
                        _ => {
                            return Err(AuthError::InvalidClaim(
                                roles_claim.clone(),
                                "array entries must be strings".to_string(),
                            ))
                        }
                    }
                }
                roles
            }
            Some(_) => {
                return Err(AuthError::InvalidClaim(
                    roles_claim.clone(),
                    "must be an array of strings or a space-separated string".to_string(),
                ))
            }
        };
        // A role that could not survive the space-joined authorizer context is dropped
        // (dropping only ever removes rights).
        let roles = roles
            .into_iter()
            .filter(|r| {
                let ok = !r.is_empty()
                    && r.chars().count() <= 128
                    && !r
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || c == ',');
                if !ok {
                    tracing::debug!(role = %r.escape_debug(), "ignoring unusable role");
                }
                ok
            })
            .collect();
        Ok(Claims {
            tenant,
            user,
            roles,
        })
    }
}

fn string_claim(claims: &Map<String, Value>, name: &str) -> Result<String, AuthError> {
    match claims.get(name) {
        None | Some(Value::Null) => Err(AuthError::MissingClaim(name.to_string())),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(AuthError::InvalidClaim(
            name.to_string(),
            "must be a string".to_string(),
        )),
    }
}

fn parse_header(token: &str) -> Result<RawHeader, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed(
            "expected three dot-separated parts".to_string(),
        ));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed("header is not base64url".to_string()))?;
    let header: RawHeader = serde_json::from_slice(&bytes)
        .map_err(|_| AuthError::Malformed("header is not a JSON object".to_string()))?;
    if header.crit.is_some() {
        return Err(AuthError::Malformed(
            "critical header extensions are not supported".to_string(),
        ));
    }
    Ok(header)
}

fn validation(config: &AuthConfig, alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.leeway = config.leeway_secs;
    v.validate_exp = true;
    v.validate_nbf = true;
    let mut required = vec!["exp"];
    if let Some(issuer) = &config.issuer {
        v.set_issuer(&[issuer]);
        // jsonwebtoken skips the check when `iss` is absent: require it.
        required.push("iss");
    }
    if config.audience.is_empty() {
        v.validate_aud = false;
    } else {
        v.set_audience(&config.audience);
        v.validate_aud = true;
        required.push("aud");
    }
    v.set_required_spec_claims(&required);
    v
}

fn map_jwt_error(kind: ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::Crypto(_) => AuthError::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidAlgorithmName => AuthError::WrongAlgorithm(String::new()),
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim),
        ErrorKind::InvalidSubject => AuthError::InvalidClaim("sub".to_string(), String::new()),
        ErrorKind::Base64(_) => AuthError::Malformed("not base64url".to_string()),
        ErrorKind::Json(_) => AuthError::Malformed("payload is not a JSON object".to_string()),
        ErrorKind::Utf8(_) => AuthError::Malformed("not UTF-8".to_string()),
        other => AuthError::Malformed(format!("{other:?}")),
    }
}
