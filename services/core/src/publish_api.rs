//! The publish API (docs/design.md: Publish API) as an `axum::Router`: `POST /v1/messages`
//! and `GET /v1/messages/{id}` (the receipt).
//!
//! The same router runs in the `publish-api` Lambda (through `lambda_http`, enqueuing to
//! SQS) and in `switchboard serve` (enqueuing in-process). Checks, in order: a valid bearer
//! token (401), a body within limits (413), a valid envelope (400, naming the field; a
//! `push` object where Web Push is not configured is refused the same way), the
//! caller's right to the target (403), the frame's size, counting the widest cursor the
//! publisher may add (413), the target tenant's settings (docs/design.md: Tenants —
//! suspended or a target type not allowed 403, `maxPayloadBytes` 413, `publishesPerSecond`
//! 429 with `Retry-After`; a publish that passes them takes from the tenant's rate, a
//! repeated one included); then, with receipts on, the receipt is created `queued` with a
//! conditional write — if one of that id already exists in that tenant, the answer is 200 with it
//! and nothing is enqueued (503 if the receipt store is unavailable) — and the envelope, with its
//! id fixed, is enqueued (202 `{"id"}`; an enqueue that fails takes its fresh receipt back).
//!
//! `GET /v1/messages/{id}?tenant=T`: a valid token (401), role publisher or admin (403),
//! then the receipt of `id` in T — default: the caller's own tenant, or for a global admin
//! the broadcast receipt — if the caller may read T (a publisher or admin of it; only a
//! global admin reads broadcast receipts); anything else, another tenant's receipt
//! included, is 404, never 403, so ids of other tenants cannot be probed.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use switchboard_model::{Claims, Envelope, MessageId, Role, Target, TenantId};
use time::OffsetDateTime;

use crate::auth::Verifier;
use crate::http::read_body;
use crate::http::{authenticate, ApiError};
use crate::queue::{MessageQueue, QueueError};
use crate::receipts::{Created, Receipt, ReceiptKey, Receipts};
use crate::tenants::Tenants;
use crate::usage::{count_publish, Usage};

/// Largest request body read; anything larger is refused with 413 before parsing.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Why an envelope with `push` is refused where push is off.
pub const PUSH_NOT_CONFIGURED: &str =
    "Web Push is not configured (set VAPID_PUBLIC_KEY, VAPID_PRIVATE_KEY and VAPID_SUBJECT)";

/// What the publish API needs.
#[derive(Clone)]
pub struct PublishApi {
    pub verifier: Arc<Verifier>,
    pub queue: Arc<dyn MessageQueue>,
    /// Receipts and idempotent publish; `None` when `RECEIPT_TTL_SECS=0`.
    pub receipts: Option<Receipts>,
    /// The tenant settings publishes are held to (docs/design.md: Tenants).
    pub tenants: Tenants,
    /// Where publishes accepted and refused are counted per tenant (docs/design.md: Usage).
    pub usage: Option<Usage>,
    /// Whether Web Push is configured (VAPID keys set): without it an envelope with `push`
    /// is refused (400 naming `push`).
    pub push_enabled: bool,
}

impl PublishApi {
    /// The router serving `POST /v1/messages` and `GET /v1/messages/{id}`.
    pub fn router(self) -> Router {
        Router::new()
            .route("/v1/messages", post(publish))
            .route("/v1/messages/{id}", get(receipt))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self)
    }
}

/// Whether `claims` may publish to `target` (docs/design.md: Publish API; Identity per issuer):
/// `broadcast` needs a global admin; a tenant's targets need an admin of that tenant (a global
/// admin, or a tenant-scoped admin of its own tenant) or a publisher of it.
pub fn authorize(claims: &Claims, target: &Target) -> Result<(), ApiError> {
    if !claims.holds(Role::Admin) && !claims.holds(Role::Publisher) {
        return Err(ApiError::Forbidden(
            "the token needs role publisher or admin to publish".into(),
        ));
    }
    match target.tenant() {
        None if claims.is_global_admin() => Ok(()),
        None => Err(ApiError::Forbidden("only admins may broadcast".into())),
        Some(tenant) if claims.may_publish_to(tenant) => Ok(()),
        Some(tenant) => {
            let role = if claims.holds(Role::Admin) {
                "an admin"
            } else {
                "a publisher"
            };
            Err(ApiError::Forbidden(format!(
                "{role} of tenant {} may not publish to tenant {tenant}",
                claims.tenant
            )))
        }
    }
}

