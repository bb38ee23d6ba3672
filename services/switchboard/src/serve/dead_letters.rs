//! `GET /v1/dead-letters?limit=&next=` (paginated, oldest first) and
//! `POST /v1/dead-letters/redrive` (role `admin`).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};
use switchboard_core::publish_api::{authenticate, ApiError};
use switchboard_model::Role;

use serde::Deserialize;

use super::App;

/// Default and largest `limit` of one page.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

#[derive(Deserialize)]
pub struct PageQuery {
    limit: Option<String>,
    next: Option<String>,
}

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
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&app, &headers).await?;
    let Query(query) =
        query.map_err(|rejection| ApiError::InvalidEnvelope(format!("query: {rejection}")))?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::InvalidEnvelope(format!(
                    "limit: a whole number from 1 to {MAX_PAGE}"
                )))
            }
        },
    };
    let from = match query.next.as_deref() {
        None => None,
        Some(text) => Some(text.parse::<u64>().map_err(|_| {
            ApiError::InvalidEnvelope("next: a cursor from a previous page".into())
        })?),
    };
    let page = app.queue.dead_letters_page(from, limit);
    Ok(Json(json!({
        "items": page.items,
        "next": page.next.map(|seq| seq.to_string()),
    })))
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
