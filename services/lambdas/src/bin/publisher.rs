//! The SQS-triggered publisher. Roster, management API and DLQ clients are built once at
//! init (`CALLBACK_URL` and `DLQ_URL` are required); the handling is
//! `switchboard_lambdas::publisher::handle`.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use switchboard_aws::{
    load_sdk_config, ApiGatewayPusher, DynamoConfig, DynamoRosterStore, LocalDefaults, SqsQueue,
};
use switchboard_core::publisher::Publisher;
use switchboard_lambdas::emf::Metrics;
use switchboard_lambdas::publisher::{self, PublisherSettings};
use switchboard_lambdas::telemetry;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let lookup = |k: &str| std::env::var(k).ok();
    let (dynamo, settings, metrics) = DynamoConfig::from_lookup(lookup)
        .and_then(|dynamo| {
            let settings = PublisherSettings::from_lookup(lookup)?;
            Ok((dynamo, settings, Metrics::from_lookup(lookup)?))
        })
        .map_err(|e| {
            tracing::error!(error = %e, "publisher configuration invalid");
            Error::from(e.to_string())
        })?;
    let sdk = load_sdk_config(LocalDefaults::NONE).await;
    let publisher = Publisher::new(
        Arc::new(DynamoRosterStore::from_config(&dynamo).await),
        Arc::new(ApiGatewayPusher::new(&sdk, &settings.callback_url)),
        Arc::new(SqsQueue::from_sdk_config(&sdk, settings.dlq_url.clone())),
        settings.publisher.clone(),
    );
    tracing::info!(table = %dynamo.table, callback_url = %settings.callback_url, metrics_namespace = metrics.namespace(), "publisher ready");

    let (publisher, metrics) = (&publisher, &metrics);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(publisher::handle(publisher, metrics, &event.payload).await)
    }))
    .await
}
