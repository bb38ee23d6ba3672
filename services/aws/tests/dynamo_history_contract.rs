#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `DynamoHistoryStore` against DynamoDB Local (`DYNAMODB_ENDPOINT`): the history contract
//! suite, each check on a fresh table made by `create_history_table`.

mod local_dynamo;
use local_dynamo::client;

use aws_sdk_dynamodb::Client;
use switchboard_aws::{create_history_table, delete_table, DynamoHistoryStore};
use switchboard_core::history::contract;

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
