//! The events function: dependencies built once at init by `events::build`; each batch
//! (the roster table's stream, or the queue of offline checks) handled by
//! `EventsFunction::handle` before the invocation's deadline.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use switchboard_lambdas::events;
use switchboard_lambdas::publisher::deadline_instant;
use switchboard_lambdas::telemetry::{process_env, start};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (function, metrics) = start("events", events::build(process_env)).await?;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<serde_json::Value>| async move {
            let deadline = deadline_instant(event.context.deadline);
            Ok::<_, Error>(function.handle(metrics, &event.payload, deadline).await?)
        },
    ))
    .await
}
