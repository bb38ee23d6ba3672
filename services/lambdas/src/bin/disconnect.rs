//! The WebSocket `$disconnect` route: the roster client built once at init by
//! `switchboard_lambdas::disconnect::build`; each event handled by `disconnect::handle`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use switchboard_lambdas::websocket::WebsocketEvent;
use switchboard_lambdas::{disconnect, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let deps = &disconnect::build(|k| std::env::var(k).ok())
        .await
        .map_err(|e| telemetry::init_failed("disconnect", e))?;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<WebsocketEvent>| async move {
            disconnect::handle(deps, &event.payload).await
        },
    ))
    .await
}
