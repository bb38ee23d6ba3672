//! `GET /v1/tenants/{tenant}/usage?from=&to=&unit=minute|hour|day` → `{"tenant","unit",
//! "buckets":[{"start","publishesAccepted","publishesRefused","matched","delivered","gone",
//! "pushed","bytesSent","connectionMinutes","peakConnections"}]}` (docs/design.md: Usage).
//!
//! Checks, in order: a valid bearer token (401); role admin (403); the caller administers
//! that tenant — a global admin, or an admin of exactly that tenant; `*` (broadcasts) for
//! global admins only — else 404, so other tenants cannot be probed; then `from` and `to`
//! (RFC 3339, both required, `from` before `to`, at most the retention apart) and `unit`
//! (default `minute`), else 400 `invalid_request`; then the read (503 when the store is
//! unavailable). Buckets start in `[from, to)` (an hour or day bucket sums the minutes of
//! it within the range); only non-empty buckets are answered.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_model::{Claims, Role, TenantId};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{group, roll_up, Unit, Usage};
use crate::auth::Verifier;
use crate::http::{authenticate, ApiError};

/// What the usage endpoint needs.
#[derive(Clone)]
pub struct UsageApi {
    pub verifier: Arc<Verifier>,
    pub usage: Usage,
}

impl UsageApi {
    pub fn router(self) -> Router {
        Router::new()
            .route("/v1/tenants/{tenant}/usage", get(usage))
            .with_state(self)
    }
}

/// Whose usage `claims` may read at `path` (a tenant id, or `*` for broadcasts):
/// `Ok(Some(tenant))` when allowed, `Ok(None)` when the answer must be 404, 403 without
/// role admin.
pub fn usage_scope(claims: &Claims, path: &str) -> Result<Option<Option<TenantId>>, ApiError> {
    if !claims.holds(Role::Admin) {
        return Err(ApiError::Forbidden(
            "reading usage needs role admin of that tenant".into(),
        ));
    }
    if path == "*" {
        return Ok(claims.is_global_admin().then_some(None));
    }
    let tenant =
        TenantId::parse(path).map_err(|e| ApiError::InvalidRequest(format!("tenant: {e}")))?;
    Ok(claims.may_administer(&tenant).then_some(Some(tenant)))
}

#[derive(Deserialize)]
struct Params {
    from: Option<String>,
    to: Option<String>,
    unit: Option<String>,
}

fn instant(name: &str, value: Option<&str>) -> Result<OffsetDateTime, ApiError> {
    let value = value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::InvalidRequest(format!("{name}: required (RFC 3339)")))?;
    OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|e| ApiError::InvalidRequest(format!("{name}: not an RFC 3339 time: {e}")))
}

async fn usage(
    State(api): State<UsageApi>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let claims = authenticate(&api.verifier, &headers).await?;
    let Path(path) = path.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let Some(tenant) = usage_scope(&claims, &path)? else {
        return Err(ApiError::NotFound(format!("no usage for tenant {path}")));
    };
    let Query(params) = query.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let from = instant("from", params.from.as_deref())?;
    let to = instant("to", params.to.as_deref())?;
    if from >= to {
        return Err(ApiError::InvalidRequest("from must be before to".into()));
    }
    if to - from > api.usage.retention {
        return Err(ApiError::InvalidRequest(format!(
            "from and to are more than the retention ({} days) apart",
            api.usage.retention.as_secs() / 86_400
        )));
    }
    let unit = match params.unit.as_deref().filter(|u| !u.is_empty()) {
        None => Unit::Minute,
        Some(text) => Unit::parse(text)
            .ok_or_else(|| ApiError::InvalidRequest("unit: minute, hour or day".into()))?,
    };
    let minutes = api
        .usage
        .store
        .minutes(tenant.as_ref(), from, to)
        .await
        .map_err(|error| {
            tracing::error!(%error, "usage read failed");
            ApiError::Unavailable("the usage store is unavailable; retry later".into())
        })?;
    let buckets: Vec<Value> = roll_up(minutes, unit).iter().map(|b| b.to_json()).collect();
    Ok(Json(json!({
        "tenant": group(tenant.as_ref()),
        "unit": unit.as_str(),
        "buckets": buckets,
    })))
}

#[cfg(test)]
mod tests {
    use switchboard_model::AdminScope;

    use crate::testkit::claims;

    use super::*;

    #[test]
    fn usage_is_read_by_the_tenants_admins_and_global_admins() {
        let acme = || Some(Some(TenantId::parse("acme").unwrap()));
        let global = claims("ops", &["admin"], AdminScope::Global);
        assert_eq!(usage_scope(&global, "acme").unwrap(), acme());
        assert_eq!(usage_scope(&global, "*").unwrap(), Some(None));
        let admin = claims("acme", &["admin"], AdminScope::Tenant);
        assert_eq!(usage_scope(&admin, "acme").unwrap(), acme());
        assert_eq!(usage_scope(&admin, "globex").unwrap(), None);
        assert_eq!(usage_scope(&admin, "*").unwrap(), None);
        for roles in [&["publisher"][..], &["reader"], &[]] {
            let caller = claims("acme", roles, AdminScope::Global);
            assert!(matches!(
                usage_scope(&caller, "acme"),
                Err(ApiError::Forbidden(_))
            ));
        }
        assert!(matches!(
            usage_scope(&global, "a#b"),
            Err(ApiError::InvalidRequest(_))
        ));
    }
}
