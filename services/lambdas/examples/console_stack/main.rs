#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The AWS path on one machine, for the console's browser test (issue 26): the real
//! `publish-api` and `publisher` binaries, each run against an emulated Lambda Runtime API
//! ([`runtime`]), behind a fake API Gateway HTTP API ([`gateway`]: the stack's routes only,
//! [`routes`]), with their tables on DynamoDB Local and SQS and the WebSocket API's
//! `@connections` faked ([`rig`]); [`stack`] wires them.
//!
//!   HTTP client ──► gateway (payload 2.0) ──► publish-api ──SendMessage──► fake SQS
//!   fake SQS ──(SQS event, ≤ 10 bodies, every 50 ms)──► publisher ──► fake @connections
//!   both functions ──► DynamoDB Local (roster + history tables, made fresh per run)
//!
//! A message the publisher lists in `batchItemFailures` (or an invocation that fails) is
//! received again after a second, and goes to the dead-letter queue after five receives
//! (the stack's redrive policy). WebSocket connections are roster records the rig writes
//! (`POST /_rig/connections`), as `$connect` would; the posts they get are kept for
//! `GET /_rig/posts` (see [`rig`]).
//!
//!   cargo build -p switchboard-lambdas --bin publish-api --bin publisher --example console_stack
//!   DYNAMODB_ENDPOINT=http://127.0.0.1:8000 \
//!     target/debug/examples/console_stack --secret <JWT_HS256_SECRET> [--bin-dir target/debug]
//!
//! `--secret` (else `JWT_HS256_SECRET`) is the HS256 key the API verifies tokens with.
//! `--bin-dir` holds the two binaries (default: the folder above this example's). A
//! `TENANTS_FILE` in the environment is passed to both functions. On start it prints one
//! line to stdout: `{"api":"http://127.0.0.1:<port>","rig":"http://127.0.0.1:<port>"}`;
//! logs (its own and the functions') go to stderr. It runs until SIGINT or SIGTERM, then
//! deletes its tables.

mod gateway;
mod rig;
mod routes;
mod runtime;
mod stack;

use std::path::PathBuf;

use serde_json::json;

use crate::stack::StackConfig;

fn config() -> Result<StackConfig, String> {
    let mut secret = std::env::var("JWT_HS256_SECRET").ok();
    let mut bin_dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--secret" => secret = args.next(),
            "--bin-dir" => bin_dir = args.next().map(PathBuf::from),
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: console_stack --secret S [--bin-dir DIR]"
                ))
            }
        }
    }
    let secret = secret
        .filter(|s| !s.is_empty())
        .ok_or("--secret (or JWT_HS256_SECRET) is required")?;
    let bin_dir = match bin_dir {
        Some(dir) => dir,
        // target/debug/examples/console_stack → target/debug
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
            .ok_or("--bin-dir: cannot tell where this example runs from")?,
    };
    let dynamodb_endpoint = std::env::var("DYNAMODB_ENDPOINT")
        .map_err(|_| "DYNAMODB_ENDPOINT (DynamoDB Local) is required")?;
    Ok(StackConfig {
        secret,
        bin_dir,
        dynamodb_endpoint,
        tenants_file: std::env::var("TENANTS_FILE").ok(),
        function_logs: true,
    })
}

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("console_stack: {message}");
    std::process::exit(1);
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let config = config().unwrap_or_else(|e| fail(e));
    let mut stack = stack::start(config).await.unwrap_or_else(|e| fail(e));
    println!("{}", json!({"api": stack.api_url, "rig": stack.rig_url}));

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .unwrap_or_else(|e| fail(e));
    let failure = tokio::select! {
        _ = tokio::signal::ctrl_c() => None,
        _ = terminate.recv() => None,
        message = stack.failure() => message,
    };
    stack.stop().await;
    if let Some(message) = failure {
        fail(message);
    }
}
