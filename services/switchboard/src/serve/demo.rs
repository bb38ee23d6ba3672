//! Dev mode only (`serve --dev`): the demo page (`GET /`) and `POST /dev/token`, which
//! mints tokens with the process's secret so the page works with nothing else installed.
//! Both answer only loopback peers whose `Host` names a loopback address (a page on
//! another site reaching 127.0.0.1 through DNS rebinding sends its own host name).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap};
use axum::response::Html;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_core::auth::mint_hs256;
use switchboard_core::publish_api::ApiError;
use switchboard_model::{TenantId, UserId};

use super::App;

const PAGE: &str = include_str!("demo.html");

/// Whether a `Host` header value names this machine: `localhost` (or a `.localhost`
/// name), a 127.0.0.0/8 address or `[::1]`, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, _port)| name)
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn local_only(peer: SocketAddr, headers: &HeaderMap) -> Result<(), ApiError> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if peer.ip().is_loopback() && is_loopback_host(host) {
        Ok(())
    } else {
        tracing::warn!(peer = %peer, host, "dev endpoint refused: not a loopback peer and host");
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
    let Some(secret) = &app.dev_secret else {
        return Err(ApiError::NotFound("dev mode is off".into()));
    };
    let tenant = TenantId::parse(request.tenant)
        .map_err(|e| ApiError::InvalidEnvelope(format!("tenant: {e}")))?;
    let user =
        UserId::parse(request.user).map_err(|e| ApiError::InvalidEnvelope(format!("user: {e}")))?;
    let token = mint_hs256(
        secret,
        &tenant,
        &user,
        &request.roles,
        Duration::from_secs(3600),
    );
    Ok(Json(json!({ "token": token })))
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn loopback_host_names() {
        for host in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:80",
            "127.1.2.3",
            "[::1]:8080",
            "[::1]",
            "app.localhost:1",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "",
            "evil.example",
            "evil.example:8080",
            "10.0.0.1:80",
            "localhost.evil.example",
            "[2001:db8::1]:80",
            "0.0.0.0:8080",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
