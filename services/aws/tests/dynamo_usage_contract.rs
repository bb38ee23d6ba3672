#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `DynamoUsageStore` against DynamoDB Local (`DYNAMODB_ENDPOINT`): the usage contract
//! suite, each check on a fresh history table made by `create_history_table`, plus usage
//! beside a receipt in one table.

#[macro_use]
#[allow(dead_code)] // shared by the contract test files; this one uses part of it
mod local_dynamo;

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use switchboard_aws::dynamo::DynamoUsageStore;
use switchboard_aws::{delete_table, DynamoReceiptStore};
use switchboard_core::receipts::ReceiptStore;
use switchboard_core::usage::{contract, Counts, UsageStore};
use switchboard_model::TenantId;
use time::OffsetDateTime;

async fn fresh_store() -> (Client, DynamoUsageStore) {
    let (client, table) = local_dynamo::history_table("usage").await;
    (
        client.clone(),
        DynamoUsageStore::new(client, table, contract::RETENTION),
    )
}

contract_tests!(fresh_store:
    adds_sum_and_peaks_rise,
    ranges_are_half_open,
    tenants_are_apart,
    concurrent_adds_lose_nothing,
    old_minutes_are_gone,
    live_counters_add,
);

/// Usage and receipts share the table without seeing each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_lives_beside_receipts() {
    let (client, usage) = fresh_store().await;
    let receipts = DynamoReceiptStore::new(client.clone(), usage.table_name());
    let acme = TenantId::parse("acme").unwrap();
    let now = OffsetDateTime::now_utc();
    let (key, _) =
        local_dynamo::create_receipt(&receipts, &acme, "m-1", now, Duration::from_secs(60)).await;
    let counts = Counts {
        delivered: 2,
        ..Counts::default()
    };
    usage.add(Some(&acme), now, &counts).await.unwrap();
    usage.add_live(&acme, 1).await.unwrap();
    let hour = time::Duration::hours(1);
    let minutes = usage
        .minutes(Some(&acme), now - hour, now + hour)
        .await
        .unwrap();
    assert_eq!(minutes.len(), 1, "the live counter is not a bucket");
    assert_eq!(minutes[0].counts, counts);
    assert!(receipts.get(&key).await.unwrap().is_some());
    delete_table(&client, usage.table_name()).await.unwrap();
}
