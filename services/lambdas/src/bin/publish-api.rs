//! The HTTP publish API (`POST /v1/messages`): the core's router served by `lambda_http`.
//! Keys and the SQS client are built once at init (`QUEUE_URL` and a JWT key source are
//! required); the router is `switchboard_lambdas::publish_api::router`.

use std::sync::Arc;

use lambda_http::Error;
use switchboard_aws::{load_sdk_config, LocalDefaults, SqsQueue};
use switchboard_core::auth::{AuthConfig, Verifier};
use switchboard_lambdas::emf::Metrics;
use switchboard_lambdas::{publish_api, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let lookup = |k: &str| std::env::var(k).ok();
    let queue_url = publish_api::queue_url(lookup).map_err(|e| {
        tracing::error!(error = %e, "publish-api configuration invalid");
        Error::from(e.to_string())
    })?;
    let metrics = Metrics::from_lookup(lookup).map_err(|e| {
        tracing::error!(error = %e, "publish-api configuration invalid");
        Error::from(e.to_string())
    })?;
    let config = AuthConfig::from_lookup(lookup)
        .and_then(AuthConfig::require_key_source)
        .map_err(|e| {
            tracing::error!(error = %e, "publish-api configuration invalid");
            Error::from(e.to_string())
        })?;
    let verifier = Verifier::new(config).await.map_err(|e| {
        tracing::error!(error = %e, "publish-api keys unusable");
        Error::from(e.to_string())
    })?;
    let sdk = load_sdk_config(LocalDefaults::NONE).await;
    let queue = SqsQueue::from_sdk_config(&sdk, queue_url.clone());
    tracing::info!(%queue_url, metrics_namespace = metrics.namespace(), "publish-api ready");

    lambda_http::run(publish_api::router(
        Arc::new(verifier),
        Arc::new(queue),
        metrics,
    ))
    .await
}
