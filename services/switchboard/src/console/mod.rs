//! The operator console: its page and assets (the bundle of `console/`, committed under
//! `assets/` so the binary builds without Node) and `config.json`, which tells the page
//! which deployment it talks to. `serve` mounts [`router`] on its public listener;
//! `switchboard console` serves the same router beside [`proxy`], which forwards `/v1/…`
//! to a deployment's API so the page's calls stay same-origin (no CORS anywhere).
//!
//! Routes (all `GET`):
//! - `/console` and `/console/`: `index.html`, with the [`CONTENT_SECURITY_POLICY`];
//! - `/console/console.js`, `/console/console.css`: the bundle;
//! - `/console/config.json`: [`ConsoleConfig`].
//!
//! Every answer is `Cache-Control: no-cache` (a rebuilt binary's bundle is picked up at
//! once), `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`.

pub mod proxy;

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

const INDEX_HTML: &str = include_str!("assets/index.html");
const CONSOLE_JS: &str = include_str!("assets/console.js");
const CONSOLE_CSS: &str = include_str!("assets/console.css");

/// The page's policy: scripts and styles from this origin only (uPlot sets element styles
/// from script, hence `'unsafe-inline'` for styles), API calls to this origin and sockets to
/// any `ws:`/`wss:` (the AWS WebSocket API is another origin), never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self' ws: wss:; \
     img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; \
     frame-ancestors 'none'";

/// Which deployment the page talks to (`config.json`'s `deployment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Deployment {
    /// `switchboard serve`: the page derives its socket URL from its own host and `stage`,
    /// and offers the dead-letter view.
    Serve,
    /// AWS, through `switchboard console`: the socket URL is `websocketUrl` (if given).
    Aws,
}

/// `GET /console/config.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsoleConfig {
    pub deployment: Deployment,
    /// The WebSocket URL to connect to; `null` on serve (derived from the page's host).
    pub websocket_url: Option<String>,
    /// Whether `POST /dev/token` mints tokens (`serve --dev`).
    pub dev_token: bool,
    /// serve's stage: the socket is `ws(s)://<host>/<stage>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

impl ConsoleConfig {
    /// serve's: its stage, and dev tokens with `--dev`.
    pub fn serve(stage: &str, dev_token: bool) -> Self {
        Self {
            deployment: Deployment::Serve,
            websocket_url: None,
            dev_token,
            stage: Some(stage.to_string()),
        }
    }

    /// `switchboard console`'s: AWS, with the `--websocket` URL if given.
    pub fn aws(websocket_url: Option<String>) -> Self {
        Self {
            deployment: Deployment::Aws,
            websocket_url,
            dev_token: false,
            stage: None,
        }
    }
}

/// The console's routes, answering `config` at `/console/config.json`.
pub fn router(config: ConsoleConfig) -> Router {
    Router::new()
        .route("/console", get(index))
        .route("/console/", get(index))
        .route(
            "/console/console.js",
            get(|| async { asset("text/javascript; charset=utf-8", CONSOLE_JS) }),
        )
        .route(
            "/console/console.css",
            get(|| async { asset("text/css; charset=utf-8", CONSOLE_CSS) }),
        )
        .route(
            "/console/config.json",
            get(move || async move { with_headers(Json(config).into_response()) }),
        )
}

async fn index() -> Response {
    let mut response = asset("text/html; charset=utf-8", INDEX_HTML);
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

fn asset(content_type: &'static str, text: &'static str) -> Response {
    with_headers(([(header::CONTENT_TYPE, content_type)], text).into_response())
}

/// The headers every console answer carries.
fn with_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-cache"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert::<HeaderName>(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_json_has_the_contracts_shape() {
        assert_eq!(
            serde_json::to_value(ConsoleConfig::serve("main", true)).unwrap_or_default(),
            json!({"deployment": "serve", "websocketUrl": null, "devToken": true, "stage": "main"})
        );
        assert_eq!(
            serde_json::to_value(ConsoleConfig::aws(Some("wss://x.example/prod".into())))
                .unwrap_or_default(),
            json!({"deployment": "aws", "websocketUrl": "wss://x.example/prod", "devToken": false})
        );
    }

    #[test]
    fn the_page_loads_only_its_own_files() {
        // The CSP allows no inline script: the page must not hold one.
        assert!(!INDEX_HTML.contains("<script>"), "an inline script");
        assert!(!INDEX_HTML.contains("<style"), "an inline style element");
        assert!(INDEX_HTML.contains("/console/console.js"));
        assert!(INDEX_HTML.contains("/console/console.css"));
    }
}
