//! Logging for the Lambda functions: one JSON object per line (CloudWatch adds the
//! timestamp), filtered by `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber. Call once, first thing in `main`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .with_current_span(false)
        .without_time()
        .try_init();
}

/// Logs a start-up failure of `function` and turns it into the runtime's error (the init
/// then fails, and Lambda reports it).
pub fn init_failed(function: &str, error: impl std::fmt::Display) -> lambda_runtime::Error {
    tracing::error!(%error, "{function} configuration invalid");
    lambda_runtime::Error::from(error.to_string())
}
