//! [`Verifier`]: checks a JWT against the configured keys and maps it to [`Claims`].
//!
//! Order of checks: size (before any parsing), shape and header; with `JWT_ISSUERS_FILE`
//! the payload's `iss`, read unverified and used only to pick the issuer (unknown: refused
//! here, before any key lookup or fetch); key selection by `kid` among that one source's
//! keys; the header's `alg` against the one algorithm of that key, then signature and the
//! registered claims (`exp` required, `nbf`, leeway, `iss`/`aud` when configured — always
//! `iss` for an issuer) by `jsonwebtoken`; last the tenant, user and roles claims, and the
//! issuer's allowed tenants. With a dev key (`serve --dev` beside a configured source), a
//! token whose unverified `iss` is [`DEV_ISSUER`] is checked against that key instead (any
//! tenant, global admins); every other token goes the configured way.
//!
//! Keys live per trust source: the single source, or one [`RemoteJwks`]/[`KeySet`] per
//! issuer. The key cache is therefore keyed by (issuer, `kid`): two issuers publishing
//! the same `kid` never verify each other's tokens, and each issuer's JWKS refresh is
//! rate-limited on its own.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use futures::StreamExt as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use switchboard_model::{AdminScope, Claims, TenantId, UserId};

use super::config::{AuthConfig, HmacSecret, KeySource, DEV_ISSUER};
use super::issuers::{AllowedTenants, IssuerConfig, IssuerKeys};
use super::jwks::{load_file, KeySet, RemoteJwks, VerifyKey};
use super::AuthError;

/// Tokens longer than this are refused before parsing (docs/design.md: Identity).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// JWKS URLs fetched at once while the verifier starts.
const STARTUP_FETCHES_IN_FLIGHT: usize = 16;

/// How much of an unknown `iss` an [`AuthError::UnknownIssuer`] keeps (for logs).
const MAX_LOGGED_ISSUER_CHARS: usize = 128;

enum Keys {
    Hs256(Arc<VerifyKey>),
    Static(KeySet),
    Remote(RemoteJwks),
}

impl Keys {
    fn describe(&self) -> &'static str {
        match self {
            Keys::Hs256(_) => "HS256 secret",
            Keys::Static(_) => "JWKS file",
            Keys::Remote(_) => "JWKS URL",
        }
    }

    async fn select(&self, kid: Option<&str>) -> Result<Arc<VerifyKey>, AuthError> {
        match self {
            Keys::Hs256(key) => Ok(Arc::clone(key)),
            Keys::Static(set) => set
                .select(kid)
                .ok_or_else(|| AuthError::UnknownKid(kid.map(str::to_string))),
            Keys::Remote(remote) => remote.key_for(kid).await,
        }
    }
}

/// Everything needed to verify the tokens of one trust source: the single key source,
/// or one issuer of `JWT_ISSUERS_FILE`.
struct Trust {
    keys: Keys,
    /// One validation per algorithm a key can have.
    validations: Vec<(Algorithm, Validation)>,
    tenant_claim: String,
    roles_claim: String,
    tenants: AllowedTenants,
    admin_scope: AdminScope,
    /// What verified claims carry as [`Claims::issuer`].
    issuer: Option<String>,
}

enum Mode {
    /// `JWT_HS256_SECRET`, `JWT_JWKS_FILE` or `JWT_JWKS_URL`: admins are global.
    Single(Box<Trust>),
    /// `JWT_ISSUERS_FILE`: the exact `iss` picks the trust.
    PerIssuer(HashMap<String, Trust>),
}

struct Inner {
    mode: Mode,
    /// [`AuthConfig::dev_key`]: the trust of [`DEV_ISSUER`] tokens.
    dev: Option<Trust>,
    leeway_secs: u64,
}

