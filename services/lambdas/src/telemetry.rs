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
