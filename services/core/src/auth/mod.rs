//! Identity (docs/design.md: Identity): who is calling, proven by a JWT.
//!
//! - [`config`]: [`AuthConfig`], parsed once from the `JWT_*`, `TENANT_CLAIM` and
//!   `ROLES_CLAIM` variables through a lookup function.
//! - [`issuers`]: `JWT_ISSUERS_FILE` (docs/design.md: Identity per issuer), the per-issuer
//!   alternative to the single key source: keys, audience, allowed tenants, claim names and admin
//!   scope per issuer.
//! - `overlap` (private): refuses two issuers vouching for one tenant unless allowed.
//! - [`verifier`]: [`Verifier`], built once per process; `verify(token)` checks signature,
//!   algorithm, `exp`/`nbf`, `iss`/`aud` and maps the claims to a [`Claims`]. With an
//!   issuers file the unverified `iss` only picks the issuer whose keys (cached per
//!   issuer and `kid`) and rules apply; an unknown issuer is refused before any fetch.
//! - `jwks` (private): JWKS parsing and the cached, rate-limited remote key set.
//! - [`extract`]: where a token sits in a request (query `token=`, the `bearer, <jwt>`
//!   subprotocol pair, `Authorization: Bearer`), shared by every edge.
//! - [`mint`]: signs HS256 dev/test tokens.
//!
//! Every way a token can be wrong is an [`AuthError`] variant; the edges map all of them to
//! 401 (`Unauthorized` in the Lambda authorizer) and log the variant.

pub mod config;
pub mod extract;
pub mod issuers;
mod jwks;
pub mod mint;
mod overlap;
pub mod verifier;

#[cfg(test)]
mod tests;

pub use config::{AuthConfig, AuthConfigError, HmacSecret, KeySource, ShortSecret, DEV_ISSUER};
pub use extract::{
    offers_bearer, token_from_authorization, token_from_handshake, token_from_query,
    token_from_subprotocol, HandshakeToken, TokenSource, BEARER_SUBPROTOCOL,
};
pub use issuers::{AllowedTenants, IssuerConfig, IssuerKeys, IssuersConfig};
pub use mint::{mint_claims, mint_hs256, mint_hs256_with, DevMint, MintOptions};
pub use switchboard_model::Claims;
pub use verifier::{Verifier, MAX_TOKEN_BYTES};

/// Why a token (or the verifier itself) was refused. Every variant means "not
/// authenticated" to a client; the distinction is for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// `exp` is further in the past than the leeway allows.
    #[error("token expired")]
    Expired,
    /// `nbf` is further in the future than the leeway allows.
    #[error("token not yet valid")]
    NotYetValid,
    /// The signature does not match the key.
    #[error("bad signature")]
    BadSignature,
    /// The header's `alg` is not the algorithm configured for the selected key
    /// (includes `none`).
    #[error("algorithm {0:?} not allowed for this key")]
    WrongAlgorithm(String),
    /// No configured key has the header's `kid` (`None`: the header has no `kid` and the
    /// key set holds more than one key).
    #[error("unknown key id {0:?}")]
    UnknownKid(Option<String>),
    /// `iss` is not `JWT_ISSUER`.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `iss` names no issuer of `JWT_ISSUERS_FILE` (at most 128 characters of it kept);
    /// refused before any key lookup or fetch.
    #[error("unknown issuer {0:?}")]
    UnknownIssuer(String),
    /// The token's tenant is not one of its issuer's `tenants`.
    #[error("issuer {issuer:?} may not issue tokens for tenant {tenant:?}")]
    TenantNotAllowed { issuer: String, tenant: String },
    /// `aud` names none of the `JWT_AUDIENCE` values (only checked when configured).
    #[error("wrong audience")]
    WrongAudience,
    /// A required claim is absent (`exp`, `sub`, the tenant claim, `iss`/`aud` when
    /// configured).
    #[error("missing claim {0:?}")]
    MissingClaim(String),
    /// A claim is present but unusable: (claim name, why).
    #[error("invalid claim {0:?}: {1}")]
    InvalidClaim(String, String),
    /// The token is longer than [`MAX_TOKEN_BYTES`]; it was not parsed.
    #[error("token too large ({0} bytes)")]
    TooLarge(usize),
    /// Not a JWS compact token, or its header/payload is not valid base64url JSON.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The JWKS endpoint could not be fetched or parsed, and no cached key matches.
    #[error("JWKS unavailable: {0}")]
    JwksUnavailable(String),
    /// `JWT_JWKS_FILE` could not be read or holds no usable key (start-up only).
    #[error("invalid JWKS: {0}")]
    InvalidJwks(String),
    /// The configuration names no key source (start-up only).
    #[error(
        "no JWT key source configured: set one of JWT_HS256_SECRET, JWT_JWKS_FILE, JWT_JWKS_URL, JWT_ISSUERS_FILE"
    )]
    NoKeySource,
}
