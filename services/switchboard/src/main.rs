//! `switchboard`: Switchboard on one machine.
//!
//! - `serve`: the WebSocket gateway, `@connections`, publish and dead-letter APIs, the
//!   in-process queue and the publisher (see `serve/`).
//! - `token`: mints a token with the configured HS256 secret.
//! - `publish`: sends an envelope to a publish API URL or an SQS queue URL.

use std::process::ExitCode;

use clap::Parser;
use switchboard::cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::init_logging();
    match cli.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchboard: {error}");
            ExitCode::FAILURE
        }
    }
}
