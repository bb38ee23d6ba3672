#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `DynamoReceiptStore` against DynamoDB Local (`DYNAMODB_ENDPOINT`): the receipt contract
//! suite, each check on a fresh history table made by `create_history_table`, plus a
//! receipt beside history entries in one table.

mod local_dynamo;
use local_dynamo::client;

use aws_sdk_dynamodb::Client;
use switchboard_aws::{create_history_table, delete_table, DynamoHistoryStore, DynamoReceiptStore};
use switchboard_core::history::{Cursor, HistoryEntry, HistoryStore, Stream};
use switchboard_core::receipts::{contract, Created, Receipt, ReceiptKey, ReceiptStore};
use switchboard_model::{Target, TenantId};
use time::OffsetDateTime;

async fn fresh_store() -> (Client, DynamoReceiptStore) {
    let client = client().await;
    let table = format!("receipt-test-{}", uuid::Uuid::new_v4().simple());
    create_history_table(&client, &table).await.unwrap();
    (client.clone(), DynamoReceiptStore::new(client, table))
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

contract_test!(create_writes_once_per_key);
contract_test!(concurrent_creates_make_exactly_one);
contract_test!(records_add_atomically);
contract_test!(marks_win_over_counts);
contract_test!(record_creates_a_missing_receipt);
contract_test!(delete_if_queued_spares_touched_receipts);
contract_test!(expired_receipts_are_gone);

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
    let key = ReceiptKey::new(Some(acme.clone()), "m-1");
    let receipt = Receipt::queued(
        key.clone(),
        &Target::Tenant {
            tenant: acme.clone(),
        },
        now,
        std::time::Duration::from_secs(60),
    );
    assert_eq!(receipts.create(&receipt).await.unwrap(), Created::New);
    let read = history
        .read_after(&Stream::Tenant(acme), &Cursor::floor_at(0), 10)
        .await
        .unwrap();
    assert_eq!(read.entries, vec![entry]);
    assert!(receipts.get(&key).await.unwrap().is_some());
    delete_table(&client, receipts.table_name()).await.unwrap();
}