/// Verifies tokens. Build it once per process (it holds the keys and, for a JWKS URL, the
/// key cache); clones share everything.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner.mode {
            Mode::Single(trust) => f
                .debug_struct("Verifier")
                .field("keys", &trust.keys.describe())
                .finish(),
            Mode::PerIssuer(issuers) => {
                let mut names: Vec<&String> = issuers.keys().collect();
                names.sort();
                f.debug_struct("Verifier").field("issuers", &names).finish()
            }
        }
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
    /// JWKS file that is unreadable or holds no usable key ([`AuthError::InvalidJwks`],
    /// naming the file). For a JWKS URL it tries one fetch now (every issuer's at once); a
    /// failure is logged, not fatal (the endpoint is retried on the next verification,
    /// rate-limited).
    pub async fn new(config: AuthConfig) -> Result<Self, AuthError> {
        let mode = match &config.keys {
            KeySource::None => return Err(AuthError::NoKeySource),
            KeySource::Hs256(secret) => Mode::Single(single(&config, hs256(secret))),
            KeySource::JwksFile(path) => {
                Mode::Single(single(&config, Keys::Static(load_file(path)?)))
            }
            KeySource::JwksUrl(url) => {
                let remote = remote(&config, url)?;
                remote.refresh().await;
                Mode::Single(single(&config, Keys::Remote(remote)))
            }
            KeySource::Issuers(file) => {
                let mut issuers = HashMap::with_capacity(file.issuers.len());
                for issuer in &file.issuers {
                    let keys = match &issuer.keys {
                        IssuerKeys::JwksFile(path) => {
                            Keys::Static(load_file(path).map_err(|e| {
                                AuthError::InvalidJwks(format!("issuer {:?}: {e}", issuer.issuer))
                            })?)
                        }
                        IssuerKeys::JwksUrl(url) => Keys::Remote(remote(&config, url)?),
                    };
                    issuers.insert(issuer.issuer.clone(), per_issuer(&config, issuer, keys));
                }
                // First fetches, a few at a time (each bounded by the fetch timeout).
                futures::stream::iter(issuers.values().filter_map(|trust| match &trust.keys {
                    Keys::Remote(remote) => Some(remote),
                    _ => None,
                }))
                .for_each_concurrent(STARTUP_FETCHES_IN_FLIGHT, |remote| remote.refresh())
                .await;
                Mode::PerIssuer(issuers)
            }
        };
        let dev = config.dev_key.as_ref().map(|secret| dev(&config, secret));
        Ok(Self {
            inner: Arc::new(Inner {
                mode,
                dev,
                leeway_secs: config.leeway_secs,
            }),
        })
    }

    /// `JWT_LEEWAY_SECS`: a live connection ends at its token's `exp` plus this.
    pub fn leeway_secs(&self) -> u64 {
        self.inner.leeway_secs
    }

    /// Verifies `token` and returns who it names.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLarge(token.len()));
        }
        let header = parse_header(token)?;
        let dev = self
            .inner
            .dev
            .as_ref()
            .filter(|_| unverified_issuer(token).is_ok_and(|iss| iss == DEV_ISSUER));
        let trust = match (&self.inner.mode, dev) {
            (_, Some(dev)) => dev,
            (Mode::Single(trust), None) => trust,
            (Mode::PerIssuer(issuers), None) => {
                // Unverified: it only chooses whose keys and rules apply; `jsonwebtoken`
                // then checks the same `iss` against that issuer again.
                let iss = unverified_issuer(token)?;
                issuers.get(&iss).ok_or_else(|| {
                    AuthError::UnknownIssuer(iss.chars().take(MAX_LOGGED_ISSUER_CHARS).collect())
                })?
            }
        };
        let key = trust.keys.select(header.kid.as_deref()).await?;
        let alg = header.alg.unwrap_or_default();
        if Algorithm::from_str(&alg).ok() != Some(key.alg) {
            return Err(AuthError::WrongAlgorithm(alg));
        }
        let validation = trust
            .validations
            .iter()
            .find(|(a, _)| *a == key.alg)
            .map(|(_, v)| v)
            .ok_or_else(|| AuthError::WrongAlgorithm(alg.clone()))?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation)
            .map_err(|e| map_jwt_error(e.into_kind()))?;
        let claims = trust.claims(&data.claims)?;
        if !trust.tenants.allows(&claims.tenant) {
            return Err(AuthError::TenantNotAllowed {
                issuer: string_claim(&data.claims, "iss").unwrap_or_default(),
                tenant: claims.tenant.to_string(),
            });
        }
        Ok(claims)
    }
}

fn remote(config: &AuthConfig, url: &str) -> Result<RemoteJwks, AuthError> {
    RemoteJwks::new(
        url.to_string(),
        config.jwks_fetch_timeout,
        config.jwks_min_refresh_interval,
        config.jwks_max_age,
    )
}

fn hs256(secret: &HmacSecret) -> Keys {
    Keys::Hs256(Arc::new(VerifyKey {
        alg: Algorithm::HS256,
        key: DecodingKey::from_secret(secret.as_bytes()),
    }))
}

