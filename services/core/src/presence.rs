//! Presence (docs/design.md: Presence), read from the roster — `Query` only, never a
//! scan — as an `axum::Router` merged beside the publish API in both deployments:
//!
//! - `GET /v1/tenants/{tenant}/presence?limit=&next=` → `{"tenant", "connections":
//!   [{"connectionId","user","connectedAt"}], "next": <token|null>}`, one roster page of the
//!   tenant (`limit` 1–1000, default 1000);
//! - `GET /v1/tenants/{tenant}/users/{user}/presence` → `{"tenant","user","online",
//!   "connections":[{"connectionId","connectedAt"}]}` (the `byUser` index);
//! - `GET /v1/tenants/{tenant}/presence/summary` → `{"tenant","connections","users",
//!   "complete"}`: the tenant's live connections and distinct users, counted up to
//!   [`TALLY_UP_TO`] connections (`complete: false` beyond: the counts are lower bounds).
//!
//! Checks, in order: a valid bearer token (401), valid ids and parameters (400), the caller
//! may read that tenant — an admin, or a publisher of that tenant (403); then the read (503
//! when the roster is unavailable). Errors are the publish API's `{"error","message"}`.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_model::{Claims, TenantId, UserId};
use time::format_description::well_known::Rfc3339;

use crate::auth::Verifier;
use crate::http::{authenticate, ApiError};
use crate::roster::{ConnectionRecord, PageScope, RosterError, RosterStore, Tally};

/// Default and largest `limit` of a tenant presence page.
pub const MAX_PRESENCE_LIMIT: usize = 1_000;
/// Connections a presence summary counts at most (`complete: false` beyond).
pub const TALLY_UP_TO: u64 = 10_000;

/// What the presence endpoints need.
#[derive(Clone)]
pub struct PresenceApi {
    pub verifier: Arc<Verifier>,
    pub roster: Arc<dyn RosterStore>,
}

impl PresenceApi {
    pub fn router(self) -> Router {
        Router::new()
            .route("/v1/tenants/{tenant}/presence", get(tenant_presence))
            .route("/v1/tenants/{tenant}/presence/summary", get(tenant_summary))
            .route(
                "/v1/tenants/{tenant}/users/{user}/presence",
                get(user_presence),
            )
            .with_state(self)
    }
}

/// Whether `claims` may read the presence of `tenant`: an admin of it (a global admin, or
/// a tenant admin of that tenant), or a publisher of it.
pub fn may_read_presence(claims: &Claims, tenant: &TenantId) -> Result<(), ApiError> {
    if claims.may_publish_to(tenant) {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!(
        "reading the presence of tenant {tenant} needs role admin, or publisher of that tenant"
    )))
}

#[derive(Deserialize)]
struct PageParams {
    limit: Option<String>,
    next: Option<String>,
}

fn tenant_id(raw: String) -> Result<TenantId, ApiError> {
    TenantId::parse(raw).map_err(|e| ApiError::InvalidRequest(format!("tenant: {e}")))
}

/// A tenant's summary as answered: `{"tenant","connections","users","complete"}`.
pub fn summary_json(tenant: &TenantId, tally: Tally) -> Value {
    json!({
        "tenant": tenant,
        "connections": tally.connections,
        "users": tally.users,
        "complete": tally.complete,
    })
}

pub(crate) fn unavailable(error: RosterError) -> ApiError {
    match error {
        RosterError::InvalidContinuation(_) => {
            ApiError::InvalidRequest("next: not a token this endpoint issued".into())
        }
        error => {
            tracing::error!(%error, "presence: roster unavailable");
            ApiError::Unavailable("the roster is unavailable; retry later".into())
        }
    }
}

fn connected_at(record: &ConnectionRecord) -> String {
    record.connected_at.format(&Rfc3339).unwrap_or_default()
}

async fn tenant_presence(
    State(api): State<PresenceApi>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let claims = authenticate(&api.verifier, &headers).await?;
    let Path(tenant) = path.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let Query(params) = query.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let tenant = tenant_id(tenant)?;
    let limit = match params.limit.as_deref() {
        None => MAX_PRESENCE_LIMIT,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_PRESENCE_LIMIT).contains(l))
            .ok_or_else(|| ApiError::InvalidRequest(format!("limit: 1 to {MAX_PRESENCE_LIMIT}")))?,
    };
    may_read_presence(&claims, &tenant)?;
    let page = api
        .roster
        .list_page(
            &PageScope::Tenant(tenant.clone()),
            params.next.as_deref().filter(|n| !n.is_empty()),
            limit,
        )
        .await
        .map_err(unavailable)?;
    let connections: Vec<Value> = page
        .records
        .iter()
        .map(|r| {
            json!({
                "connectionId": r.connection_id,
                "user": r.user,
                "connectedAt": connected_at(r),
            })
        })
        .collect();
    Ok(Json(json!({
        "tenant": tenant,
        "connections": connections,
        "next": page.next,
    })))
}

async fn tenant_summary(
    State(api): State<PresenceApi>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let claims = authenticate(&api.verifier, &headers).await?;
    let Path(tenant) = path.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let tenant = tenant_id(tenant)?;
    may_read_presence(&claims, &tenant)?;
    let tally = api
        .roster
        .tally(&tenant, TALLY_UP_TO)
        .await
        .map_err(unavailable)?;
    Ok(Json(summary_json(&tenant, tally)))
}

async fn user_presence(
    State(api): State<PresenceApi>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let claims = authenticate(&api.verifier, &headers).await?;
    let Path((tenant, user)) = path.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let tenant = tenant_id(tenant)?;
    let user = UserId::parse(user).map_err(|e| ApiError::InvalidRequest(format!("user: {e}")))?;
    may_read_presence(&claims, &tenant)?;
    let records = api
        .roster
        .list_users(&tenant, std::slice::from_ref(&user))
        .await
        .map_err(unavailable)?;
    let connections: Vec<Value> = records
        .iter()
        .map(|r| json!({"connectionId": r.connection_id, "connectedAt": connected_at(r)}))
        .collect();
    Ok(Json(json!({
        "tenant": tenant,
        "user": user,
        "online": !connections.is_empty(),
        "connections": connections,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(tenant: &str, roles: &[&str]) -> Claims {
        crate::testkit::claims(tenant, roles, switchboard_model::AdminScope::Tenant)
    }

    #[test]
    fn admins_and_publishers_of_the_tenant_may_read_presence() {
        let acme = TenantId::parse("acme").unwrap();
        let global = Claims {
            admin_scope: switchboard_model::AdminScope::Global,
            ..claims("ops", &["admin"])
        };
        assert!(may_read_presence(&global, &acme).is_ok());
        assert!(may_read_presence(&claims("acme", &["admin"]), &acme).is_ok());
        assert!(
            may_read_presence(&claims("ops", &["admin"]), &acme).is_err(),
            "a tenant admin of another tenant"
        );
        assert!(may_read_presence(&claims("acme", &["publisher"]), &acme).is_ok());
        assert!(may_read_presence(&claims("globex", &["publisher"]), &acme).is_err());
        assert!(may_read_presence(&claims("acme", &[]), &acme).is_err());
    }
}
