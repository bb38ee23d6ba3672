//! `GET /v1/dead-letters` and `POST /v1/dead-letters/redrive` (role `admin`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};
use switchboard_core::publish_api::{authenticate, ApiError};
use switchboard_model::Role;

use super::local_queue::DeadEntry;
use super::App;

async fn require_admin(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let claims = authenticate(&app.verifier, headers).await?;
    if claims.has_role(Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("dead letters need role admin".into()))
    }
}

pub async fn list(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<Vec<DeadEntry>>, ApiError> {
    require_admin(&app, &headers).await?;
    Ok(Json(app.queue.dead_letters()))
}

pub async fn redrive(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    require_admin(&app, &headers).await?;
    let redriven = app.queue.redrive();
    tracing::info!(redriven, "dead letters redriven");
    Ok(Json(json!({ "redriven": redriven })))
}
