//! What the contract tests here share: the DynamoDB Local client (`DYNAMODB_ENDPOINT`, a
//! local endpoint only; `scripts/test.sh` starts one; without it the tests fail, they never
//! skip), a fresh table of the history layout per check, one test per check of a contract
//! suite ([`contract_tests!`]) and a receipt to put beside other items of that table.

use aws_sdk_dynamodb::Client;
use switchboard_aws::config::{dynamodb_client, DynamoConfig, LocalDefaults};
use switchboard_aws::{create_history_table, DynamoReceiptStore};
use switchboard_core::receipts::{Created, Receipt, ReceiptKey, ReceiptStore};
use switchboard_model::{Target, TenantId};
use time::OffsetDateTime;

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
        roster_table: "unused".into(),
        history_table: "unused".into(),
        scan_segments: 1,
        endpoint: Some(endpoint()),
        local: LocalDefaults {
            region: true,
            credentials: true,
        },
    })
    .await
}

/// A client and a new table made by `create_history_table` (the layout history, receipts,
/// the work log and usage share), named `{kind}-test-<random>`.
pub async fn history_table(kind: &str) -> (Client, String) {
    let client = client().await;
    let table = format!("{kind}-test-{}", uuid::Uuid::new_v4().simple());
    create_history_table(&client, &table).await.unwrap();
    (client, table)
}

/// The queued receipt of message `id` to `tenant`, created (new) in `receipts`.
pub async fn create_receipt(
    receipts: &DynamoReceiptStore,
    tenant: &TenantId,
    id: &str,
    now: OffsetDateTime,
    ttl: std::time::Duration,
) -> (ReceiptKey, Receipt) {
    let key = ReceiptKey::new(Some(tenant.clone()), id);
    let target = Target::Tenant {
        tenant: tenant.clone(),
    };
    let receipt = Receipt::queued(key.clone(), &target, now, ttl);
    assert_eq!(receipts.create(&receipt).await.unwrap(), Created::New);
    (key, receipt)
}

/// One test per named check of the `contract` module in scope where it is used: `$fresh()`
/// makes `(client, store)` on a new table, the check runs on `&store`, then the table is
/// deleted.
macro_rules! contract_tests {
    ($fresh:ident: $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (client, store) = $fresh().await;
                contract::$check(&store).await;
                switchboard_aws::delete_table(&client, store.table_name())
                    .await
                    .unwrap();
            }
        )+
    };
}
