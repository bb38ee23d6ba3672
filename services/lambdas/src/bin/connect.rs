//! The WebSocket `$connect` route: its roster client built once at init by `connect::build`;
//! each event handled by `connect::handle`.

use lambda_runtime::Error;
use switchboard_lambdas::telemetry::{process_env, start};
use switchboard_lambdas::{connect, websocket};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = start("connect", connect::build(process_env)).await?;
    websocket::serve(|event| async move { connect::handle(deps, &event).await }).await
}
