//! Dev mode only: the demo page (`GET /`), the client library it imports
//! (`GET /switchboard-client.js`) and `POST /dev/token`, which mints tokens with the
//! process's random secret so the page works with nothing else installed.
//!
//! `switchboard-client.js` is the bundle of `clients/js`, committed so the binary builds
//! without Node; `clients/js`'s tests fail when it differs from a fresh build.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_core::auth::mint_hs256;
use switchboard_core::publish_api::ApiError;
use switchboard_model::{TenantId, UserId};

use super::App;

const PAGE: &str = include_str!("demo.html");
const CLIENT_JS: &str = include_str!("switchboard-client.js");

pub async fn page(State(app): State<Arc<App>>) -> Html<String> {
    Html(PAGE.replace("{{STAGE}}", &app.stage))
}

/// The client library as an ES module.
pub async fn client_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        CLIENT_JS,
    )
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
    Json(request): Json<TokenRequest>,
) -> Result<Json<Value>, ApiError> {
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
    use super::*;

    #[tokio::test]
    async fn serves_the_client_library_as_an_es_module() {
        let response = client_js().await.into_response();
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("function createClient("),
            "the bundle of clients/js"
        );
        assert!(text.contains("export {"), "an ES module");
    }
}
