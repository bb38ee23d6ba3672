//! The HTTP publish API (`POST /v1/messages`, presence): the core's routers served by
//! `lambda_http`, built once at init by `switchboard_lambdas::publish_api::build`.

use lambda_http::Error;
use switchboard_lambdas::{publish_api, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let router = publish_api::build(|k| std::env::var(k).ok())
        .await
        .map_err(|e| telemetry::init_failed("publish-api", e))?;
    lambda_http::run(router).await
}
