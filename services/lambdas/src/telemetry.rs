//! Logging for the Lambda functions: one JSON object per line (CloudWatch adds the
//! timestamp), filtered by `RUST_LOG` (default `info`).
//!
//! The line shape is a contract with the stack: its metric filters match
//! `$.fields.message` (the event's message) of these lines, e.g. "JWKS fetch failed".

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// The subscriber every function installs, writing to `writer`.
pub fn subscriber<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .with_current_span(false)
        .without_time()
        .with_writer(writer)
        .finish()
}

/// Installs the JSON subscriber on standard output. Call once, first thing in `main`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // `try_init` also bridges the `log` records of dependencies, as before.
    let _ = subscriber(filter, std::io::stdout).try_init();
}

/// A configuration variable from the process environment (what every `build` reads).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Every function's start-up: installs the JSON logs, then builds its dependencies once
/// (`build` runs after the logs are up). A configuration error is logged as "<function>
/// configuration invalid" and fails the init. The dependencies live as long as the process.
pub async fn start<D: 'static, E: std::fmt::Display>(
    function: &str,
    build: impl std::future::Future<Output = Result<D, E>>,
) -> Result<&'static D, lambda_runtime::Error> {
    init();
    let deps = build.await.map_err(|e| init_failed(function, e))?;
    Ok(Box::leak(Box::new(deps)))
}

/// Logs a start-up failure of `function` and turns it into the runtime's error (the init
/// then fails, and Lambda reports it).
pub fn init_failed(function: &str, error: impl std::fmt::Display) -> lambda_runtime::Error {
    tracing::error!(%error, "{function} configuration invalid");
    lambda_runtime::Error::from(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_carry_level_and_fields_message_as_the_metric_filters_expect() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = subscriber(EnvFilter::new("info"), move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(error = "no key source", "authorizer configuration invalid");
            tracing::warn!(url = "https://idp/jwks", "JWKS fetch failed");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["level"], "ERROR");
        assert_eq!(
            lines[0]["fields"]["message"],
            "authorizer configuration invalid"
        );
        assert_eq!(lines[0]["fields"]["error"], "no key source");
        assert_eq!(lines[1]["fields"]["message"], "JWKS fetch failed");
        assert!(
            lines[0].get("timestamp").is_none(),
            "CloudWatch adds the time"
        );
    }
}
