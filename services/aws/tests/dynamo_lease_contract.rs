#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `DynamoLeaseStore` against DynamoDB Local (`DYNAMODB_ENDPOINT`): the lease contract
//! suite, each check on a fresh history table made by `create_history_table`, plus the
//! item layout.

#[macro_use]
#[allow(dead_code)] // shared by the contract test files; this one uses part of it
mod local_dynamo;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use switchboard_aws::delete_table;
use switchboard_aws::dynamo::{DynamoLeaseStore, PK, SK, TTL_ATTRIBUTE};
use switchboard_core::leases::contract;
use switchboard_core::leases::LeaseStore;

async fn fresh_store() -> (Client, DynamoLeaseStore) {
    let (client, table) = local_dynamo::history_table("leases").await;
    (client.clone(), DynamoLeaseStore::new(client, table))
}

contract_tests!(fresh_store:
    expired_lists_the_leases_that_ended,
    a_renewed_lease_is_not_expired,
    a_lease_is_claimed_exactly_once,
    a_claim_of_a_lease_renewed_since_fails,
);

/// `L#serve` / `<tag>`, `until` in epoch ms, `expiresAt` a day after it in epoch seconds
/// (rounded up); an odd item under `L#serve` is skipped, never fails the listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_item_holds_until_and_expires_a_day_after() {
    let (client, store) = fresh_store().await;
    let until = 1_900_000_000_500_i64;
    store.renew("Abcd", until).await.unwrap();
    let item = client
        .get_item()
        .table_name(store.table_name())
        .key(PK, AttributeValue::S("L#serve".into()))
        .key(SK, AttributeValue::S("Abcd".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item["until"], AttributeValue::N(until.to_string()));
    assert_eq!(
        item[TTL_ATTRIBUTE],
        AttributeValue::N((1_900_000_001 + 86_400).to_string())
    );
    client
        .put_item()
        .table_name(store.table_name())
        .item(PK, AttributeValue::S("L#serve".into()))
        .item(SK, AttributeValue::S("odd".into()))
        .item("until", AttributeValue::S("soon".into()))
        .send()
        .await
        .unwrap();
    let expired = store.expired(until).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].tag, "Abcd");
    delete_table(&client, store.table_name()).await.unwrap();
}
