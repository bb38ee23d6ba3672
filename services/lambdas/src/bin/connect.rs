//! The WebSocket `$connect` route: the roster client built once at init by
//! `switchboard_lambdas::connect::build`; each event handled by `connect::handle`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use switchboard_lambdas::websocket::WebsocketEvent;
use switchboard_lambdas::{connect, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let deps = &connect::build(|k| std::env::var(k).ok())
        .await
        .map_err(|e| telemetry::init_failed("connect", e))?;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<WebsocketEvent>| async move {
            connect::handle(deps, &event.payload).await
        },
    ))
    .await
}
