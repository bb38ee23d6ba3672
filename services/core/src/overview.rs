//! The tenants an admin may oversee, each with its presence summary (docs/design.md:
//! Presence), as an `axum::Router` merged beside the publish API in both deployments:
//!
//! - `GET /v1/tenants` → `{"caller":{"tenant","user","globalAdmin"},"tenants":[{"tenant",
//!   "connections","users","complete"}],"listed":"all"|"configured","truncated"}`.
//!
//! Checks, in order: a valid bearer token (401), role admin (403 `forbidden`); then the
//! reads (503 when the roster is unavailable). Which tenants:
//! - a tenant-scoped admin: exactly its own (`"listed":"all"`: all it may see);
//! - a global admin: the tenants `TENANTS_FILE` lists, plus every tenant with a live
//!   connection when the roster can name them without a scan
//!   ([`RosterStore::live_tenants`]: the memory roster can, DynamoDB cannot) — then
//!   `"listed":"all"`, else `"configured"` (the console lets the admin name any tenant).
//!   At most [`MAX_LISTED_TENANTS`], by name; `"truncated": true` when some were left out.
//!
//! Each listed tenant carries its tally ([`RosterStore::tally`], up to
//! [`TALLY_UP_TO`] connections), [`TALLY_CONCURRENCY`] tallies at a time.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use futures::{stream, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use switchboard_model::{Claims, Role, TenantId};

use crate::auth::Verifier;
use crate::http::{authenticate, ApiError};
use crate::presence::{summary_json, unavailable, TALLY_UP_TO};
use crate::roster::RosterStore;
use crate::tenants::Tenants;

/// Tenants one answer lists at most.
pub const MAX_LISTED_TENANTS: usize = 100;
/// Tallies read at once for one answer.
pub const TALLY_CONCURRENCY: usize = 8;

/// What `GET /v1/tenants` needs.
#[derive(Clone)]
pub struct OverviewApi {
    pub verifier: Arc<Verifier>,
    pub roster: Arc<dyn RosterStore>,
    pub tenants: Tenants,
}

impl OverviewApi {
    pub fn router(self) -> Router {
        Router::new()
            .route("/v1/tenants", get(list_tenants))
            .with_state(self)
    }
}

/// Whether `claims` may list tenants: role admin (of a tenant, or global).
pub fn may_list_tenants(claims: &Claims) -> Result<(), ApiError> {
    if claims.holds(Role::Admin) {
        return Ok(());
    }
    Err(ApiError::Forbidden(
        "listing tenants needs role admin".into(),
    ))
}

/// The tenants to list, by name, at most [`MAX_LISTED_TENANTS`]: `configured` ∪ `live`
/// (each already cut to its first `MAX_LISTED_TENANTS + 1` names, which is enough to know
/// the first `MAX_LISTED_TENANTS` of the union). Answers the names and whether some were
/// left out.
pub fn merge_listed(
    configured: impl IntoIterator<Item = TenantId>,
    live: impl IntoIterator<Item = TenantId>,
) -> (Vec<TenantId>, bool) {
    let all: BTreeSet<TenantId> = configured.into_iter().chain(live).collect();
    let truncated = all.len() > MAX_LISTED_TENANTS;
    (
        all.into_iter().take(MAX_LISTED_TENANTS).collect(),
        truncated,
    )
}

async fn list_tenants(
    State(api): State<OverviewApi>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let claims = authenticate(&api.verifier, &headers).await?;
    may_list_tenants(&claims)?;
    let (names, listed, truncated) = if claims.is_global_admin() {
        let live = api
            .roster
            .live_tenants(MAX_LISTED_TENANTS + 1)
            .await
            .map_err(unavailable)?;
        let listed = if live.is_some() { "all" } else { "configured" };
        let mut configured: Vec<TenantId> = api
            .tenants
            .listed()
            .unwrap_or_default()
            .into_iter()
            .collect();
        configured.sort();
        configured.truncate(MAX_LISTED_TENANTS + 1);
        let (names, truncated) = merge_listed(configured, live.unwrap_or_default());
        (names, listed, truncated)
    } else {
        (vec![claims.tenant.clone()], "all", false)
    };
    let roster = &api.roster;
    let tenants: Vec<Value> = stream::iter(names)
        .map(|tenant| async move {
            let tally = roster.tally(&tenant, TALLY_UP_TO).await?;
            Ok(summary_json(&tenant, tally))
        })
        .buffered(TALLY_CONCURRENCY)
        .try_collect()
        .await
        .map_err(unavailable)?;
    Ok(Json(json!({
        "caller": {
            "tenant": claims.tenant,
            "user": claims.user,
            "globalAdmin": claims.is_global_admin(),
        },
        "tenants": tenants,
        "listed": listed,
        "truncated": truncated,
    })))
}

#[cfg(test)]
mod tests {
    use switchboard_model::AdminScope;

    use super::*;
    use crate::testkit::claims;

    fn t(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    #[test]
    fn only_admins_list_tenants() {
        assert!(may_list_tenants(&claims("acme", &["admin"], AdminScope::Tenant)).is_ok());
        assert!(may_list_tenants(&claims("ops", &["admin"], AdminScope::Global)).is_ok());
        for roles in [&["publisher"][..], &["reader"], &[]] {
            assert!(matches!(
                may_list_tenants(&claims("acme", roles, AdminScope::Global)),
                Err(ApiError::Forbidden(_))
            ));
        }
    }

    #[test]
    fn the_listing_is_the_first_hundred_names_of_the_union() {
        let (names, truncated) = merge_listed([t("b"), t("a")], [t("a"), t("c")]);
        assert_eq!((names, truncated), (vec![t("a"), t("b"), t("c")], false));
        let many = |prefix: &str| -> Vec<TenantId> {
            (0..=MAX_LISTED_TENANTS)
                .map(|i| t(&format!("{prefix}{i:03}")))
                .collect()
        };
        let (names, truncated) = merge_listed(many("x"), many("a"));
        assert!(truncated);
        assert_eq!(names.len(), MAX_LISTED_TENANTS);
        assert_eq!(names.first(), Some(&t("a000")));
        assert_eq!(names.last(), Some(&t("a099")));
        let (names, truncated) = merge_listed(many("a").into_iter().take(100), []);
        assert_eq!((names.len(), truncated), (100, false));
    }
}
