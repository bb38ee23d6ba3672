//! The WebSocket `$default` route: the client actions (`ping`, `whoami`, `resume`,
//! `refresh`).
//! Dependencies built once at init by `switchboard_lambdas::default::build`; each event
//! handled by `switchboard_lambdas::default::handle`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use switchboard_lambdas::websocket::WebsocketEvent;
use switchboard_lambdas::{default, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let deps = default::build(|k| std::env::var(k).ok())
        .await
        .map_err(|e| telemetry::init_failed("default", e))?;
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<WebsocketEvent>| async move {
            default::handle(deps, &event.payload).await
        },
    ))
    .await
}
