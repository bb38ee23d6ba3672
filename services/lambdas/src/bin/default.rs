//! The WebSocket `$default` route: answers the client actions (`ping`, `whoami`). It
//! needs no configuration or clients; the handling is `switchboard_lambdas::default::handle`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use switchboard_lambdas::websocket::WebsocketEvent;
use switchboard_lambdas::{default, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    tracing::info!("default ready");
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<WebsocketEvent>| async move { default::handle(&event.payload) },
    ))
    .await
}
