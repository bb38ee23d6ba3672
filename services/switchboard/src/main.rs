//! `switchboard`: Switchboard on one machine.
//!
//! - `serve`: the WebSocket gateway, `@connections`, publish and dead-letter APIs, the
//!   in-process queue and the publisher (see `serve/`).
//! - `token`: mints a token with the configured HS256 secret.
//! - `publish`: sends an envelope to a publish API URL or an SQS queue URL.
//! - `console`: the operator console for a deployment on AWS, forwarding to its API
//!   (`cli/console.rs`).
//! - `cost`: what a deployment on AWS costs a month, per service (`cli/cost.rs`).
//!
//! A refusal to start prints two lines and exits 78; a failure after start exits 1
//! (`cli::refusal`).

use std::process::ExitCode;

use switchboard::cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match cli::Cli::parse_or_exit() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    cli::init_logging();
    match cli.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchboard: {error}");
            error.exit_code()
        }
    }
}
