//! The WebSocket API's REQUEST authorizer. Keys are loaded once at init; with no key
//! source or an unusable JWKS file the function fails to start (it never allows
//! everyone). The decision itself is `switchboard_lambdas::authorizer::authorize`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use switchboard_core::auth::{AuthConfig, Verifier};
use switchboard_lambdas::{authorizer, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = AuthConfig::from_lookup(|k| std::env::var(k).ok())
        .and_then(AuthConfig::require_key_source)
        .map_err(|e| {
            tracing::error!(error = %e, "authorizer configuration invalid");
            Error::from(e.to_string())
        })?;
    let verifier = Verifier::new(config).await.map_err(|e| {
        tracing::error!(error = %e, "authorizer keys unusable");
        Error::from(e.to_string())
    })?;
    tracing::info!(?verifier, "authorizer ready");

    let verifier = &verifier;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            authorizer::authorize_json(verifier, event.payload).await
        },
    ))
    .await
}
