#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `DynamoOnlineStore` against DynamoDB Local (`DYNAMODB_ENDPOINT`): the online contract
//! suite, each check on a fresh history table made by `create_history_table`, plus the
//! item layout other tools (and the IAM `LeadingKeys` condition) rely on.

#[macro_use]
#[allow(dead_code)] // shared by the contract test files; this one uses part of it
mod local_dynamo;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use switchboard_aws::delete_table;
use switchboard_aws::dynamo::{DynamoOnlineStore, PK, SK};
use switchboard_core::online::contract;
use switchboard_core::online::OnlineStore;
use switchboard_model::{ConnectionId, TenantId, UserId};

async fn fresh_store() -> (Client, DynamoOnlineStore) {
    let (client, table) = local_dynamo::history_table("online").await;
    (client.clone(), DynamoOnlineStore::new(client, table))
}

contract_tests!(fresh_store:
    adds_count_connections_and_versions,
    a_repeated_add_is_known,
    a_repeated_remove_is_unknown,
    mark_offline_only_at_the_exact_version,
    connections_left_keep_the_user_online,
    a_reconnect_tells_what_was_reported,
    tenants_and_users_are_isolated,
    concurrent_changes_of_one_user_are_each_counted,
);

/// One item per user: `O#<tenant>` / `<user>`, `n`, `v`, `st` and `c#<connection>` = the
/// version its add got; no TTL attribute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_item_is_one_per_user_with_its_connections() {
    let (client, store) = fresh_store().await;
    let (acme, alice) = (
        TenantId::parse("acme").unwrap(),
        UserId::parse("alice").unwrap(),
    );
    for id in ["c1", "c2", "c3"] {
        store
            .add(&acme, &alice, &ConnectionId::parse(id).unwrap())
            .await
            .unwrap();
    }
    store
        .remove(&acme, &alice, &ConnectionId::parse("c2").unwrap())
        .await
        .unwrap();
    let item = client
        .get_item()
        .table_name(store.table_name())
        .key(PK, AttributeValue::S("O#acme".into()))
        .key(SK, AttributeValue::S("alice".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let n = |v: &str| AttributeValue::N(v.into());
    let expected: HashMap<String, AttributeValue> = HashMap::from([
        (PK.into(), AttributeValue::S("O#acme".into())),
        (SK.into(), AttributeValue::S("alice".into())),
        ("n".into(), n("2")),
        ("v".into(), n("4")),
        ("st".into(), AttributeValue::S("online".into())),
        ("c#c1".into(), n("1")),
        ("c#c3".into(), n("3")),
    ]);
    assert_eq!(item, expected);
    delete_table(&client, store.table_name()).await.unwrap();
}
