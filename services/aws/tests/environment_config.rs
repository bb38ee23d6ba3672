//! The SDK configuration the Lambda functions run on (`environment_sdk_config`: region and
//! credentials from the environment, HTTPS on rustls with ring, the store timeouts), used
//! for real against DynamoDB Local. The workspace's tests otherwise load the default chain
//! (the `default-chain` feature, on for `serve` and the CLI), so without this test the
//! functions' configuration would first be exercised on AWS.

use aws_sdk_dynamodb::Client;
use switchboard_aws::config::{environment_sdk_config, with_store_timeouts, LocalDefaults};
use switchboard_aws::create_history_table;

#[tokio::test]
async fn a_client_on_the_functions_configuration_creates_and_lists_a_table() {
    let sdk = with_store_timeouts(&environment_sdk_config(
        LocalDefaults {
            region: true,
            credentials: true,
        },
        |_| None,
    ));
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .endpoint_url(endpoint())
        .build();
    let client = Client::from_conf(config);
    let table = format!("env-config-test-{}", uuid::Uuid::new_v4().simple());
    create_history_table(&client, &table).await.unwrap();
    let tables = client.list_tables().send().await.unwrap();
    assert!(tables.table_names().contains(&table), "{tables:?}");
    client
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
}

/// DynamoDB Local (`DYNAMODB_ENDPOINT`; `scripts/test.sh` starts one): without it the test
/// fails, it never skips; only 127.0.0.1.
fn endpoint() -> String {
    let endpoint = std::env::var("DYNAMODB_ENDPOINT").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1:") || endpoint.starts_with("http://localhost:"),
        "DYNAMODB_ENDPOINT={endpoint:?}: this test needs DynamoDB Local on 127.0.0.1 \
         (`eval \"$(bash scripts/dynamodb-local.sh start)\"`)"
    );
    endpoint
}
