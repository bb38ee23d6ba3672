//! The WebSocket API's REQUEST authorizer: keys and tenant settings loaded once at init by
//! `authorizer::build` (no key source: the function does not start); each decision is
//! `authorizer::authorize_json`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use switchboard_lambdas::authorizer;
use switchboard_lambdas::telemetry::{process_env, start};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = start("authorizer", authorizer::build(process_env)).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        authorizer::authorize_json(deps, event.payload)
    }))
    .await
}
