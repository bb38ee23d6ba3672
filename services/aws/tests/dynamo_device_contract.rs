#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `DynamoDeviceStore` against DynamoDB Local (`DYNAMODB_ENDPOINT`): the device contract
//! suite, each check on a fresh history table made by `create_history_table`, plus odd
//! items under a tenant's device key and devices beside a receipt in one table.

#[macro_use]
#[allow(dead_code)] // shared by the contract test files; this one uses part of it
mod local_dynamo;

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use switchboard_aws::dynamo::{PK, SK};
use switchboard_aws::{delete_table, DynamoDeviceStore, DynamoReceiptStore};
use switchboard_core::devices::contract::{self, device};
use switchboard_core::devices::DeviceStore;
use switchboard_core::receipts::ReceiptStore;
use switchboard_model::{TenantId, UserId};
use time::OffsetDateTime;

async fn fresh_store() -> (Client, DynamoDeviceStore) {
    let (client, table) = local_dynamo::history_table("devices").await;
    (client.clone(), DynamoDeviceStore::new(client, table))
}

contract_tests!(fresh_store:
    put_stores_and_replaces,
    put_evicts_the_oldest_beyond_the_bound,
    remove_takes_only_the_users_own,
    list_users_answers_those_users,
    pages_visit_every_device_once,
    expired_devices_are_never_answered,
    tenants_are_isolated,
    foreign_continuations_are_refused,
);

/// An item under `D#acme` that is not a device is skipped and counted by pages, left out
/// of user lookups, and never fails them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_items_are_skipped_and_counted() {
    let (client, store) = fresh_store().await;
    let acme = TenantId::parse("acme").unwrap();
    let alice = UserId::parse("alice").unwrap();
    store
        .put(&device("acme", "alice", "https://push.example.com/a"), 10)
        .await
        .unwrap();
    for sk in ["alice#not/an/id", "no-separator"] {
        client
            .put_item()
            .table_name(store.table_name())
            .item(PK, AttributeValue::S("D#acme".into()))
            .item(SK, AttributeValue::S(sk.into()))
            .item("endpoint", AttributeValue::N("7".into()))
            .send()
            .await
            .unwrap();
    }
    let devices = store
        .list_users(&acme, std::slice::from_ref(&alice))
        .await
        .unwrap();
    assert_eq!(devices.len(), 1);
    let page = store.list_page(&acme, None, 10).await.unwrap();
    assert_eq!((page.devices.len(), page.skipped, page.next), (1, 2, None));
    // An odd item among the user's devices does not stop a put's eviction.
    let evicted = store
        .put(&device("acme", "alice", "https://push.example.com/b"), 1)
        .await
        .unwrap();
    assert_eq!(evicted.len(), 1);
    delete_table(&client, store.table_name()).await.unwrap();
}

/// Devices and receipts share the table without seeing each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_live_beside_receipts() {
    let (client, store) = fresh_store().await;
    let receipts = DynamoReceiptStore::new(client.clone(), store.table_name());
    let acme = TenantId::parse("acme").unwrap();
    let (key, _) = local_dynamo::create_receipt(
        &receipts,
        &acme,
        "m-1",
        OffsetDateTime::now_utc(),
        Duration::from_secs(60),
    )
    .await;
    store
        .put(&device("acme", "alice", "https://push.example.com/a"), 10)
        .await
        .unwrap();
    let page = store.list_page(&acme, None, 10).await.unwrap();
    assert_eq!((page.devices.len(), page.skipped), (1, 0));
    assert!(receipts.get(&key).await.unwrap().is_some());
    delete_table(&client, store.table_name()).await.unwrap();
}
