//! `switchboard token`: mints a token with the configured HS256 secret.

use std::time::Duration;

use clap::Args;
use switchboard_core::auth::{mint_hs256_with, AuthConfig, MintOptions, ShortSecret};
use switchboard_model::{TenantId, UserId};

use super::{CliError, Env};

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
}

pub fn token_command(args: TokenArgs) -> Result<(), CliError> {
    // Minting with a short secret is allowed (a dev-mode server accepts it); a server
    // without --dev refuses such a secret at start-up.
    let config =
        AuthConfig::from_lookup_with(|name: &str| Env::Process.get(name), ShortSecret::Warn)
            .map_err(|e| CliError::Config(e.to_string()))?;
    let secret = config.hs256_secret().ok_or_else(|| {
        CliError::Config(
            "JWT_HS256_SECRET is not set: `switchboard token` signs with it (dev mode prints it at start-up)"
                .into(),
        )
    })?;
    let tenant =
        TenantId::parse(args.tenant).map_err(|e| CliError::Input(format!("--tenant: {e}")))?;
    let user = UserId::parse(args.user).map_err(|e| CliError::Input(format!("--user: {e}")))?;
    let token = mint_hs256_with(
        secret,
        &MintOptions::from_config(&config),
        &tenant,
        &user,
        &args.roles,
        args.ttl,
    );
    println!("{token}");
    Ok(())
}
