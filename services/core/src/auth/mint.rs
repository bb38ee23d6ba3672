//! Signs HS256 tokens (the dev `switchboard token` command, `serve --dev`'s [`DevMint`] and
//! tests), and builds the claims every minted token carries (`switchboard token --key` signs
//! them ES256).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};
use switchboard_model::{TenantId, UserId};

use super::config::{
    AuthConfig, HmacSecret, DEFAULT_ROLES_CLAIM, DEFAULT_TENANT_CLAIM, DEV_ISSUER,
};

/// Claim names and optional `iss`/`aud` for minted tokens, so they pass a verifier with
/// the same configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintOptions {
    pub tenant_claim: String,
    pub roles_claim: String,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

impl Default for MintOptions {
    fn default() -> Self {
        Self {
            tenant_claim: DEFAULT_TENANT_CLAIM.to_string(),
            roles_claim: DEFAULT_ROLES_CLAIM.to_string(),
            issuer: None,
            audience: None,
        }
    }
}

impl MintOptions {
    /// The claim names, issuer and first audience of `config`.
    pub fn from_config(config: &AuthConfig) -> Self {
        Self {
            tenant_claim: config.tenant_claim.clone(),
            roles_claim: config.roles_claim.clone(),
            issuer: config.issuer.clone(),
            audience: config.audience.first().cloned(),
        }
    }
}

/// What `serve --dev` signs `POST /dev/token` tokens with: a key made for this process and
/// the claim names and `iss` its own verifier expects, so no other process accepts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevMint {
    pub secret: HmacSecret,
    pub options: MintOptions,
}

impl DevMint {
    /// Nothing configured: `config` gets `secret` as its HS256 key source and dev tokens
    /// are ordinary tokens of that key (the secret may be shown, for `switchboard token`).
    pub fn sole_key(config: AuthConfig, secret: Vec<u8>) -> (AuthConfig, Self) {
        let config = config.hs256_secret_replaced(secret.clone());
        let options = MintOptions::from_config(&config);
        let mint = Self {
            secret: HmacSecret::new(secret),
            options,
        };
        (config, mint)
    }

    /// Beside a configured key source: `secret` becomes `config`'s dev key and dev tokens
    /// carry [`DEV_ISSUER`] ([`AuthConfig::with_dev_key`], which may refuse).
    pub fn beside(
        config: AuthConfig,
        secret: Vec<u8>,
    ) -> Result<(AuthConfig, Self), super::AuthConfigError> {
        let config = config.with_dev_key(secret.clone())?;
        let mint = Self {
            secret: HmacSecret::new(secret),
            options: MintOptions {
                issuer: Some(DEV_ISSUER.to_string()),
                ..MintOptions::default()
            },
        };
        Ok((config, mint))
    }

    /// Whether it signs dev-issuer tokens beside a configured key source.
    pub fn is_beside_a_key_source(&self) -> bool {
        self.options.issuer.as_deref() == Some(DEV_ISSUER)
    }

    /// A token for `tenant`/`user` with `roles`, valid for `ttl`.
    pub fn mint(
        &self,
        tenant: &TenantId,
        user: &UserId,
        roles: &[String],
        ttl: Duration,
    ) -> String {
        mint_hs256_with(
            self.secret.as_bytes(),
            &self.options,
            tenant,
            user,
            roles,
            ttl,
        )
    }
}

/// An HS256 token for `tenant`/`user` with `roles` (a JSON array), valid for `ttl`, using
/// the default claim names.
pub fn mint_hs256(
    secret: &[u8],
    tenant: &TenantId,
    user: &UserId,
    roles: &[String],
    ttl: Duration,
) -> String {
    mint_hs256_with(secret, &MintOptions::default(), tenant, user, roles, ttl)
}

/// [`mint_hs256`] with explicit claim names and `iss`/`aud`.
pub fn mint_hs256_with(
    secret: &[u8],
    options: &MintOptions,
    tenant: &TenantId,
    user: &UserId,
    roles: &[String],
    ttl: Duration,
) -> String {
    let claims = mint_claims(options, tenant, user, roles, ttl);
    #[allow(clippy::expect_used)]
    // HMAC signing of an in-memory JSON object has no failure path.
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing cannot fail")
}

/// The claims a minted token carries (whatever signs it): `sub`, the tenant and roles
/// claims, `iat`, `exp` = now + `ttl`, and `iss`/`aud` when `options` has them.
pub fn mint_claims(
    options: &MintOptions,
    tenant: &TenantId,
    user: &UserId,
    roles: &[String],
    ttl: Duration,
) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user.as_str()));
    claims.insert(options.tenant_claim.clone(), json!(tenant.as_str()));
    claims.insert(options.roles_claim.clone(), json!(roles));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now.saturating_add(ttl.as_secs())));
    if let Some(issuer) = &options.issuer {
        claims.insert("iss".into(), json!(issuer));
    }
    if let Some(audience) = &options.audience {
        claims.insert("aud".into(), json!(audience));
    }
    Value::Object(claims)
}
