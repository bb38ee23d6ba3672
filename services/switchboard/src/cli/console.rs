//! `switchboard console`: the operator console for a deployment this process does not run
//! (AWS): the page on a loopback address, and its `/v1/…` calls forwarded to `--api`
//! (`console::proxy` says what is forwarded and how it is bounded). Prints one line to
//! stdout, `console: http://<listen>/console`; logs go to stderr. Stops on SIGINT/SIGTERM,
//! letting requests in progress finish (at most the API timeout plus a margin).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use reqwest::Url;
use tokio::sync::watch;

use super::{CliError, Refusal};
use crate::console::proxy::{self, Upstream};
use crate::console::ConsoleConfig;
use crate::serve::host::Host;
use crate::serve::http_server::{self, ListenerLimits};
use crate::serve::metrics::Metrics;
use crate::serve::ShutdownSignal;

const HELP: &str = "see switchboard console --help";

#[derive(Args)]
pub struct ConsoleArgs {
    /// The deployment's publish API, e.g. https://abc.execute-api.eu-west-1.amazonaws.com/prod
    /// (a path prefix is kept): https, or http to a loopback host.
    #[arg(long)]
    api: String,
    /// Where the console listens: a loopback address (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8788")]
    listen: SocketAddr,
    /// The deployment's WebSocket URL, for the page's live view: wss, or ws to a loopback host.
    #[arg(long)]
    websocket: Option<String>,
    /// Tests only: the longest wait for the API's whole answer (30 s; then 504).
    #[arg(long, hide = true, default_value = "30s", value_parser = humantime::parse_duration)]
    api_timeout: Duration,
}

/// The most connections the console's listener holds (one operator's browser opens a few).
const MAX_CONNECTIONS: usize = 256;

pub(super) async fn console_command(args: ConsoleArgs) -> Result<(), CliError> {
    let signal = ShutdownSignal::install();
    if !args.listen.ip().is_loopback() {
        return Err(Refusal::new(
            "--listen",
            format!("{} is not a loopback address", args.listen),
            "listen on 127.0.0.1 or [::1] (the console forwards your token; keep it on this machine)",
        )
        .into());
    }
    let api = checked_url("--api", &args.api, &["https"], "http")?;
    if api.path().split('/').any(|segment| segment == "v1") {
        return Err(Refusal::new(
            "--api",
            format!("{:?} already holds /v1", args.api),
            "give the API's endpoint without /v1/… (the stack's PublishUrl without /v1/messages): the console adds the paths",
        )
        .into());
    }
    let websocket = args
        .websocket
        .as_deref()
        .map(|text| checked_url("--websocket", text, &["wss"], "ws"))
        .transpose()?;
    if args.api_timeout.is_zero() {
        return Err(Refusal::new("--api-timeout", "must be above 0", HELP).into());
    }
    let upstream = Upstream::new(&api, args.api_timeout)
        .map_err(|e| CliError::Failed(format!("HTTP client: {e}")))?;
    let config = ConsoleConfig::aws(websocket.map(|url| url.to_string()));
    let router = proxy::router(upstream, config);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError::Failed(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Failed(format!("cannot listen on {}: {e}", args.listen)))?;
    let (stop, stopped) = watch::channel(false);
    // A request may wait the API's whole timeout; the listener's own bound comes after it.
    let grace = args.api_timeout + Duration::from_secs(5);
    let limits = ListenerLimits {
        request_timeout: grace,
        max_connections: MAX_CONNECTIONS,
        max_per_address: MAX_CONNECTIONS,
        ..ListenerLimits::default()
    };
    let serving = tokio::spawn(http_server::serve(
        listener,
        router,
        http_server::Listener {
            name: "console",
            limits,
            metrics: Arc::new(Metrics::new()),
        },
        stopped,
        grace,
    ));
    println!("console: http://{addr}/console");
    tracing::info!(%addr, api = %api, "console serving");
    signal.wait().await;
    tracing::info!("shutdown signal received; stopping");
    let _ = stop.send(true);
    serving
        .await
        .map_err(|e| CliError::Failed(format!("console server task failed: {e}")))
}

/// `text` as a URL of scheme `secure`, or `plain` to a loopback host; without user info,
/// query or fragment.
fn checked_url(flag: &str, text: &str, secure: &[&str], plain: &str) -> Result<Url, Refusal> {
    let fix = format!(
        "give a {}:// URL, or {plain}:// to this machine ({HELP})",
        secure.join("/")
    );
    let url = Url::parse(text)
        .map_err(|e| Refusal::new(flag, format!("{text:?} is not a URL ({e})"), &fix))?;
    let loopback = url
        .host_str()
        .and_then(Host::parse)
        .is_some_and(|host| host.is_loopback());
    let scheme_fits = secure.contains(&url.scheme()) || (url.scheme() == plain && loopback);
    if !scheme_fits {
        return Err(Refusal::new(
            flag,
            format!(
                "{text:?} is neither {}:// nor {plain}:// to a loopback host",
                secure.join("/")
            ),
            fix,
        ));
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(Refusal::new(
            flag,
            format!("{text:?} carries user info, a query or a fragment"),
            fix,
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_urls_are_https_or_loopback_http() {
        for good in [
            "https://abc.execute-api.eu-west-1.amazonaws.com/prod",
            "http://127.0.0.1:8080",
            "http://localhost:1/stage/",
            "http://[::1]:8080",
        ] {
            assert!(
                checked_url("--api", good, &["https"], "http").is_ok(),
                "{good}"
            );
        }
        for bad in [
            "http://example.com",
            "http://10.0.0.1:8080",
            "ftp://127.0.0.1",
            "127.0.0.1:8080",
            "https://user:pw@example.com",
            "https://example.com/?a=1",
            "https://example.com/#x",
            "http://localhost.evil.example",
        ] {
            let refusal = checked_url("--api", bad, &["https"], "http").err();
            assert_eq!(refusal.map(|r| r.setting), Some("--api".into()), "{bad}");
        }
    }
}
