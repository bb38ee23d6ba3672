#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `DynamoWorkLog` against DynamoDB Local (`DYNAMODB_ENDPOINT`): the work-log contract
//! suite, each check on a fresh history table made by `create_history_table`, plus what only
//! the table shows: an expired `done` item TTL has not deleted yet does not block a claim,
//! and work-log items live beside receipts of the same message without touching them.

#[macro_use]
#[allow(dead_code)] // shared by the contract test files; this one uses part of it
mod local_dynamo;

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use switchboard_aws::{delete_table, DynamoReceiptStore, DynamoWorkLog};
use switchboard_core::receipts::ReceiptStore;
use switchboard_core::worklog::{contract, Begun, UnitKey, WorkLog};
use switchboard_model::TenantId;
use time::{Duration, OffsetDateTime};

async fn fresh_log() -> (Client, DynamoWorkLog) {
    let (client, table) = local_dynamo::history_table("worklog").await;
    (client.clone(), DynamoWorkLog::new(client, table))
}

contract_tests!(fresh_log:
    a_unit_is_claimed_once_then_done,
    a_passed_lease_is_claimed_again,
    abandon_gives_back_only_its_own_claim,
    units_of_other_messages_and_tenants_are_separate,
    a_done_unit_is_forgotten_after_it_expires,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_begins_claim_exactly_once() {
    let (client, log) = fresh_log().await;
    let table = log.table_name().to_string();
    contract::concurrent_begins_claim_exactly_once(Arc::new(log)).await;
    delete_table(&client, &table).await.unwrap();
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

async fn item(client: &Client, table: &str, key: &UnitKey) -> HashMap<String, AttributeValue> {
    client
        .get_item()
        .table_name(table)
        .key("PK", AttributeValue::S(key.storage_key()))
        .key("SK", AttributeValue::S(key.unit.clone()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the work-log item")
}

/// The items carry the documented attributes, and a finished unit whose `expiresAt` has
/// passed (TTL has not deleted it: DynamoDB Local never does within a test) is claimed again
/// at a `now` past it, while before it the unit is still done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_done_item_still_in_the_table_is_claimed_over() {
    let (client, log) = fresh_log().await;
    let k = UnitKey::message(Some(TenantId::parse("acme").unwrap()), "m-1");
    let now = now();
    let lease = now + Duration::minutes(5);
    assert_eq!(log.begin(&k, lease, now).await.unwrap(), Begun::Claimed);
    let claim = item(&client, log.table_name(), &k).await;
    assert_eq!(claim["PK"].as_s().unwrap(), "W#acme#m-1");
    assert_eq!(claim["SK"].as_s().unwrap(), "message");
    assert_eq!(claim["state"].as_s().unwrap(), "running");
    assert_eq!(
        claim["leaseUntil"].as_n().unwrap(),
        &lease.unix_timestamp().to_string()
    );
    assert_eq!(
        claim["expiresAt"].as_n().unwrap(),
        &(lease + Duration::days(1)).unix_timestamp().to_string()
    );

    let expiry = now + Duration::seconds(60);
    log.finish(&k, expiry).await.unwrap();
    let done = item(&client, log.table_name(), &k).await;
    assert_eq!(done["state"].as_s().unwrap(), "done");
    assert!(!done.contains_key("leaseUntil"));
    assert_eq!(
        done["expiresAt"].as_n().unwrap(),
        &expiry.unix_timestamp().to_string()
    );

    let before = expiry - Duration::seconds(1);
    assert_eq!(
        log.begin(&k, before + Duration::minutes(5), before)
            .await
            .unwrap(),
        Begun::Done
    );
    // At its expiry the unit is forgotten (as `expires_at <= now` in memory), though the
    // item is still in the table.
    assert_eq!(
        log.begin(&k, expiry + Duration::minutes(5), expiry)
            .await
            .unwrap(),
        Begun::Claimed
    );
    delete_table(&client, log.table_name()).await.unwrap();
}

/// A message's receipt and its work-log units share the table without seeing each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_log_items_live_beside_receipts() {
    let (client, log) = fresh_log().await;
    let receipts = DynamoReceiptStore::new(client.clone(), log.table_name());
    let acme = TenantId::parse("acme").unwrap();
    let now = now();
    let (key, receipt) = local_dynamo::create_receipt(
        &receipts,
        &acme,
        "m-1",
        now,
        std::time::Duration::from_secs(600),
    )
    .await;
    let unit = UnitKey::message(Some(acme), "m-1");
    assert_eq!(
        log.begin(&unit, now + Duration::minutes(5), now)
            .await
            .unwrap(),
        Begun::Claimed
    );
    log.finish(&unit, now + Duration::hours(1)).await.unwrap();
    assert_eq!(receipts.get(&key).await.unwrap(), Some(receipt));
    assert_eq!(
        log.begin(&unit, now + Duration::minutes(5), now)
            .await
            .unwrap(),
        Begun::Done
    );
    delete_table(&client, log.table_name()).await.unwrap();
}
