//! The SQS-triggered publisher: dependencies built once at init by `publisher::build`;
//! each batch handled by `publisher::handle` before the invocation's deadline.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use switchboard_lambdas::{publisher, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let (publisher, metrics) = &publisher::build(|k| std::env::var(k).ok())
        .await
        .map_err(|e| telemetry::init_failed("publisher", e))?;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::sqs::SqsEvent>| async move {
            let deadline = publisher::deadline_instant(event.context.deadline);
            Ok::<_, Error>(publisher::handle(publisher, metrics, &event.payload, deadline).await)
        },
    ))
    .await
}
