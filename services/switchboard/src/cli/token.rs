//! `switchboard token`: mints a token, signed with the configured HS256 secret, or with an
//! ES256 private key (`--key`, from `switchboard keys generate`) for a deployment that
//! verifies a JWKS. Claim names, `iss` and `aud` come from the same variables the verifier
//! reads (`TENANT_CLAIM`, `ROLES_CLAIM`, `JWT_ISSUER`, first of `JWT_AUDIENCE`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use switchboard_core::auth::{mint_claims, mint_hs256_with, AuthConfig, MintOptions, ShortSecret};
use switchboard_model::{TenantId, UserId};

use super::keys::{KeyError, SigningKey};
use super::refusal::KEY_SOURCES;
use super::{CliError, Env, Refusal};

#[derive(Args)]
pub struct TokenArgs {
    #[arg(long)]
    tenant: String,
    #[arg(long)]
    user: String,
    /// A role (repeat for several): publisher, admin, ...
    #[arg(long = "role")]
    roles: Vec<String>,
    /// Lifetime, e.g. 30m, 1h, 7d.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// Sign ES256 with this PKCS#8 PEM private key (`switchboard keys generate`) instead
    /// of JWT_HS256_SECRET (which is then ignored).
    #[arg(long)]
    key: Option<PathBuf>,
    /// The `kid` header with --key (default: the key's RFC 7638 thumbprint, the `kid` of
    /// the JWKS `keys generate` writes).
    #[arg(long, requires = "key")]
    kid: Option<String>,
}

pub fn token_command(args: TokenArgs) -> Result<(), CliError> {
    let tenant = TenantId::parse(args.tenant.clone())
        .map_err(|e| Refusal::new("--tenant", e.to_string(), "see switchboard token --help"))?;
    let user = UserId::parse(args.user.clone())
        .map_err(|e| Refusal::new("--user", e.to_string(), "see switchboard token --help"))?;
    let token = match &args.key {
        Some(path) => {
            // The key signs: the environment's key sources neither conflict nor matter.
            let config = AuthConfig::from_lookup_with(
                |name: &str| {
                    if KEY_SOURCES.contains(&name) {
                        None
                    } else {
                        Env::Process.get(name)
                    }
                },
                ShortSecret::Warn,
            )
            .map_err(Refusal::from)?;
            let key = SigningKey::read(path).map_err(|e| {
                let problem = match e {
                    KeyError::Io { .. } => e.to_string(),
                    _ => format!("{}: {e}", path.display()),
                };
                Refusal::new(
                    "--key",
                    problem,
                    "give the private-key.pem `switchboard keys generate` wrote",
                )
            })?;
            let kid = args.kid.clone().unwrap_or_else(|| key.thumbprint());
            let claims = mint_claims(
                &MintOptions::from_config(&config),
                &tenant,
                &user,
                &args.roles,
                args.ttl,
            );
            key.sign(&kid, &claims)?
        }
        None => {
            // Minting with a short secret is allowed (a dev-mode server accepts it); a server
            // without --dev refuses such a secret at start-up.
            let config = AuthConfig::from_lookup_with(
                |name: &str| Env::Process.get(name),
                ShortSecret::Warn,
            )
            .map_err(Refusal::from)?;
            let secret = config.hs256_secret().ok_or_else(|| {
                Refusal::new(
                    "JWT_HS256_SECRET",
                    "is not set, and `switchboard token` signs with it",
                    "export the secret the server verifies with (`switchboard serve --dev` \
                     prints one at start-up), or sign with --key <private key file>",
                )
            })?;
            mint_hs256_with(
                secret,
                &MintOptions::from_config(&config),
                &tenant,
                &user,
                &args.roles,
                args.ttl,
            )
        }
    };
    println!("{token}");
    Ok(())
}
