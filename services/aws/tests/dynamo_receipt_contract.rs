#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `DynamoReceiptStore` against DynamoDB Local (`DYNAMODB_ENDPOINT`): the receipt contract
//! suite, each check on a fresh history table made by `create_history_table`, plus a
//! receipt beside history entries in one table.

#[macro_use]
#[allow(dead_code)] // shared by the contract test files; this one uses part of it
mod local_dynamo;

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use switchboard_aws::{delete_table, DynamoHistoryStore, DynamoReceiptStore};
use switchboard_core::history::{Cursor, HistoryEntry, HistoryStore, Stream};
use switchboard_core::receipts::{contract, ReceiptStore};
use switchboard_model::TenantId;
use time::OffsetDateTime;

async fn fresh_store() -> (Client, DynamoReceiptStore) {
    let (client, table) = local_dynamo::history_table("receipt").await;
    (client.clone(), DynamoReceiptStore::new(client, table))
}

contract_tests!(fresh_store:
    create_writes_once_per_key,
    concurrent_creates_make_exactly_one,
    records_add_atomically,
    marks_win_over_counts,
    record_creates_a_missing_receipt,
    delete_if_queued_spares_touched_receipts,
    expired_receipts_are_gone,
);

/// Receipts and history share the table without seeing each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_live_beside_history() {
    let (client, receipts) = fresh_store().await;
    let history = DynamoHistoryStore::new(client.clone(), receipts.table_name());
    let acme = TenantId::parse("acme").unwrap();
    let now = OffsetDateTime::now_utc();
    let entry = HistoryEntry {
        cursor: Cursor::new(now),
        id: "m-1".into(),
        frame: "{}".into(),
        expires_at: now.unix_timestamp() + 60,
    };
    history
        .append(&entry, &[Stream::Tenant(acme.clone())])
        .await
        .unwrap();
    let (key, _) =
        local_dynamo::create_receipt(&receipts, &acme, "m-1", now, Duration::from_secs(60)).await;
    let read = history
        .read_after(&Stream::Tenant(acme), &Cursor::floor_at(0), 10)
        .await
        .unwrap();
    assert_eq!(read.entries, vec![entry]);
    assert!(receipts.get(&key).await.unwrap().is_some());
    delete_table(&client, receipts.table_name()).await.unwrap();
}