async fn publish(
    State(api): State<PublishApi>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let mut counted = None;
    let answer = accept(&api, &headers, body, &mut counted).await;
    if let (Some(usage), Some(tenant)) = (&api.usage, counted) {
        let answer = answer.as_ref().map(|(status, _)| *status);
        count_publish(usage, tenant.as_ref(), answer).await;
    }
    answer
}

/// The publish itself. `counted` is the tenant its answer counts for in usage (docs/design.md:
/// Usage), once the caller is known: the caller's own tenant, then the target's (`None`: a
/// broadcast) once the caller's right to it is checked — a refused publish to another
/// tenant never shows in that tenant's usage.
async fn accept(
    api: &PublishApi,
    headers: &HeaderMap,
    body: Body,
    counted: &mut Option<Option<TenantId>>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    // The token first: an unauthenticated caller never makes the server buffer a body.
    let claims = authenticate(&api.verifier, headers).await?;
    *counted = Some(Some(claims.tenant.clone()));
    let body = read_body(body, MAX_BODY_BYTES, ApiError::InvalidEnvelope).await?;
    let mut envelope =
        Envelope::parse(&body).map_err(|e| ApiError::InvalidEnvelope(e.to_string()))?;
    if envelope.push.is_some() && !api.push_enabled {
        return Err(ApiError::InvalidEnvelope(format!(
            "push: {PUSH_NOT_CONFIGURED}"
        )));
    }
    authorize(&claims, &envelope.target)?;
    *counted = Some(envelope.target.tenant().cloned());
    let id = match &envelope.id {
        Some(id) => id.clone(),
        None => MessageId::of_uuid(uuid::Uuid::new_v4().as_u128()),
    };
    // The publisher adds a cursor to every frame kept in history (all but `connections`
    // targets): count the widest one, so nothing accepted here is too large there.
    let cursor = (!matches!(envelope.target, Target::Connections { .. }))
        .then_some(crate::history::Cursor::WIDEST);
    envelope
        .checked_frame(id.as_str(), cursor)
        .map_err(|e| ApiError::TooLarge(e.to_string()))?;
    api.tenants
        .admit_publish(&claims, &envelope.target, json_len(&envelope.data))
        .inspect_err(|error| {
            tracing::info!(%error, publisher = %claims.user, tenant = %claims.tenant, "publish refused by tenant settings");
        })?;
    envelope.id = Some(id.clone());
    let id = String::from(id);
    let body = serde_json::to_string(&envelope)
        .map_err(|e| ApiError::Unavailable(format!("could not encode envelope: {e}")))?;
    let key = ReceiptKey::of(&envelope.target, &id);
    if let Some(receipts) = &api.receipts {
        let receipt = Receipt::queued(
            key.clone(),
            &envelope.target,
            OffsetDateTime::now_utc(),
            receipts.ttl,
        );
        match receipts.store.create(&receipt).await {
            Ok(Created::New) => {}
            Ok(Created::Existing(existing)) => {
                tracing::info!(id, publisher = %claims.user, tenant = %claims.tenant, status = existing.status().as_str(), "repeated publish: not enqueued again");
                return Ok((StatusCode::OK, Json(existing.to_json())));
            }
            Err(error) => {
                tracing::error!(%error, id, "receipt not created; publish refused");
                return Err(ApiError::Unavailable(
                    "the receipt store is unavailable; retry later".into(),
                ));
            }
        }
    }
    let enqueued = api.queue.enqueue(&id, &body).await;
    if let (Err(_), Some(receipts)) = (&enqueued, &api.receipts) {
        // Without this a retry of the failed publish would find the receipt and answer 200
        // for a message that was never enqueued.
        if let Err(error) = receipts.store.delete_if_queued(&key).await {
            tracing::error!(%error, id, "receipt of a message not enqueued was not taken back");
        }
    }
    enqueued.map_err(|error| match error {
        QueueError::Full {
            reason,
            retry_after_secs,
        } => {
            tracing::warn!(%reason, "publish refused: queue full");
            ApiError::Busy {
                message: format!("{reason}; retry later"),
                retry_after_secs,
            }
        }
        QueueError::Rejected(detail) => {
            tracing::info!(%detail, "the queue refused the message");
            ApiError::InvalidEnvelope(format!("the queue refused the message: {detail}"))
        }
        QueueError::Unavailable(detail) => {
            tracing::error!(%detail, "enqueue failed");
            ApiError::Unavailable("the message queue is unavailable; retry later".into())
        }
    })?;
    tracing::info!(id, target = envelope.target.kind().as_str(), publisher = %claims.user, tenant = %claims.tenant, "message enqueued");
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))))
}

