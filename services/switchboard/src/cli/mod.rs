//! Command-line interface: flags mirror the environment variables of docs/design.md:
//! Configuration. Argument parsing is here; each command has its own module.

mod keys;
mod publish;
pub mod serve;
pub mod settings;
mod token;

use std::collections::HashMap;
use std::sync::Arc;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Targeted, multi-tenant WebSocket notifications"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole service on this machine.
    #[command(
        after_help = "`switchboard serve --help` lists every environment setting with its default and meaning.",
        after_long_help = settings::help()
    )]
    Serve(serve::ServeArgs),
    /// Print a signed token: HS256 with JWT_HS256_SECRET, or ES256 with --key.
    Token(token::TokenArgs),
    /// Signing keys for a deployment that verifies a JWKS.
    Keys(keys::KeysArgs),
    /// Send an envelope to a publish API URL or an SQS queue URL.
    Publish(publish::PublishArgs),
}

/// Why a command failed: a message for the operator.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Failed(String),
}

/// Human logs on stderr, filtered by RUST_LOG (default info).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Where the configuration variables come from: the process environment, or a map (a server
/// started in-process by the tests, which run many servers in one process).
#[derive(Clone, Default)]
pub enum Env {
    #[default]
    Process,
    Map(Arc<HashMap<String, String>>),
}

impl Env {
    pub fn get(&self, name: &str) -> Option<String> {
        match self {
            Env::Process => std::env::var(name).ok(),
            Env::Map(map) => map.get(name).cloned(),
        }
    }
}

impl Cli {
    pub async fn run(self) -> Result<(), CliError> {
        match self.command {
            Command::Serve(args) => serve::serve_command(args).await,
            Command::Token(args) => token::token_command(args),
            Command::Keys(args) => keys::keys_command(args),
            Command::Publish(args) => publish::publish_command(args).await,
        }
    }
}
