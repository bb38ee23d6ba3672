//! The WebSocket `$disconnect` route: its roster client built once at init by
//! `disconnect::build`; each event handled by `disconnect::handle`.

use lambda_runtime::Error;
use switchboard_lambdas::telemetry::{process_env, start};
use switchboard_lambdas::{disconnect, websocket};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = start("disconnect", disconnect::build(process_env)).await?;
    websocket::serve(|event| async move { disconnect::handle(deps, &event).await }).await
}