/// The dev key: `iss` must be [`DEV_ISSUER`], no audience, the default claim names, any
/// tenant, global admins (what `POST /dev/token` mints).
fn dev(config: &AuthConfig, secret: &HmacSecret) -> Trust {
    Trust {
        keys: hs256(secret),
        validations: validations(config.leeway_secs, Some(DEV_ISSUER), &[]),
        tenant_claim: super::config::DEFAULT_TENANT_CLAIM.to_string(),
        roles_claim: super::config::DEFAULT_ROLES_CLAIM.to_string(),
        tenants: AllowedTenants::Any,
        admin_scope: AdminScope::Global,
        issuer: Some(DEV_ISSUER.to_string()),
    }
}

/// The single key source: `JWT_ISSUER`/`JWT_AUDIENCE` when set, any tenant, global admins.
fn single(config: &AuthConfig, keys: Keys) -> Box<Trust> {
    Box::new(Trust {
        keys,
        validations: validations(
            config.leeway_secs,
            config.issuer.as_deref(),
            &config.audience,
        ),
        tenant_claim: config.tenant_claim.clone(),
        roles_claim: config.roles_claim.clone(),
        tenants: AllowedTenants::Any,
        admin_scope: AdminScope::Global,
        issuer: config.issuer.clone(),
    })
}

/// One issuer of `JWT_ISSUERS_FILE`: `iss` always required and exact.
fn per_issuer(config: &AuthConfig, issuer: &IssuerConfig, keys: Keys) -> Trust {
    Trust {
        keys,
        validations: validations(config.leeway_secs, Some(&issuer.issuer), &issuer.audience),
        tenant_claim: issuer
            .tenant_claim
            .clone()
            .unwrap_or_else(|| config.tenant_claim.clone()),
        roles_claim: issuer
            .roles_claim
            .clone()
            .unwrap_or_else(|| config.roles_claim.clone()),
        tenants: issuer.tenants.clone(),
        admin_scope: if issuer.global_admin {
            AdminScope::Global
        } else {
            AdminScope::Tenant
        },
        issuer: Some(issuer.issuer.clone()),
    }
}

/// The payload's `iss`, without verifying anything.
fn unverified_issuer(token: &str) -> Result<String, AuthError> {
    #[derive(Deserialize)]
    struct Iss {
        iss: Option<Value>,
    }
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| AuthError::Malformed("expected three dot-separated parts".to_string()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| AuthError::Malformed("payload is not base64url".to_string()))?;
    let raw: Iss = serde_json::from_slice(&bytes)
        .map_err(|_| AuthError::Malformed("payload is not a JSON object".to_string()))?;
    match raw.iss {
        None | Some(Value::Null) => Err(AuthError::MissingClaim("iss".to_string())),
        Some(Value::String(iss)) => Ok(iss),
        Some(_) => Err(AuthError::InvalidClaim(
            "iss".to_string(),
            "must be a string".to_string(),
        )),
    }
}

impl Trust {
    fn claims(&self, claims: &Map<String, Value>) -> Result<Claims, AuthError> {
        let tenant_claim = &self.tenant_claim;
        let tenant = TenantId::parse(string_claim(claims, tenant_claim)?)
            .map_err(|e| AuthError::InvalidClaim(tenant_claim.clone(), e.to_string()))?;
        let user = UserId::parse(string_claim(claims, "sub")?)
            .map_err(|e| AuthError::InvalidClaim("sub".to_string(), e.to_string()))?;
        let roles_claim = &self.roles_claim;
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
        // `jsonwebtoken` has checked that `exp` is present and not past; it may be a
        // fractional number.
        let exp = match claims.get("exp") {
            Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f.floor() as i64)),
            _ => None,
        }
        .ok_or_else(|| {
            AuthError::InvalidClaim("exp".to_string(), "must be a number".to_string())
        })?;
        Ok(Claims {
            tenant,
            user,
            roles,
            admin_scope: self.admin_scope,
            exp: Some(exp),
            issuer: self.issuer.clone(),
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

fn validations(
    leeway_secs: u64,
    issuer: Option<&str>,
    audience: &[String],
) -> Vec<(Algorithm, Validation)> {
    [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256]
        .into_iter()
        .map(|alg| (alg, validation(leeway_secs, issuer, audience, alg)))
        .collect()
}

fn validation(
    leeway_secs: u64,
    issuer: Option<&str>,
    audience: &[String],
    alg: Algorithm,
) -> Validation {
    let mut v = Validation::new(alg);
    v.leeway = leeway_secs;
    v.validate_exp = true;
    v.validate_nbf = true;
    let mut required = vec!["exp"];
    if let Some(issuer) = issuer {
        v.set_issuer(&[issuer]);
        // jsonwebtoken skips the check when `iss` is absent: require it.
        required.push("iss");
    }
    if audience.is_empty() {
        v.validate_aud = false;
    } else {
        v.set_audience(audience);
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
