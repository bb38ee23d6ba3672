#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `DynamoHistoryStore` against DynamoDB Local (`DYNAMODB_ENDPOINT`): the history contract
//! suite, each check on a fresh table made by `create_history_table`.

#[macro_use]
#[allow(dead_code)] // shared by the contract test files; this one uses part of it
mod local_dynamo;

use aws_sdk_dynamodb::Client;
use switchboard_aws::DynamoHistoryStore;
use switchboard_core::history::contract;

async fn fresh_store() -> (Client, DynamoHistoryStore) {
    let (client, table) = local_dynamo::history_table("history").await;
    (client.clone(), DynamoHistoryStore::new(client, table))
}

contract_tests!(fresh_store:
    reads_after_a_cursor_oldest_first,
    a_read_over_its_limit_is_incomplete,
    expired_entries_are_not_returned,
);
