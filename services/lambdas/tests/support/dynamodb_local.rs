//! The DynamoDB Local endpoint the DynamoDB tests run against (`DYNAMODB_ENDPOINT`, set by
//! scripts/test.sh or `eval "$(bash scripts/dynamodb-local.sh start)"`).

/// `DYNAMODB_ENDPOINT`, which must be a local one: these tests create and delete tables.
pub fn endpoint() -> String {
    let endpoint = std::env::var("DYNAMODB_ENDPOINT").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1:") || endpoint.starts_with("http://localhost:"),
        "DYNAMODB_ENDPOINT={endpoint:?}: these tests need DynamoDB Local (scripts/test.sh)"
    );
    endpoint
}
