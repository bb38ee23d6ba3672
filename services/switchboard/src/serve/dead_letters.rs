//! `GET /v1/dead-letters?limit=&next=&tenant=` (paginated, oldest first) and
//! `POST /v1/dead-letters/redrive?tenant=&id=` (role `admin`; docs/design.md: Identity per
//! issuer): every letter of the scope, or with `id` just that letter (404 `not_found`
//! when the scope holds no letter of that id).
//!
//! Who sees what ([`scope`]), in order:
//! 1. no valid bearer token: 401;
//! 2. no role `admin`: 403;
//! 3. `tenant` not a valid tenant id: 400 `invalid_request`;
//! 4. a tenant-scoped admin (an issuer without `globalAdmin`) asking for another tenant:
//!    403; otherwise it gets its own tenant's dead letters only, with or without `tenant`;
//! 5. a global admin: every dead letter, or those of `tenant` when given.
//!
//! A dead letter belongs to the tenant its body is addressed to (an envelope's target, a
//! work item's tenant), recorded when it was written. Broadcast, legacy and unreadable
//! bodies belong to no tenant: only global admins list or redrive them. A redrive puts
//! back exactly the letters its caller may list.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use switchboard_core::http::{authenticate, ApiError};
use switchboard_model::{Claims, Role, TenantId};

use serde::{Deserialize, Serialize};

use super::app::App;
use super::local_queue::DeadEntry;

/// Default and largest `limit` of one page.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

#[derive(Deserialize)]
pub struct PageQuery {
    limit: Option<String>,
    next: Option<String>,
    tenant: Option<String>,
}

#[derive(Deserialize)]
pub struct RedriveQuery {
    tenant: Option<String>,
    id: Option<String>,
}

/// Which dead letters a caller may list and redrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every dead letter (a global admin without `tenant`).
    All,
    /// Those addressed to this tenant.
    Tenant(TenantId),
}

impl Scope {
    /// The tenant whose letters the scope holds; `None`: every letter.
    fn tenant(&self) -> Option<&TenantId> {
        match self {
            Scope::All => None,
            Scope::Tenant(tenant) => Some(tenant),
        }
    }
}

/// The dead letters `claims` may see, given the `tenant` the request asks for (the
/// module docs list the checks).
pub fn scope(claims: &Claims, requested: Option<&str>) -> Result<Scope, ApiError> {
    if !claims.holds(Role::Admin) {
        return Err(ApiError::Forbidden("dead letters need role admin".into()));
    }
    let requested = requested
        .map(|raw| {
            TenantId::parse(raw).map_err(|e| ApiError::InvalidRequest(format!("tenant: {e}")))
        })
        .transpose()?;
    match requested {
        None if claims.is_global_admin() => Ok(Scope::All),
        None => Ok(Scope::Tenant(claims.tenant.clone())),
        Some(tenant) if claims.may_administer(&tenant) => Ok(Scope::Tenant(tenant)),
        Some(_) => Err(ApiError::Forbidden(
            "a tenant admin sees its own tenant's dead letters only".into(),
        )),
    }
}

async fn caller_scope(
    app: &App,
    headers: &HeaderMap,
    requested: Option<&str>,
) -> Result<Scope, ApiError> {
    let claims = authenticate(&app.verifier, headers).await?;
    scope(&claims, requested).inspect_err(|error| {
        tracing::info!(tenant = %claims.tenant, user = %claims.user, %error, "dead letters refused");
    })
}

/// A page as it is answered: written straight from the shared letters.
#[derive(Serialize)]
struct PageBody<'a> {
    items: Vec<&'a DeadEntry>,
    next: Option<String>,
}

pub async fn list(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let tenant = query.as_ref().ok().and_then(|q| q.tenant.clone());
    let scope = caller_scope(&app, &headers, tenant.as_deref()).await?;
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
    let page = app.queue.dead_letters_page(from, limit, scope.tenant());
    // Up to 1,000 letters of up to a frame each: written on a blocking thread, so a
    // listing never holds a worker that publishes need.
    let body = tokio::task::spawn_blocking(move || {
        serde_json::to_vec(&PageBody {
            items: page.items.iter().map(|entry| &**entry).collect(),
            next: page.next.map(|seq| seq.to_string()),
        })
    })
    .await
    .map_err(|e| ApiError::Unavailable(format!("dead letters: {e}")))?
    .map_err(|e| ApiError::Unavailable(format!("dead letters: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

pub async fn redrive(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<RedriveQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = query.as_ref().ok().and_then(|q| q.tenant.clone());
    let scope = caller_scope(&app, &headers, tenant.as_deref()).await?;
    let Query(query) =
        query.map_err(|rejection| ApiError::InvalidRequest(format!("query: {rejection}")))?;
    let redriven = match query.id.as_deref() {
        None => app.queue.redrive(scope.tenant()),
        Some(id) => match app.queue.redrive_id(id, scope.tenant()) {
            0 => {
                return Err(ApiError::NotFound(format!(
                    "no dead letter {id:?} you may redrive"
                )))
            }
            n => n,
        },
    };
    tracing::info!(redriven, ?scope, id = query.id, "dead letters redriven");
    Ok(Json(json!({ "redriven": redriven })))
}

#[cfg(test)]
mod tests {
    use switchboard_core::testkit::claims;
    use switchboard_model::AdminScope;

    use super::*;

    fn acme() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    #[test]
    fn tenant_admins_are_held_to_their_tenant() {
        let admin = claims("acme", &["admin"], AdminScope::Tenant);
        assert_eq!(scope(&admin, None).unwrap(), Scope::Tenant(acme()));
        assert_eq!(scope(&admin, Some("acme")).unwrap(), Scope::Tenant(acme()));
        assert!(matches!(
            scope(&admin, Some("globex")),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            scope(&admin, Some("a#b")),
            Err(ApiError::InvalidRequest(_))
        ));
    }

    #[test]
    fn global_admins_see_everything_or_the_tenant_they_name() {
        let admin = claims("ops", &["admin"], AdminScope::Global);
        assert_eq!(scope(&admin, None).unwrap(), Scope::All);
        assert_eq!(scope(&admin, Some("acme")).unwrap(), Scope::Tenant(acme()));
    }

    #[test]
    fn non_admins_are_refused_whatever_they_ask() {
        for roles in [&["publisher"][..], &[]] {
            for scope_kind in [AdminScope::Tenant, AdminScope::Global] {
                let caller = claims("acme", roles, scope_kind);
                assert!(matches!(scope(&caller, None), Err(ApiError::Forbidden(_))));
                assert!(matches!(
                    scope(&caller, Some("acme")),
                    Err(ApiError::Forbidden(_))
                ));
            }
        }
    }
}
