//! The HTTP publish API (SPEC §6) in Lambda: the core's `axum::Router` for
//! `POST /v1/messages`, served by `lambda_http` (which turns API Gateway HTTP API events
//! into `http::Request`s), enqueuing to SQS.

use std::sync::Arc;

use switchboard_core::auth::Verifier;
use switchboard_core::config::{required, ConfigError};
use switchboard_core::publish_api::PublishApi;
use switchboard_core::queue::MessageQueue;

/// `QUEUE_URL`: the SQS queue the API enqueues envelopes to (required).
pub fn queue_url(lookup: impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let url: String = required(&lookup, "QUEUE_URL")?;
    switchboard_aws::config::validate_endpoint("QUEUE_URL", &url)
}

/// The router the function serves.
pub fn router(verifier: Arc<Verifier>, queue: Arc<dyn MessageQueue>) -> axum::Router {
    PublishApi { verifier, queue }.router()
}
