//! The WebSocket `$disconnect` route: deletes the roster record. The roster client is
//! built once at init; the handling is `switchboard_lambdas::disconnect::handle`.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use switchboard_aws::{DynamoConfig, DynamoRosterStore};
use switchboard_lambdas::disconnect::{self, DisconnectDeps};
use switchboard_lambdas::telemetry;
use switchboard_lambdas::websocket::WebsocketEvent;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let dynamo = DynamoConfig::from_lookup(|k| std::env::var(k).ok()).map_err(|e| {
        tracing::error!(error = %e, "disconnect configuration invalid");
        Error::from(e.to_string())
    })?;
    let deps = DisconnectDeps {
        roster: Arc::new(DynamoRosterStore::from_config(&dynamo).await),
    };
    tracing::info!(table = %dynamo.table, "disconnect ready");

    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<WebsocketEvent>| async move {
            disconnect::handle(deps, &event.payload).await
        },
    ))
    .await
}
