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

/// A table name no other test or test run uses (DynamoDB Local outlives a run, and a failed
/// test leaves its tables behind): `prefix`, the process id, the time, and a count.
#[allow(dead_code)]
pub fn table_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{nanos:x}-{n}", std::process::id())
}
