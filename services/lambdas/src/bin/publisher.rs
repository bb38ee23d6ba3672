//! The SQS-triggered publisher: dependencies built once at init by
//! `switchboard_lambdas::publisher::build`, each batch handled by
//! `switchboard_lambdas::publisher::handle` before the invocation's deadline.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use switchboard_lambdas::{publisher, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let (publisher, metrics) = publisher::build(|k| std::env::var(k).ok())
        .await
        .map_err(|e| telemetry::init_failed("publisher", e))?;
    let (publisher, metrics) = (&publisher, &metrics);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::sqs::SqsEvent>| async move {
            let deadline = publisher::deadline_instant(event.context.deadline);
            let response = publisher::handle(publisher, metrics, &event.payload, deadline).await;
            Ok::<_, Error>(response)
        },
    ))
    .await
}
