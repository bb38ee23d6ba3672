//! The WebSocket `$default` route (client actions: `ping`, `whoami`, `resume`, `refresh`):
//! dependencies built once at init by `default::build`; each event handled by
//! `default::handle_until` before the invocation's deadline (a `resume` posts within it).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use switchboard_lambdas::telemetry::{process_env, start};
use switchboard_lambdas::websocket::WebsocketEvent;
use switchboard_lambdas::{default, publisher};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = start("default", default::build(process_env)).await?;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<WebsocketEvent>| async move {
            let deadline = publisher::deadline_instant(event.context.deadline);
            default::handle_until(deps, &event.payload, deadline).await
        },
    ))
    .await
}
