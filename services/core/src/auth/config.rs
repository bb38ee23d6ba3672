//! [`AuthConfig`]: the identity settings of docs/design.md: Identity, parsed once from a lookup
//! function.
//!
//! Key sources are exclusive: exactly one of `JWT_HS256_SECRET`, `JWT_JWKS_FILE`,
//! `JWT_JWKS_URL` may be set. When none is set, [`AuthConfig::from_lookup`] still succeeds
//! with [`KeySource::None`]: the local server refuses it unless started with `serve --dev`
//! (dev mode: it then calls
//! [`AuthConfig::with_hs256_secret`] with a random secret; beside a configured key source it
//! adds a per-process dev key with [`AuthConfig::with_dev_key`]), while the Lambda functions call
//! [`AuthConfig::require_key_source`] and stop at start-up with
//! [`AuthConfigError::NoKeySource`]. A [`Verifier`](super::Verifier) is never built
//! without keys: `Verifier::new` refuses [`KeySource::None`] too.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::issuers::IssuersConfig;

/// Default `JWT_LEEWAY_SECS`.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// Largest accepted `JWT_LEEWAY_SECS` (a larger leeway would make `exp` meaningless).
pub const MAX_LEEWAY_SECS: u64 = 3600;
/// Default `TENANT_CLAIM`.
pub const DEFAULT_TENANT_CLAIM: &str = "tenant";
/// Default `ROLES_CLAIM`.
pub const DEFAULT_ROLES_CLAIM: &str = "roles";
/// Shortest accepted `JWT_HS256_SECRET` (RFC 7518 §3.2: a key of the same size as the
/// hash output, 256 bits). Shorter secrets are refused, except in the local server's dev
/// mode ([`ShortSecret::Warn`]).
pub const MIN_HS256_SECRET_BYTES: usize = 32;
/// The `iss` of the tokens `serve --dev` mints beside a configured key source
/// ([`AuthConfig::dev_key`]). Reserved: a configured issuer of that name is refused in dev
/// mode.
pub const DEV_ISSUER: &str = "urn:switchboard:dev";

/// What [`AuthConfig::from_lookup_with`] does with an HS256 secret shorter than
/// [`MIN_HS256_SECRET_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShortSecret {
    /// A start-up error naming `JWT_HS256_SECRET` (production, Lambdas).
    Refuse,
    /// Accepted with a warning (`switchboard serve --dev` only).
    Warn,
}

/// An HMAC secret. Its `Debug` output never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct HmacSecret(Vec<u8>);

impl HmacSecret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HmacSecret(<{} bytes>)", self.0.len())
    }
}

/// Where verification keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Nothing configured (dev mode locally; a start-up error in Lambda).
    None,
    /// `JWT_HS256_SECRET`: HS256 only.
    Hs256(HmacSecret),
    /// `JWT_JWKS_FILE`: a JWKS JSON file read once at start-up; RS256/ES256 per key.
    JwksFile(PathBuf),
    /// `JWT_JWKS_URL`: fetched, cached, refreshed on an unknown `kid` (rate-limited).
    JwksUrl(String),
    /// `JWT_ISSUERS_FILE` (docs/design.md: Identity per issuer): keys, audience, tenants and admin
    /// scope per issuer.
    Issuers(IssuersConfig),
}

/// Identity configuration. Build it with [`AuthConfig::from_lookup`] (environment) or
/// [`AuthConfig::with_hs256_secret`] (dev mode, tests); the public fields may be adjusted
/// in code afterwards (tests shorten `jwks_min_refresh_interval`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub keys: KeySource,
    /// `JWT_ISSUER`: when set, `iss` is required and must equal it.
    pub issuer: Option<String>,
    /// `JWT_AUDIENCE` (comma-separated list allowed): when set, `aud` is required and must
    /// name one of them; when empty, `aud` is not checked.
    pub audience: Vec<String>,
    /// `JWT_LEEWAY_SECS`: clock skew allowed on `exp` and `nbf`.
    pub leeway_secs: u64,
    /// `TENANT_CLAIM`: the claim holding the tenant id (e.g. `custom:tenant_id`).
    pub tenant_claim: String,
    /// `ROLES_CLAIM`: the claim holding roles, a JSON array or a space-separated string.
    pub roles_claim: String,
    /// JWKS URL: at most one fetch per this interval (unknown `kid`s never stampede).
    pub jwks_min_refresh_interval: Duration,
    /// JWKS URL: cached keys older than this are refreshed on the next verification
    /// (stale keys keep working while the endpoint is down).
    pub jwks_max_age: Duration,
    /// JWKS URL: timeout of one fetch.
    pub jwks_fetch_timeout: Duration,
    /// `serve --dev` beside a configured key source: an HS256 key made for this process,
    /// trusted for tokens whose `iss` is [`DEV_ISSUER`] (any tenant, global admins), next
    /// to the configured source. Another process never trusts it, whatever it shares.
    pub dev_key: Option<HmacSecret>,
}

