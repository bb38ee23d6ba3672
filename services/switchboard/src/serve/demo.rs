//! Dev mode only (`serve --dev`): the demo page (`GET /`), its service worker (`GET
//! /service-worker.js`, the client library's example `clients/js/examples/service-worker.js`,
//! which shows Web Push notifications) and `POST /dev/token`, which mints tokens with the
//! process's own dev key ([`DevMint`]: no other process accepts them) so the page works
//! with nothing else installed. The page and the token answer only loopback peers
//! whose `Host` names a loopback address (a page on another site reaching 127.0.0.1
//! through DNS rebinding sends its own host name): 400 `invalid_request` for a `Host` that
//! is not `host[:port]` ([`Host`]), 403 for one that is not loopback.
//!
//! [`DevMint`]: switchboard_core::auth::DevMint

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_core::http::ApiError;
use switchboard_model::{TenantId, UserId};

use super::app::App;
use super::client_js::script;
use super::host::Host;

const PAGE: &str = include_str!("demo.html");
/// Served as is (a plain script, no build step): the one copy is the example in `clients/js`.
const SERVICE_WORKER: &str = include_str!("../../../../clients/js/examples/service-worker.js");

fn local_only(peer: SocketAddr, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(host) = Host::from_headers(headers) else {
        tracing::warn!(peer = %peer, "dev endpoint refused: Host is not host[:port]");
        return Err(ApiError::InvalidRequest(
            "Host must be exactly one host[:port]".into(),
        ));
    };
    if peer.ip().is_loopback() && host.is_loopback() {
        Ok(())
    } else {
        tracing::warn!(peer = %peer, host = %host.name, "dev endpoint refused: not a loopback peer and host");
        Err(ApiError::Forbidden(
            "dev endpoints answer loopback clients addressing a loopback host only".into(),
        ))
    }
}

pub async fn page(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Html<String>, ApiError> {
    local_only(peer, &headers)?;
    Ok(Html(PAGE.replace("{{STAGE}}", &app.stage)))
}

/// The demo's service worker. Its scope is `/` (the folder it is served from), so it may
/// show notifications for the page.
pub async fn service_worker() -> impl IntoResponse {
    script(SERVICE_WORKER)
}

#[derive(Deserialize)]
pub struct TokenRequest {
    tenant: String,
    user: String,
    #[serde(default)]
    roles: Vec<String>,
}

pub async fn token(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(request): Json<TokenRequest>,
) -> Result<Json<Value>, ApiError> {
    local_only(peer, &headers)?;
    let Some(dev) = &app.dev else {
        return Err(ApiError::NotFound("dev mode is off".into()));
    };
    let tenant = TenantId::parse(request.tenant)
        .map_err(|e| ApiError::InvalidRequest(format!("tenant: {e}")))?;
    let user =
        UserId::parse(request.user).map_err(|e| ApiError::InvalidRequest(format!("user: {e}")))?;
    let token = dev.mint(&tenant, &user, &request.roles, Duration::from_secs(3600));
    Ok(Json(json!({ "token": token })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_worker_is_the_example_as_a_classic_script() {
        assert!(SERVICE_WORKER.contains(r#"self.addEventListener("push""#));
        assert!(!SERVICE_WORKER.contains("export "), "not a module");
    }
}
