#![allow(clippy::unwrap_used, clippy::expect_used)]
//! In-band `refresh` on AWS: the real `$connect`, `$default` and `$disconnect` handlers,
//! built from their environment by their own builders, against DynamoDB Local (a fresh
//! roster table). A refresh of the same identity moves the roster item's
//! `tokenExpiresAt`; a refused one leaves it; a refresh after `$disconnect` never
//! recreates the item.
//!
//! Needs `DYNAMODB_ENDPOINT` (scripts/test.sh starts DynamoDB Local).

use std::time::Duration;

#[path = "support/dynamodb_local.rs"]
mod dynamodb_local;
use dynamodb_local::endpoint;

use serde_json::{json, Value};
use switchboard_aws::config::{dynamodb_client, DynamoConfig, LocalDefaults};
use switchboard_aws::{create_table, delete_table, DynamoRosterStore};
use switchboard_core::auth::mint_hs256;
use switchboard_core::roster::RosterStore;
use switchboard_lambdas::websocket::WebsocketEvent;
use switchboard_lambdas::{connect, default, disconnect};
use switchboard_model::{TenantId, UserId};
use time::OffsetDateTime;

const CONNECTION: &str = "TWegAd-1joECJFA=";
const SECRET: &str = "default-refresh-secret-of-32-bytes";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `name`'s event as the authorizer's context `{tenant: acme, user: alice, exp}` makes it.
fn event(name: &str, exp: i64, body: Option<String>) -> WebsocketEvent {
    let mut json = fixture(name);
    json["requestContext"]["connectionId"] = json!(CONNECTION);
    let context = &mut json["requestContext"]["authorizer"];
    context["tenant"] = json!("acme");
    context["user"] = json!("alice");
    context["exp"] = json!(exp);
    if let Some(body) = body {
        json["body"] = json!(body);
    }
    serde_json::from_value(json).unwrap()
}

fn token(tenant: &str, user: &str, ttl_secs: u64) -> String {
    mint_hs256(
        SECRET.as_bytes(),
        &TenantId::parse(tenant).unwrap(),
        &UserId::parse(user).unwrap(),
        &[],
        Duration::from_secs(ttl_secs),
    )
}

fn refresh(token: &str) -> Option<String> {
    Some(json!({"action": "refresh", "token": token}).to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_moves_the_roster_token_expiry_and_never_recreates_a_connection() {
    let endpoint = endpoint();
    let table = format!(
        "roster-refresh-{:x}",
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    );
    let env = [
        ("DYNAMODB_ENDPOINT", endpoint.clone()),
        ("ROSTER_TABLE", table.clone()),
        ("JWT_HS256_SECRET", SECRET.to_string()),
        ("CALLBACK_URL", "http://127.0.0.1:9/main".to_string()),
    ];
    let lookup = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let dynamo = DynamoConfig {
        roster_table: table.clone(),
        history_table: "unused".into(),
        scan_segments: 1,
        endpoint: Some(endpoint),
        local: LocalDefaults {
            region: true,
            credentials: true,
        },
    };
    let client = dynamodb_client(&dynamo).await;
    create_table(&client, &table).await.unwrap();
    let roster = DynamoRosterStore::new(client.clone(), table.clone(), 1);
    let acme = TenantId::parse("acme").unwrap();
    let token_expiry = || async {
        let records = roster.list_tenant(&acme).await.unwrap();
        records.first().map(|r| r.token_expires_at)
    };

    let connect_deps = connect::build(lookup).await.unwrap();
    let default_deps = default::build(lookup).await.unwrap();
    let disconnect_deps = disconnect::build(lookup).await.unwrap();
    let connected_exp = OffsetDateTime::now_utc().unix_timestamp() + 60;
    let connected = connect::handle(
        &connect_deps,
        &event("connect_query.json", connected_exp, None),
    )
    .await
    .unwrap();
    assert_eq!(connected.status_code, 200);
    assert_eq!(token_expiry().await, Some(Some(connected_exp)));

    let reply = |body: Option<String>| {
        let deps = &default_deps;
        async move {
            let response =
                default::handle(deps, &event("default_message.json", connected_exp, body))
                    .await
                    .unwrap();
            assert_eq!(response.status_code, 200);
            serde_json::from_str::<Value>(response.body.as_deref().unwrap()).unwrap()
        }
    };

    // Refused: another user, another tenant, an invalid token. The old expiry stands.
    for (other, error) in [
        (token("acme", "mallory", 3_600), "identity_mismatch"),
        (token("globex", "alice", 3_600), "identity_mismatch"),
        ("not.a.jwt".to_string(), "invalid_token"),
    ] {
        assert_eq!(
            reply(refresh(&other)).await,
            json!({"type": "error", "error": error})
        );
        assert_eq!(token_expiry().await, Some(Some(connected_exp)));
    }

    // The same identity: `refreshed` with the new exp, which the roster now holds.
    let answer = reply(refresh(&token("acme", "alice", 3_600))).await;
    assert_eq!(answer["type"], "refreshed", "{answer}");
    let new_exp = answer["exp"].as_i64().unwrap();
    assert!(new_exp >= connected_exp + 3_000, "{new_exp}");
    assert_eq!(token_expiry().await, Some(Some(new_exp)));

    // After `$disconnect`, a refresh fails and the item is not recreated.
    disconnect::handle(
        &disconnect_deps,
        &event("disconnect.json", connected_exp, None),
    )
    .await
    .unwrap();
    assert_eq!(
        reply(refresh(&token("acme", "alice", 7_200))).await,
        json!({"type": "error", "error": "refresh_failed"})
    );
    let scan = client.scan().table_name(&table).send().await.unwrap();
    assert_eq!(scan.count(), 0, "refresh recreated the item: {scan:?}");

    delete_table(&client, &table).await.unwrap();
}
