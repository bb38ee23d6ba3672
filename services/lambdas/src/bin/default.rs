//! The WebSocket `$default` route (client actions: `ping`, `whoami`, `resume`, `refresh`):
//! dependencies built once at init by `default::build`; each event handled by `default::handle`.

use lambda_runtime::Error;
use switchboard_lambdas::telemetry::{process_env, start};
use switchboard_lambdas::{default, websocket};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = start("default", default::build(process_env)).await?;
    websocket::serve(|event| async move { default::handle(deps, &event).await }).await
}
