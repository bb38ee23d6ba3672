#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `DynamoUsageStore` against DynamoDB Local (`DYNAMODB_ENDPOINT`): the usage contract
//! suite, each check on a fresh history table made by `create_history_table`, plus usage
//! beside a receipt in one table.

mod local_dynamo;
use local_dynamo::client;

use aws_sdk_dynamodb::Client;
use switchboard_aws::dynamo::DynamoUsageStore;
use switchboard_aws::{create_history_table, delete_table, DynamoReceiptStore};
use switchboard_core::receipts::{Created, Receipt, ReceiptKey, ReceiptStore};
use switchboard_core::usage::{contract, Counts, UsageStore};
use switchboard_model::{Target, TenantId};
use time::OffsetDateTime;

async fn fresh_store() -> (Client, DynamoUsageStore) {
    let client = client().await;
    let table = format!("usage-test-{}", uuid::Uuid::new_v4().simple());
    create_history_table(&client, &table).await.unwrap();
    (
        client.clone(),
        DynamoUsageStore::new(client, table, contract::RETENTION),
    )
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

contract_test!(adds_sum_and_peaks_rise);
contract_test!(ranges_are_half_open);
contract_test!(tenants_are_apart);
contract_test!(concurrent_adds_lose_nothing);
contract_test!(old_minutes_are_gone);
contract_test!(live_counters_add);

/// Usage and receipts share the table without seeing each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_lives_beside_receipts() {
    let (client, usage) = fresh_store().await;
    let receipts = DynamoReceiptStore::new(client.clone(), usage.table_name());
    let acme = TenantId::parse("acme").unwrap();
    let now = OffsetDateTime::now_utc();
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
