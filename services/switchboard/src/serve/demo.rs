//! Dev mode only: the demo page (`GET /`) and `POST /dev/token`, which mints tokens with
//! the process's random secret so the page works with nothing else installed.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::Html;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_core::auth::mint_hs256;
use switchboard_core::publish_api::ApiError;
use switchboard_model::{TenantId, UserId};

use super::App;

const PAGE: &str = include_str!("demo.html");

pub async fn page(State(app): State<Arc<App>>) -> Html<String> {
    Html(PAGE.replace("{{STAGE}}", &app.stage))
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
