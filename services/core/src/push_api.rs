//! Devices over HTTP (docs/design.md: Web Push) as an `axum::Router` merged beside the
//! publish API, for the user's own token (the one its WebSocket uses, same verifier):
//!
//! - `POST /v1/push/subscriptions` with a browser `PushSubscription` (`toJSON()`) →
//!   `201 {"id"}`: the device of the caller's tenant and user (registering the same
//!   endpoint again renews it, same id);
//! - `DELETE /v1/push/subscriptions/{id}` → 204 (404 when the caller has no such device);
//! - `GET /v1/push/vapid-public-key` → `{"publicKey"}`, without a token (what
//!   `PushManager.subscribe` needs as `applicationServerKey`).
//!
//! Checks, in order: push configured (404 `push is not configured`), a valid bearer token
//! (401), a body within [`MAX_SUBSCRIPTION_BYTES`] (413), a valid subscription (400, naming
//! the field); then the store (503 when it is unavailable). Errors are the publish API's
//! `{"error","message"}`. [`register`] and [`unregister`] are shared with the socket
//! actions `push_subscribe` and `push_unsubscribe`.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use switchboard_model::Claims;
use time::OffsetDateTime;

use crate::auth::Verifier;
use crate::devices::{Device, DeviceError, DeviceId, Subscription, SubscriptionError};
use crate::http::{authenticate, read_body, ApiError};
use crate::webpush::WebPush;

/// Largest subscription body read (a browser's is a few hundred bytes); larger is 413.
pub const MAX_SUBSCRIPTION_BYTES: usize = 8 * 1024;

/// The answer when push is off (no VAPID keys).
pub const NOT_CONFIGURED: &str = "push is not configured";

/// What the push endpoints need.
#[derive(Clone)]
pub struct PushApi {
    pub verifier: std::sync::Arc<Verifier>,
    /// `None`: push is off, every endpoint answers 404.
    pub push: Option<WebPush>,
}

impl PushApi {
    pub fn router(self) -> Router {
        Router::new()
            .route("/v1/push/subscriptions", post(subscribe))
            .route("/v1/push/subscriptions/{id}", delete(unsubscribe))
            .route("/v1/push/vapid-public-key", get(vapid_public_key))
            .layer(DefaultBodyLimit::max(MAX_SUBSCRIPTION_BYTES))
            .with_state(self)
    }

    fn push(&self) -> Result<&WebPush, ApiError> {
        self.push
            .as_ref()
            .ok_or_else(|| ApiError::NotFound(NOT_CONFIGURED.into()))
    }
}

/// Why a device could not be registered or removed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceRequestError {
    /// The subscription or id is not valid (the field at fault and what is wrong).
    #[error(transparent)]
    Invalid(#[from] SubscriptionError),
    #[error(transparent)]
    Store(#[from] DeviceError),
}

/// Registers `subscription` (a `PushSubscription`'s JSON) as a device of the caller's tenant
/// and user, expiring `PUSH_DEVICE_TTL_DAYS` from `now`; the user's oldest devices beyond
/// `PUSH_MAX_DEVICES_PER_USER` go. Answers the device's id.
pub async fn register(
    push: &WebPush,
    claims: &Claims,
    subscription: &Value,
    now: OffsetDateTime,
) -> Result<DeviceId, DeviceRequestError> {
    let subscription = Subscription::parse(subscription, push.config.endpoint_policy)?;
    let ttl = i64::try_from(push.config.device_ttl.as_secs()).unwrap_or(i64::MAX);
    let device = Device {
        tenant: claims.tenant.clone(),
        user: claims.user.clone(),
        id: DeviceId::of_endpoint(&subscription.endpoint),
        subscription,
        registered_at: now,
        expires_at: now.unix_timestamp().saturating_add(ttl),
    };
    let evicted = push
        .devices
        .put(&device, push.config.max_devices_per_user)
        .await?;
    tracing::info!(tenant = %device.tenant, user = %device.user, device = %device.id, evicted = evicted.len(), "device registered");
    Ok(device.id)
}

/// Removes the caller's device `id`: `Ok(false)` when the caller has none of that id.
pub async fn unregister(
    push: &WebPush,
    claims: &Claims,
    id: &str,
) -> Result<bool, DeviceRequestError> {
    let id = DeviceId::parse(id).ok_or_else(|| SubscriptionError {
        field: "id".into(),
        problem: "not a device id (1 to 64 letters, digits, '-' and '_')".into(),
    })?;
    let removed = push
        .devices
        .remove(&claims.tenant, &claims.user, &id)
        .await?;
    if removed {
        tracing::info!(tenant = %claims.tenant, user = %claims.user, device = %id, "device removed");
    }
    Ok(removed)
}

impl From<DeviceRequestError> for ApiError {
    fn from(error: DeviceRequestError) -> Self {
        match error {
            DeviceRequestError::Invalid(invalid) => ApiError::InvalidRequest(invalid.to_string()),
            DeviceRequestError::Store(error) => {
                tracing::error!(%error, "device store unavailable");
                ApiError::Unavailable("the device store is unavailable; retry later".into())
            }
        }
    }
}

async fn subscribe(
    State(api): State<PushApi>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let push = api.push()?;
    let claims = authenticate(&api.verifier, &headers).await?;
    let body = read_body(body, MAX_SUBSCRIPTION_BYTES, ApiError::InvalidRequest).await?;
    let subscription: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::InvalidRequest(format!("body: not JSON ({e})")))?;
    let id = register(push, &claims, &subscription, OffsetDateTime::now_utc()).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

async fn unsubscribe(
    State(api): State<PushApi>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let push = api.push()?;
    let claims = authenticate(&api.verifier, &headers).await?;
    let Path(id) = path.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    match unregister(push, &claims, &id).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        // An id that cannot be a device is no device of the caller's either.
        Ok(false) | Err(DeviceRequestError::Invalid(_)) => {
            Err(ApiError::NotFound(format!("no device {id} of this user")))
        }
        Err(error) => Err(error.into()),
    }
}

async fn vapid_public_key(State(api): State<PushApi>) -> Result<Json<Value>, ApiError> {
    let push = api.push()?;
    let Some(vapid) = &push.config.vapid else {
        return Err(ApiError::NotFound(NOT_CONFIGURED.into()));
    };
    Ok(Json(json!({ "publicKey": vapid.public_key() })))
}

#[cfg(test)]
#[path = "push_api_tests.rs"]
pub(crate) mod tests;