/// The length of `value` serialized, without keeping the text.
fn json_len(value: &serde_json::Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a `Value` to a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// Which receipt `claims` asks for with `?tenant=` (`tenant`): `Some(key tenant)` when the
/// caller may read it, `None` when the answer must be 404 (another tenant's, or a
/// broadcast receipt for anyone but a global admin). Without a tenant: a global admin's
/// default is the broadcast receipt, everyone else's their own tenant.
pub fn receipt_scope(
    claims: &Claims,
    tenant: Option<TenantId>,
) -> Result<Option<Option<TenantId>>, ApiError> {
    if !claims.holds(Role::Admin) && !claims.holds(Role::Publisher) {
        return Err(ApiError::Forbidden(
            "the token needs role publisher or admin to read receipts".into(),
        ));
    }
    let tenant = match tenant {
        Some(tenant) => Some(tenant),
        None if claims.is_global_admin() => None,
        None => Some(claims.tenant.clone()),
    };
    Ok(match tenant {
        None if claims.is_global_admin() => Some(None),
        None => None,
        Some(tenant) if claims.may_publish_to(&tenant) => Some(Some(tenant)),
        Some(_) => None,
    })
}

#[derive(Deserialize)]
struct ReceiptParams {
    tenant: Option<String>,
}

async fn receipt(
    State(api): State<PublishApi>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ReceiptParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let claims = authenticate(&api.verifier, &headers).await?;
    let Path(id) = path.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let Query(params) = query.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let tenant = params
        .tenant
        .filter(|t| !t.is_empty())
        .map(TenantId::parse)
        .transpose()
        .map_err(|e| ApiError::InvalidRequest(format!("tenant: {e}")))?;
    let not_found = || ApiError::NotFound(format!("no receipt for message {id}"));
    let Some(tenant) = receipt_scope(&claims, tenant)? else {
        return Err(not_found());
    };
    let Some(receipts) = &api.receipts else {
        return Err(not_found());
    };
    // An id no envelope could carry has no receipt (and would not fit a storage key).
    if MessageId::parse(id.as_str()).is_err() {
        return Err(ApiError::NotFound("no receipt for that message id".into()));
    }
    let key = ReceiptKey::new(tenant, id.clone());
    match receipts.store.get(&key).await {
        Ok(Some(receipt)) => Ok(Json(receipt.to_json())),
        Ok(None) => Err(not_found()),
        Err(error) => {
            tracing::error!(%error, id, "receipt read failed");
            Err(ApiError::Unavailable(
                "the receipt store is unavailable; retry later".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use switchboard_model::{AdminScope, ConnectionId, TenantId, UserId};

    use crate::testkit::claims;

    use super::*;

    fn targets(tenant: &str) -> Vec<Target> {
        let tenant = TenantId::parse(tenant).unwrap();
        vec![
            Target::Users {
                tenant: tenant.clone(),
                users: vec![UserId::parse("bob").unwrap()],
            },
            Target::Tenant {
                tenant: tenant.clone(),
            },
            Target::Connections {
                tenant,
                connection_ids: vec![ConnectionId::parse("c-1").unwrap()],
            },
        ]
    }

    fn forbidden(result: Result<(), ApiError>) -> bool {
        matches!(result, Err(ApiError::Forbidden(_)))
    }

    #[test]
    fn global_admin_may_publish_anywhere() {
        let admin = claims("ops", &["admin"], AdminScope::Global);
        assert!(authorize(&admin, &Target::Broadcast).is_ok());
        for target in targets("acme").iter().chain(&targets("ops")) {
            assert!(authorize(&admin, target).is_ok(), "{target:?}");
        }
    }

    #[test]
    fn tenant_admin_may_publish_to_its_own_tenant_only_and_never_broadcast() {
        let admin = claims("acme", &["admin"], AdminScope::Tenant);
        for target in targets("acme") {
            assert!(authorize(&admin, &target).is_ok(), "{target:?}");
        }
        for target in targets("globex") {
            let result = authorize(&admin, &target);
            assert!(forbidden(authorize(&admin, &target)), "{target:?}");
            assert!(
                result
                    .unwrap_err()
                    .to_string()
                    .contains("an admin of tenant acme"),
                "{target:?}"
            );
        }
        assert!(forbidden(authorize(&admin, &Target::Broadcast)));
    }

    #[test]
    fn publisher_may_publish_to_its_own_tenant_only() {
        for scope in [AdminScope::Global, AdminScope::Tenant] {
            let publisher = claims("acme", &["publisher"], scope);
            for target in targets("acme") {
                assert!(authorize(&publisher, &target).is_ok());
            }
            for target in targets("globex") {
                assert!(forbidden(authorize(&publisher, &target)));
            }
            assert!(forbidden(authorize(&publisher, &Target::Broadcast)));
        }
    }

    #[test]
    fn receipts_are_read_in_the_callers_own_tenants_only() {
        let acme = || Some(TenantId::parse("acme").unwrap());
        let globex = || Some(TenantId::parse("globex").unwrap());
        let publisher = claims("acme", &["publisher"], AdminScope::Global);
        assert_eq!(receipt_scope(&publisher, None).unwrap(), Some(acme()));
        assert_eq!(receipt_scope(&publisher, acme()).unwrap(), Some(acme()));
        assert_eq!(receipt_scope(&publisher, globex()).unwrap(), None);
        let admin = claims("ops", &["admin"], AdminScope::Global);
        assert_eq!(receipt_scope(&admin, None).unwrap(), Some(None));
        assert_eq!(receipt_scope(&admin, globex()).unwrap(), Some(globex()));
        let tenant_admin = claims("acme", &["admin"], AdminScope::Tenant);
        assert_eq!(receipt_scope(&tenant_admin, None).unwrap(), Some(acme()));
        assert_eq!(receipt_scope(&tenant_admin, globex()).unwrap(), None);
        let reader = claims("acme", &["reader"], AdminScope::Global);
        assert!(matches!(
            receipt_scope(&reader, acme()),
            Err(ApiError::Forbidden(_))
        ));
    }

    #[test]
    fn no_publishing_role_is_forbidden() {
        let reader = claims("acme", &["reader"], AdminScope::Global);
        for target in targets("acme") {
            assert!(forbidden(authorize(&reader, &target)));
        }
        assert!(forbidden(authorize(&reader, &Target::Broadcast)));
    }

    #[test]
    fn a_fresh_message_id_is_the_uuid_as_uuid_writes_it() {
        let uuid = uuid::Uuid::new_v4();
        let id = switchboard_model::MessageId::of_uuid(uuid.as_u128());
        assert_eq!(id.as_str(), uuid.to_string());
    }
}
