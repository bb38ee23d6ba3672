#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `DynamoHistoryStore` against DynamoDB Local (`DYNAMODB_ENDPOINT`): the history contract
//! suite, each check on a fresh table made by `create_history_table`.

use aws_sdk_dynamodb::Client;
use switchboard_aws::config::{dynamodb_client, DynamoConfig, LocalDefaults};
use switchboard_aws::{create_history_table, delete_table, DynamoHistoryStore};
use switchboard_core::history::contract;

fn endpoint() -> String {
    let endpoint = std::env::var("DYNAMODB_ENDPOINT").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1:") || endpoint.starts_with("http://localhost:"),
        "DYNAMODB_ENDPOINT={endpoint:?} is not a local DynamoDB: run scripts/test.sh, or \
         `eval \"$(bash scripts/dynamodb-local.sh start)\"` first"
    );
    endpoint
}

async fn client() -> Client {
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

async fn fresh_store() -> (Client, DynamoHistoryStore) {
    let client = client().await;
    let table = format!("history-test-{}", uuid::Uuid::new_v4().simple());
    create_history_table(&client, &table).await.unwrap();
    (client.clone(), DynamoHistoryStore::new(client, table))
}

macro_rules! contract_test {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (client, store) = fresh_store().await;
            contract::$name(&store).await;
            delete_table(&client, store.table_name()).await.unwrap();
        }
    };
}

contract_test!(reads_after_a_cursor_oldest_first);
contract_test!(a_read_over_its_limit_is_incomplete);
contract_test!(expired_entries_are_not_returned);
