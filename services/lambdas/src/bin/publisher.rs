//! The SQS-triggered publisher: dependencies built once at init by `publisher::build`;
//! each batch handled by `publisher::handle` before the invocation's deadline.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use switchboard_lambdas::publisher;
use switchboard_lambdas::telemetry::{process_env, start};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (publisher, metrics) = start("publisher", publisher::build(process_env)).await?;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<aws_lambda_events::sqs::SqsEvent>| async move {
            let deadline = publisher::deadline_instant(event.context.deadline);
            Ok::<_, Error>(publisher::handle(publisher, metrics, &event.payload, deadline).await)
        },
    ))
    .await
}
