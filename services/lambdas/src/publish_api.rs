//! The HTTP publish API in Lambda: the core's `axum::Router`s for `POST /v1/messages`
//! (enqueuing to SQS), the presence endpoints (reading the roster), usage, and the Web Push
//! device endpoints (`/v1/push/…`, devices on the history table), served by `lambda_http`
//! (which turns API Gateway HTTP API events into `http::Request`s).
//!
//! Every request also becomes one EMF document ([`Metrics::publish_request`]): its status
//! class, its latency, and the target type read from the body (`invalid` when the body has
//! none that is known); the tenant the body names only if `METRICS_TENANTS` lists it.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use switchboard_aws::dynamo::DynamoStores;
use switchboard_aws::{load_sdk_config, DynamoConfig, LocalDefaults, SqsQueue};
use switchboard_core::auth::{AuthConfig, AuthConfigError, AuthError, Verifier};
use switchboard_core::config::{required, ConfigError};
use switchboard_core::http::ApiError;
use switchboard_core::overview::OverviewApi;
use switchboard_core::presence::PresenceApi;
use switchboard_core::publish_api::{PublishApi, MAX_BODY_BYTES};
use switchboard_core::publisher::MessageKind;
use switchboard_core::push_api::PushApi;
use switchboard_core::receipts::{ReceiptConfig, Receipts};
use switchboard_core::roster::RosterStore;
use switchboard_core::tenants::Tenants;
use switchboard_core::usage::{Usage, UsageApi, UsageConfig};
use switchboard_core::webpush::SenderError;

use crate::emf::{target_type, Metrics};

/// `QUEUE_URL`: the SQS queue the API enqueues envelopes to (required).
pub fn queue_url(lookup: impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let url: String = required(&lookup, "QUEUE_URL")?;
    switchboard_aws::config::validate_endpoint("QUEUE_URL", &url)
}

/// Why the function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Auth(#[from] AuthConfigError),
    #[error("keys unusable: {0}")]
    Keys(#[from] AuthError),
    #[error("web push: {0}")]
    Push(#[from] SenderError),
}

/// Builds the function's router from the environment: a JWT key source, `QUEUE_URL`,
/// the roster table (`ROSTER_TABLE`, `DYNAMODB_ENDPOINT`), `METRICS_NAMESPACE` and
/// `METRICS_TENANTS`, and the
/// receipts (`RECEIPT_TTL_SECS`, in `HISTORY_TABLE`), the tenant settings (`TENANTS_FILE`),
/// Web Push (`VAPID_*`, `PUSH_*`; devices in `HISTORY_TABLE`, [`crate::push`]).
pub async fn build(lookup: impl Fn(&str) -> Option<String>) -> Result<axum::Router, StartupError> {
    let queue_url = queue_url(&lookup)?;
    let metrics = Metrics::from_lookup(&lookup)?;
    let dynamo = DynamoConfig::from_lookup(&lookup)?;
    let auth = AuthConfig::from_lookup(&lookup).and_then(AuthConfig::require_key_source)?;
    let verifier = Verifier::new(auth).await?;
    let sdk = load_sdk_config(LocalDefaults::NONE).await;
    let queue = SqsQueue::from_sdk_config(&sdk, queue_url.clone());
    let stores = DynamoStores::connect(&dynamo).await;
    let receipt_config = ReceiptConfig::from_lookup(&lookup)?;
    let receipts = Receipts::new(Arc::new(stores.receipts()), &receipt_config);
    let tenants = Tenants::from_lookup(&lookup)?;
    // Usage per tenant per minute (docs/design.md: Usage).
    let usage_config = UsageConfig::from_lookup(&lookup)?;
    let usage = Usage::new(
        Arc::new(stores.usage(usage_config.retention)),
        &usage_config,
    );
    // Web Push (docs/design.md: Web Push): devices registered with the user's own token.
    let push = crate::push::web_push(&lookup, || Arc::new(stores.devices()))?;
    tracing::info!(%queue_url, table = %dynamo.roster_table, receipt_table = %dynamo.history_table, receipt_ttl_secs = receipt_config.ttl.as_secs(), metrics_namespace = metrics.namespace(), "publish-api ready");
    let verifier = Arc::new(verifier);
    let usage_api = UsageApi {
        verifier: verifier.clone(),
        usage: usage.clone(),
    };
    let push_api = PushApi {
        verifier: verifier.clone(),
        push: push.clone(),
    };
    let api = PublishApi {
        verifier,
        queue: Arc::new(queue),
        receipts,
        tenants,
        usage: Some(usage),
        push_enabled: push.is_some(),
    };
    Ok(router(api, Arc::new(stores.roster()), metrics)
        .merge(usage_api.router())
        .merge(push_api.router()))
}

/// The router the function serves: the publish API, with one EMF document per request,
/// the presence endpoints and the tenants overview (`GET /v1/tenants`).
pub fn router(api: PublishApi, roster: Arc<dyn RosterStore>, metrics: Metrics) -> axum::Router {
    let overview = OverviewApi {
        verifier: api.verifier.clone(),
        roster: roster.clone(),
        tenants: api.tenants.clone(),
    };
    let presence = PresenceApi {
        verifier: api.verifier.clone(),
        roster,
    };
    api.router()
        .layer(axum::middleware::from_fn_with_state(metrics, record))
        .merge(presence.router())
        .merge(overview.router())
}

/// Just the target type and tenant of an envelope; everything else (checking them
/// included) is the core's business, so a body the core refuses for another reason still
/// names its target type.
#[derive(Deserialize)]
struct TargetOnly {
    target: TypeOnly,
}

#[derive(Deserialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    kind: String,
    /// Any JSON: a tenant that is not text is no tenant here, and no reason to lose the
    /// target type.
    #[serde(default)]
    tenant: serde_json::Value,
}

/// Times the request and emits its document. The body is already in memory in Lambda
/// (`lambda_http` hands over the whole event), so reading it here to find the target type
/// costs a copy; a body not known to be within the core's limit is passed on unread, for
/// the core to check in its own order (401 before 413).
async fn record(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    // Receipt reads (`GET /v1/messages/{id}`) are not publishes.
    if request.method() != axum::http::Method::POST {
        return next.run(request).await;
    }
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let within_limit = body
        .size_hint()
        .upper()
        .is_some_and(|n| n <= MAX_BODY_BYTES as u64);
    let (target, tenant, body) = if within_limit {
        match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
            Ok(bytes) => {
                let (target, tenant) = match serde_json::from_slice::<TargetOnly>(&bytes) {
                    Ok(TargetOnly { target }) => (target_type(&target.kind), target.tenant),
                    Err(_) => (MessageKind::INVALID, serde_json::Value::Null),
                };
                (target, tenant, Body::from(bytes))
            }
            Err(_) => {
                // The size hint promised less: the body is gone, answer as the core would.
                let response =
                    ApiError::TooLarge(format!("body over {MAX_BODY_BYTES} bytes")).into_response();
                let status = response.status().as_u16();
                metrics.publish_request(MessageKind::INVALID, None, status, started.elapsed());
                return response;
            }
        }
    } else {
        (MessageKind::INVALID, serde_json::Value::Null, body)
    };
    let response = next.run(Request::from_parts(parts, body)).await;
    let status = response.status().as_u16();
    metrics.publish_request(target, tenant.as_str(), status, started.elapsed());
    response
}
