//! The HTTP publish API (`POST /v1/messages`, presence): the core's routers served by
//! `lambda_http`, built once at init by `publish_api::build`.

use lambda_http::Error;
use switchboard_lambdas::publish_api;
use switchboard_lambdas::telemetry::{process_env, start};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let router = start("publish-api", publish_api::build(process_env)).await?;
    lambda_http::run(router.clone()).await
}