/// A configuration value that stops the process at start-up. The message names the
/// variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthConfigError {
    #[error("{var}: {reason}")]
    Invalid { var: &'static str, reason: String },
    #[error(
        "set only one of JWT_HS256_SECRET, JWT_JWKS_FILE, JWT_JWKS_URL, JWT_ISSUERS_FILE (got {0})"
    )]
    ConflictingKeySources(String),
    #[error(
        "no JWT key source: set JWT_HS256_SECRET, JWT_JWKS_FILE, JWT_JWKS_URL or JWT_ISSUERS_FILE"
    )]
    NoKeySource,
}

fn invalid(var: &'static str, reason: impl Into<String>) -> AuthConfigError {
    AuthConfigError::Invalid {
        var,
        reason: reason.into(),
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            keys: KeySource::None,
            issuer: None,
            audience: Vec::new(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
            tenant_claim: DEFAULT_TENANT_CLAIM.to_string(),
            roles_claim: DEFAULT_ROLES_CLAIM.to_string(),
            jwks_min_refresh_interval: Duration::from_secs(30),
            jwks_max_age: Duration::from_secs(3600),
            jwks_fetch_timeout: Duration::from_secs(3),
            dev_key: None,
        }
    }
}

impl AuthConfig {
    /// Reads `JWT_HS256_SECRET`, `JWT_JWKS_FILE`, `JWT_JWKS_URL`, `JWT_ISSUER`,
    /// `JWT_AUDIENCE`, `JWT_LEEWAY_SECS`, `TENANT_CLAIM`, `ROLES_CLAIM`. Empty values count
    /// as unset, except for the three key-source variables: one that is set but empty is
    /// an error (a half-written configuration must not fall back to anything). No key
    /// source at all is not an error here (see the module docs). HS256 secrets shorter
    /// than [`MIN_HS256_SECRET_BYTES`] are refused.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, AuthConfigError> {
        Self::from_lookup_with(lookup, ShortSecret::Refuse)
    }

    /// [`AuthConfig::from_lookup`] with a choice for short HS256 secrets.
    pub fn from_lookup_with(
        lookup: impl Fn(&str) -> Option<String>,
        short_secret: ShortSecret,
    ) -> Result<Self, AuthConfigError> {
        let get = |var: &str| lookup(var).filter(|v| !v.trim().is_empty());
        let key_var = |var: &'static str| match lookup(var) {
            Some(value) if value.trim().is_empty() => Err(invalid(
                var,
                "is set but empty: give a value or unset the variable",
            )),
            other => Ok(other),
        };

        let secret = key_var("JWT_HS256_SECRET")?;
        let file = key_var("JWT_JWKS_FILE")?;
        let url = key_var("JWT_JWKS_URL")?;
        let issuers_file = key_var("JWT_ISSUERS_FILE")?;
        let set: Vec<&str> = [
            ("JWT_HS256_SECRET", secret.is_some()),
            ("JWT_JWKS_FILE", file.is_some()),
            ("JWT_JWKS_URL", url.is_some()),
            ("JWT_ISSUERS_FILE", issuers_file.is_some()),
        ]
        .iter()
        .filter(|(_, present)| *present)
        .map(|(name, _)| *name)
        .collect();
        if set.len() > 1 {
            return Err(AuthConfigError::ConflictingKeySources(set.join(", ")));
        }

        let keys = if let Some(secret) = secret {
            if secret.len() < MIN_HS256_SECRET_BYTES {
                // A short HMAC key is guessable offline from any token.
                match short_secret {
                    ShortSecret::Refuse => {
                        return Err(invalid(
                            "JWT_HS256_SECRET",
                            format!(
                                "{} bytes; at least {MIN_HS256_SECRET_BYTES} random bytes are required",
                                secret.len()
                            ),
                        ))
                    }
                    ShortSecret::Warn => tracing::warn!(
                        bytes = secret.len(),
                        "JWT_HS256_SECRET is shorter than {MIN_HS256_SECRET_BYTES} bytes (accepted in dev mode only)"
                    ),
                }
            }
            KeySource::Hs256(HmacSecret::new(secret.into_bytes()))
        } else if let Some(file) = file {
            KeySource::JwksFile(PathBuf::from(file.trim()))
        } else if let Some(url) = url {
            let url = crate::config::http_url("JWT_JWKS_URL", &url)
                .map_err(|e| invalid("JWT_JWKS_URL", e.to_string()))?;
            KeySource::JwksUrl(url)
        } else if let Some(path) = issuers_file {
            // Issuer and audience are per issuer there; a global one would be ambiguous.
            for var in ["JWT_ISSUER", "JWT_AUDIENCE"] {
                if get(var).is_some() {
                    return Err(invalid(
                        var,
                        "not used with JWT_ISSUERS_FILE: set \"issuer\"/\"audience\" per issuer in that file",
                    ));
                }
            }
            KeySource::Issuers(IssuersConfig::load(path.trim())?)
        } else {
            KeySource::None
        };

        let leeway_secs = match get("JWT_LEEWAY_SECS") {
            None => DEFAULT_LEEWAY_SECS,
            Some(text) => match text.trim().parse::<u64>() {
                Ok(secs) if secs <= MAX_LEEWAY_SECS => secs,
                _ => {
                    return Err(invalid(
                        "JWT_LEEWAY_SECS",
                        format!(
                        "must be a whole number of seconds, 0 to {MAX_LEEWAY_SECS} (got {text:?})"
                    ),
                    ))
                }
            },
        };

        let audience = get("JWT_AUDIENCE")
            .map(|text| {
                text.split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();

        Ok(Self {
            keys,
            issuer: get("JWT_ISSUER").map(|i| i.trim().to_string()),
            audience,
            leeway_secs,
            tenant_claim: get("TENANT_CLAIM")
                .map(|c| c.trim().to_string())
                .unwrap_or_else(|| DEFAULT_TENANT_CLAIM.to_string()),
            roles_claim: get("ROLES_CLAIM")
                .map(|c| c.trim().to_string())
                .unwrap_or_else(|| DEFAULT_ROLES_CLAIM.to_string()),
            ..Self::default()
        })
    }

    /// Defaults plus an HS256 secret (dev mode with a random secret, tests). Shorter secrets
    /// than [`MIN_HS256_SECRET_BYTES`] work; the environment path warns about them.
    pub fn with_hs256_secret(secret: impl Into<Vec<u8>>) -> Self {
        Self::default().hs256_secret_replaced(secret)
    }

    /// This configuration with its key source replaced by an HS256 secret (how the local
    /// server fills in a dev-mode secret while keeping the claim settings).
    pub fn hs256_secret_replaced(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.keys = KeySource::Hs256(HmacSecret::new(secret));
        self
    }

    /// This configuration with a dev key ([`AuthConfig::dev_key`]) beside its key source.
    /// Refused when the configuration itself trusts [`DEV_ISSUER`] (`JWT_ISSUER`, or an
    /// issuer of `JWT_ISSUERS_FILE`): its tokens would be taken for dev tokens.
    pub fn with_dev_key(mut self, secret: impl Into<Vec<u8>>) -> Result<Self, AuthConfigError> {
        if self.issuer.as_deref() == Some(DEV_ISSUER) {
            return Err(invalid(
                "JWT_ISSUER",
                format!("{DEV_ISSUER:?} is reserved for dev-mode tokens: choose another issuer or drop --dev"),
            ));
        }
        if let KeySource::Issuers(file) = &self.keys {
            if file.get(DEV_ISSUER).is_some() {
                return Err(invalid(
                    super::issuers::ISSUERS_FILE_VAR,
                    format!(
                        "{}: issuer {DEV_ISSUER:?} is reserved for dev-mode tokens: rename it or drop --dev",
                        file.path.display()
                    ),
                ));
            }
        }
        self.dev_key = Some(HmacSecret::new(secret));
        Ok(self)
    }

    /// Whether any key source is configured.
    pub fn has_key_source(&self) -> bool {
        !matches!(self.keys, KeySource::None)
    }

    /// Fails with [`AuthConfigError::NoKeySource`] when nothing is configured: what a
    /// Lambda function calls at init so it can never allow everyone.
    pub fn require_key_source(self) -> Result<Self, AuthConfigError> {
        if self.has_key_source() {
            Ok(self)
        } else {
            Err(AuthConfigError::NoKeySource)
        }
    }

    /// The HS256 secret, when that is the key source (for minting dev tokens).
    pub fn hs256_secret(&self) -> Option<&[u8]> {
        match &self.keys {
            KeySource::Hs256(secret) => Some(secret.as_bytes()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<AuthConfig, AuthConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AuthConfig::from_lookup(|k| map.get(k).cloned())
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn defaults_without_any_variable() {
        let config = from(&[]).unwrap();
        assert_eq!(config.keys, KeySource::None);
        assert!(!config.has_key_source());
        assert_eq!(config.leeway_secs, 30);
        assert_eq!(config.tenant_claim, "tenant");
        assert_eq!(config.roles_claim, "roles");
        assert_eq!(config.issuer, None);
        assert!(config.audience.is_empty());
        assert_eq!(
            config.require_key_source(),
            Err(AuthConfigError::NoKeySource)
        );
    }

    #[test]
    fn reads_every_variable() {
        let config = from(&[
            ("JWT_HS256_SECRET", SECRET),
            ("JWT_ISSUER", "https://issuer.example"),
            ("JWT_AUDIENCE", "app1, app2"),
            ("JWT_LEEWAY_SECS", "5"),
            ("TENANT_CLAIM", "custom:tenant_id"),
            ("ROLES_CLAIM", "cognito:groups"),
        ])
        .unwrap();
        assert_eq!(config.hs256_secret(), Some(SECRET.as_bytes()));
        assert_eq!(config.issuer.as_deref(), Some("https://issuer.example"));
        assert_eq!(config.audience, vec!["app1", "app2"]);
        assert_eq!(config.leeway_secs, 5);
        assert_eq!(config.tenant_claim, "custom:tenant_id");
        assert_eq!(config.roles_claim, "cognito:groups");
        assert!(config.require_key_source().is_ok());
    }

    #[test]
    fn jwks_sources() {
        let file = from(&[("JWT_JWKS_FILE", "/etc/jwks.json")]).unwrap();
        assert_eq!(file.keys, KeySource::JwksFile("/etc/jwks.json".into()));
        let url = from(&[("JWT_JWKS_URL", "https://idp.example/.well-known/jwks.json")]).unwrap();
        assert!(matches!(url.keys, KeySource::JwksUrl(_)));
    }

    #[test]
    fn errors_name_the_variable() {
        let e = from(&[("JWT_LEEWAY_SECS", "soon")]).unwrap_err();
        assert!(e.to_string().starts_with("JWT_LEEWAY_SECS:"), "{e}");
        let e = from(&[("JWT_HS256_SECRET", "short")]).unwrap_err();
        assert!(e.to_string().starts_with("JWT_HS256_SECRET:"), "{e}");
        assert!(e.to_string().contains("at least 32"), "{e}");
        let e = from(&[("JWT_JWKS_URL", "ftp://x/jwks")]).unwrap_err();
        assert!(e.to_string().starts_with("JWT_JWKS_URL:"), "{e}");
        let e = from(&[("JWT_JWKS_URL", "not a url")]).unwrap_err();
        assert!(e.to_string().starts_with("JWT_JWKS_URL:"), "{e}");
    }

    #[test]
    fn refuses_two_key_sources() {
        let e = from(&[
            ("JWT_HS256_SECRET", SECRET),
            ("JWT_JWKS_URL", "https://x/j"),
        ])
        .unwrap_err();
        assert!(matches!(e, AuthConfigError::ConflictingKeySources(_)));
        assert!(e.to_string().contains("JWT_HS256_SECRET"));
    }

    #[test]
    fn short_secret_is_accepted_only_when_asked_to_warn() {
        let lookup = |k: &str| (k == "JWT_HS256_SECRET").then(|| "short".to_string());
        let config = AuthConfig::from_lookup_with(lookup, ShortSecret::Warn).unwrap();
        assert_eq!(config.hs256_secret(), Some(&b"short"[..]));
        assert!(AuthConfig::from_lookup_with(lookup, ShortSecret::Refuse).is_err());
    }

    #[test]
    fn empty_key_source_variable_is_an_error_not_dev_mode() {
        for var in ["JWT_HS256_SECRET", "JWT_JWKS_FILE", "JWT_JWKS_URL"] {
            let e = from(&[(var, "")]).unwrap_err();
            assert!(e.to_string().starts_with(&format!("{var}:")), "{e}");
            let e = from(&[(var, "  ")]).unwrap_err();
            assert!(e.to_string().contains("empty"), "{e}");
        }
    }

    #[test]
    fn empty_values_count_as_unset() {
        let config = from(&[("JWT_ISSUER", ""), ("JWT_AUDIENCE", " ")]).unwrap();
        assert_eq!(config.issuer, None);
        assert!(config.audience.is_empty());
    }

    /// `serve --dev` beside a configured secret: dev tokens verify with this process's dev
    /// key only, never with the shared secret, and the shared secret's tokens still work.
    #[tokio::test]
    async fn dev_key_tokens_verify_on_their_own_process_only() {
        use crate::auth::{mint_hs256_with, MintOptions, Verifier};
        use std::time::Duration;
        use switchboard_model::{AdminScope, TenantId, UserId};
        let (tenant, user) = (
            TenantId::parse("acme").unwrap(),
            UserId::parse("u").unwrap(),
        );
        let admin = ["admin".to_string()];
        let dev_options = MintOptions {
            issuer: Some(DEV_ISSUER.into()),
            ..MintOptions::default()
        };
        let dev_token = |key: &[u8]| {
            mint_hs256_with(
                key,
                &dev_options,
                &tenant,
                &user,
                &admin,
                Duration::from_secs(60),
            )
        };
        let this = Verifier::new(
            AuthConfig::with_hs256_secret(SECRET)
                .with_dev_key("dev-key-of-this-process-32-bytes")
                .unwrap(),
        )
        .await
        .unwrap();
        let other = Verifier::new(
            AuthConfig::with_hs256_secret(SECRET)
                .with_dev_key("dev-key-of-another-process-32-by")
                .unwrap(),
        )
        .await
        .unwrap();
        let plain = Verifier::new(AuthConfig::with_hs256_secret(SECRET))
            .await
            .unwrap();

        let claims = this
            .verify(&dev_token(b"dev-key-of-this-process-32-bytes"))
            .await
            .unwrap();
        assert_eq!(claims.issuer.as_deref(), Some(DEV_ISSUER));
        assert_eq!(claims.admin_scope, AdminScope::Global);
        for verifier in [&other, &plain] {
            assert!(verifier
                .verify(&dev_token(b"dev-key-of-this-process-32-bytes"))
                .await
                .is_err());
        }
        // A dev-issuer token signed with the shared secret is no dev token either.
        assert!(this.verify(&dev_token(SECRET.as_bytes())).await.is_err());
        // The configured secret's own tokens verify everywhere, without an issuer.
        let shared = crate::auth::mint_hs256(
            SECRET.as_bytes(),
            &tenant,
            &user,
            &[],
            Duration::from_secs(60),
        );
        for verifier in [&this, &other, &plain] {
            assert_eq!(verifier.verify(&shared).await.unwrap().issuer, None);
        }
    }

    #[test]
    fn dev_key_refuses_a_configuration_that_trusts_the_dev_issuer() {
        let e = from(&[("JWT_HS256_SECRET", SECRET), ("JWT_ISSUER", DEV_ISSUER)])
            .unwrap()
            .with_dev_key("k")
            .unwrap_err();
        assert!(e.to_string().starts_with("JWT_ISSUER:"), "{e}");
        let file = std::env::temp_dir().join(format!("dev-issuer-{}.json", std::process::id()));
        std::fs::write(
            &file,
            format!(r#"{{"issuers":[{{"issuer":"{DEV_ISSUER}","jwksUrl":"https://x/j","tenants":"*"}}]}}"#),
        )
        .unwrap();
        let e = from(&[("JWT_ISSUERS_FILE", &file.display().to_string())])
            .unwrap()
            .with_dev_key("k")
            .unwrap_err();
        assert!(e.to_string().starts_with("JWT_ISSUERS_FILE:"), "{e}");
        let _ = std::fs::remove_file(file);
    }

    #[test]
    fn secret_is_not_printed() {
        let config = AuthConfig::with_hs256_secret(SECRET);
        assert!(!format!("{config:?}").contains(SECRET));
    }
}
