//! Command-line interface: flags mirror the environment variables of docs/design.md:
//! Configuration. Argument parsing is here; each command has its own module.

mod console;
mod cost;
mod keys;
mod publish;
pub mod refusal;
pub mod serve;
pub mod settings;
mod token;
mod vapid;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser, Subcommand};
pub use refusal::Refusal;

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
    /// The operator console for a deployment on AWS: its page on this machine, its API
    /// calls forwarded to --api.
    Console(console::ConsoleArgs),
    /// What a deployment on AWS costs a month, per service, from documented unit prices.
    Cost(cost::CostArgs),
    /// Print a fresh VAPID key pair for Web Push (`export $(switchboard vapid-keys)`).
    VapidKeys(vapid::VapidKeysArgs),
}

/// Why a command failed: a message for the operator.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A refusal to start: a setting, flag or variable, has a value the command cannot use
    /// (exit code [`refusal::EXIT_CODE`]).
    #[error("{0}")]
    Config(#[from] Refusal),
    /// A failure after start (exit code 1).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Config(_) => ExitCode::from(refusal::EXIT_CODE),
            CliError::Failed(_) => ExitCode::FAILURE,
        }
    }
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
    /// This process's command line, or the exit code once clap's help or version (exit 0)
    /// or a refusal (its error, in the refusals' shape) is printed.
    pub fn parse_or_exit() -> Result<Self, ExitCode> {
        let argv: Vec<String> = std::env::args_os()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        Self::try_parse_from(&argv).map_err(|error| match error.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                let _ = error.print();
                ExitCode::SUCCESS
            }
            _ => {
                let error = CliError::from(refusal::from_clap(&error, &Self::command(), &argv));
                eprintln!("switchboard: {error}");
                error.exit_code()
            }
        })
    }

    pub async fn run(self) -> Result<(), CliError> {
        match self.command {
            Command::Serve(args) => serve::serve_command(args).await,
            Command::Token(args) => token::token_command(args),
            Command::Keys(args) => keys::keys_command(args),
            Command::Publish(args) => publish::publish_command(args).await,
            Command::Console(args) => console::console_command(args).await,
            Command::Cost(args) => cost::cost_command(args),
            Command::VapidKeys(args) => vapid::vapid_keys_command(args),
        }
    }
}
