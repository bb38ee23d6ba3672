//! The WebSocket API's REQUEST authorizer: keys loaded once at init by
//! `switchboard_lambdas::authorizer::build` (no key source: the function does not start);
//! each decision is `switchboard_lambdas::authorizer::authorize_json`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use switchboard_lambdas::{authorizer, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let verifier = &authorizer::build(|k| std::env::var(k).ok())
        .await
        .map_err(|e| telemetry::init_failed("authorizer", e))?;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            authorizer::authorize_json(verifier, event.payload).await
        },
    ))
    .await
}
