//! The WebSocket `$connect` route: writes the roster record from the authorizer's
//! identity. The roster client is built once at init; the handling is
//! `switchboard_lambdas::connect::handle`.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use switchboard_aws::{DynamoConfig, DynamoRosterStore};
use switchboard_core::config::ConnectConfig;
use switchboard_lambdas::connect::{self, ConnectDeps};
use switchboard_lambdas::telemetry;
use switchboard_lambdas::websocket::WebsocketEvent;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let lookup = |k: &str| std::env::var(k).ok();
    let (dynamo, config) = DynamoConfig::from_lookup(lookup)
        .and_then(|dynamo| Ok((dynamo, ConnectConfig::from_lookup(lookup)?)))
        .map_err(|e| {
            tracing::error!(error = %e, "connect configuration invalid");
            Error::from(e.to_string())
        })?;
    let deps = ConnectDeps {
        roster: Arc::new(DynamoRosterStore::from_config(&dynamo).await),
        config,
    };
    tracing::info!(table = %dynamo.table, "connect ready");

    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<WebsocketEvent>| async move {
            connect::handle(deps, &event.payload).await
        },
    ))
    .await
}
