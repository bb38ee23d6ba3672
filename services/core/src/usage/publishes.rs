//! Counting publishes per tenant: a layer around the publish API's router that watches
//! what `POST /v1/messages` answered, without changing it.
//!
//! Counted only after the token was accepted (a 401 counts nothing): `202` is
//! `publishesAccepted`; `403`, `413`, `429` (a tenant limit) and `503` with `Retry-After`
//! (the queue is full) are `publishesRefused`; anything else counts as neither — a `400`
//! (no valid envelope), a `503` without `Retry-After` (a store of ours is down), and a
//! repeated publish answered `200` with its receipt (it was counted when first accepted).
//! The tenant counted is the target's when the caller may publish to it (`*` for a
//! broadcast by a global admin), else the caller's own: a refused publish to another
//! tenant never shows in that tenant's usage.

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use http_body_util::BodyExt;
use switchboard_model::{Claims, TenantId};
use time::OffsetDateTime;

use super::{Counts, Usage};
use crate::auth::Verifier;
use crate::http::authenticate;
use crate::publish_api::MAX_BODY_BYTES;
use crate::queue::address;

#[derive(Clone)]
struct Counter {
    verifier: Arc<Verifier>,
    usage: Usage,
}

/// `router` (the publish API's) with every answered publish counted in `usage`.
pub fn count_publishes(router: Router, verifier: Arc<Verifier>, usage: Usage) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        Counter { verifier, usage },
        count,
    ))
}

/// What an answer counts as: `Some(true)` accepted, `Some(false)` refused, `None` neither.
fn verdict(status: StatusCode, headers: &HeaderMap) -> Option<bool> {
    match status {
        StatusCode::ACCEPTED => Some(true),
        StatusCode::FORBIDDEN | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => {
            Some(false)
        }
        StatusCode::SERVICE_UNAVAILABLE if headers.contains_key(header::RETRY_AFTER) => Some(false),
        _ => None,
    }
}

/// The tenant a publish of `body` by `claims` counts for (`None`: broadcasts, `*`).
fn counted_tenant(claims: &Claims, body: &[u8]) -> Option<TenantId> {
    let target = std::str::from_utf8(body).ok().and_then(address);
    match target.map(|a| a.tenant) {
        Some(Some(tenant)) if claims.may_publish_to(&tenant) => Some(tenant),
        Some(None) if claims.is_global_admin() => None,
        _ => Some(claims.tenant.clone()),
    }
}

/// The chunks of a request body as the handler reads them (shared `Bytes`, no copy), up to
/// the publish API's limit.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<(usize, Vec<Bytes>)>>);

impl Seen {
    fn keep(&self, chunk: &Bytes) {
        if let Ok(mut seen) = self.0.lock() {
            if seen.0 + chunk.len() <= MAX_BODY_BYTES {
                seen.0 += chunk.len();
                seen.1.push(chunk.clone());
            }
        }
    }

    fn body(&self) -> Vec<u8> {
        self.0
            .lock()
            .map(|seen| seen.1.concat())
            .unwrap_or_default()
    }
}

async fn count(State(counter): State<Counter>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || request.uri().path() != "/v1/messages" {
        return next.run(request).await;
    }
    let Ok(claims) = authenticate(&counter.verifier, request.headers()).await else {
        return next.run(request).await;
    };
    let seen = Seen::default();
    let (parts, body) = request.into_parts();
    let watched = {
        let seen = seen.clone();
        body.map_frame(move |frame| {
            if let Some(chunk) = frame.data_ref() {
                seen.keep(chunk);
            }
            frame
        })
    };
    let response = next
        .run(Request::from_parts(parts, Body::new(watched)))
        .await;
    if let Some(accepted) = verdict(response.status(), response.headers()) {
        let tenant = counted_tenant(&claims, &seen.body());
        let counts = Counts {
            publishes_accepted: u64::from(accepted),
            publishes_refused: u64::from(!accepted),
            ..Counts::default()
        };
        counter
            .usage
            .record(tenant.as_ref(), OffsetDateTime::now_utc(), &counts)
            .await;
    }
    response
}

#[cfg(test)]
mod tests {
    use switchboard_model::{AdminScope, UserId};

    use super::*;

    fn claims(tenant: &str, roles: &[&str], scope: AdminScope) -> Claims {
        Claims {
            roles: roles.iter().map(|r| r.to_string()).collect(),
            admin_scope: scope,
            ..Claims::new(
                TenantId::parse(tenant).unwrap(),
                UserId::parse("u").unwrap(),
            )
        }
    }

    fn name(tenant: Option<TenantId>) -> String {
        tenant.map_or("*".into(), |t| t.to_string())
    }

    #[test]
    fn a_publish_counts_for_its_target_only_when_the_caller_may_publish_there() {
        let to_globex = br#"{"target":{"type":"tenant","tenant":"globex"},"data":1}"#;
        let broadcast = br#"{"target":{"type":"broadcast"},"data":1}"#;
        let publisher = claims("acme", &["publisher"], AdminScope::Global);
        assert_eq!(name(counted_tenant(&publisher, to_globex)), "acme");
        assert_eq!(name(counted_tenant(&publisher, broadcast)), "acme");
        assert_eq!(name(counted_tenant(&publisher, b"{not json")), "acme");
        let global = claims("ops", &["admin"], AdminScope::Global);
        assert_eq!(name(counted_tenant(&global, to_globex)), "globex");
        assert_eq!(name(counted_tenant(&global, broadcast)), "*");
    }

    #[test]
    fn answers_count_as_accepted_refused_or_neither() {
        let none = HeaderMap::new();
        let mut retry = HeaderMap::new();
        retry.insert(header::RETRY_AFTER, 1.into());
        assert_eq!(verdict(StatusCode::ACCEPTED, &none), Some(true));
        for refused in [403, 413, 429] {
            let status = StatusCode::from_u16(refused).unwrap();
            assert_eq!(verdict(status, &none), Some(false), "{refused}");
        }
        assert_eq!(
            verdict(StatusCode::SERVICE_UNAVAILABLE, &retry),
            Some(false)
        );
        for neither in [200, 400, 401, 500] {
            let status = StatusCode::from_u16(neither).unwrap();
            assert_eq!(verdict(status, &none), None, "{neither}");
        }
        assert_eq!(verdict(StatusCode::SERVICE_UNAVAILABLE, &none), None);
    }
}
