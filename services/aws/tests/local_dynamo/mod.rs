//! The DynamoDB Local client every contract test here uses (`DYNAMODB_ENDPOINT`, a local
//! endpoint only; `scripts/test.sh` starts one). Without it the tests fail; they never skip.

use aws_sdk_dynamodb::Client;
use switchboard_aws::config::{dynamodb_client, DynamoConfig, LocalDefaults};

pub fn endpoint() -> String {
    let endpoint = std::env::var("DYNAMODB_ENDPOINT").unwrap_or_default();
    assert!(
        !endpoint.trim().is_empty(),
        "DYNAMODB_ENDPOINT is not set: these tests need DynamoDB Local. Run scripts/test.sh \
         (or `eval \"$(bash scripts/dynamodb-local.sh start)\"` first)."
    );
    assert!(
        endpoint.starts_with("http://127.0.0.1:") || endpoint.starts_with("http://localhost:"),
        "DYNAMODB_ENDPOINT={endpoint} is not a local DynamoDB; tests only talk to 127.0.0.1"
    );
    endpoint
}

/// A client of DynamoDB Local with dummy region and credentials.
pub async fn client() -> Client {
    dynamodb_client(&DynamoConfig {
        table: "unused".into(),
        scan_segments: 1,
        endpoint: Some(endpoint()),
        local: LocalDefaults {
            region: true,
            credentials: true,
        },
    })
    .await
}
