#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `$connect`, `$disconnect` and `$default` driven with real-shaped API Gateway WebSocket
//! events (tests/fixtures/*.json) against the in-memory roster.

use std::sync::Arc;

use serde_json::{json, Value};
use switchboard_core::connection::{ActionDeps, ConnectConfig};
use switchboard_core::history::{HistoryConfig, MemoryHistoryStore};
use switchboard_core::roster::{MemoryRosterStore, RosterStore};
use switchboard_core::tenants::Tenants;
use switchboard_core::testkit::ScriptedPoster;
use switchboard_lambdas::connect::{self, ConnectDeps};
use switchboard_lambdas::disconnect::{self, DisconnectDeps};
use switchboard_lambdas::websocket::{RouteError, WebsocketEvent};
use switchboard_lambdas::{default, websocket};
use switchboard_model::TenantId;

const CONNECTION: &str = "TWegAd-1joECJFA=";

fn fixture_json(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text.replace("__TOKEN__", "header.payload.signature")).unwrap()
}

fn event(json: Value) -> WebsocketEvent {
    serde_json::from_value(json).unwrap()
}

fn fixture(name: &str) -> WebsocketEvent {
    event(fixture_json(name))
}

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn connect_deps(roster: &Arc<MemoryRosterStore>) -> ConnectDeps {
    ConnectDeps {
        roster: roster.clone(),
        config: ConnectConfig::default(),
        tenants: Tenants::unlimited(),
        usage: None,
    }
}

fn to_json(response: websocket::WebsocketResponse) -> Value {
    serde_json::to_value(response).unwrap()
}

#[test]
fn authorizer_context_becomes_claims() {
    let claims = websocket::claims(&fixture("connect_query.json")).unwrap();
    assert_eq!(claims.tenant.as_str(), "acme");
    assert_eq!(claims.user.as_str(), "alice");
    assert_eq!(claims.roles, vec!["admin", "publisher"]);
    assert_eq!(
        claims.exp, None,
        "a context without exp (an older authorizer)"
    );
    let mut json = fixture_json("connect_query.json");
    json["requestContext"]["authorizer"]["exp"] = json!(1_900_000_000);
    json["requestContext"]["authorizer"]["adminScope"] = json!("global");
    let claims = websocket::claims(&event(json)).unwrap();
    assert_eq!(claims.exp, Some(1_900_000_000));
    assert!(claims.is_global_admin());
}

#[tokio::test]
async fn connect_stores_the_token_expiry_from_the_authorizer_context() {
    let roster = Arc::new(MemoryRosterStore::new());
    let mut json = fixture_json("connect_query.json");
    json["requestContext"]["authorizer"]["exp"] = json!(1_900_000_000);
    connect::handle(&connect_deps(&roster), &event(json))
        .await
        .unwrap();
    let records = roster.list_all().await.unwrap();
    assert_eq!(records[0].token_expires_at, Some(1_900_000_000));
}

#[tokio::test]
async fn connect_with_query_token_writes_the_roster_and_answers_200() {
    let roster = Arc::new(MemoryRosterStore::new());
    let response = connect::handle(&connect_deps(&roster), &fixture("connect_query.json"))
        .await
        .unwrap();
    assert_eq!(to_json(response), json!({"statusCode": 200}));

    let records = roster.list_tenant(&acme()).await.unwrap();
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.connection_id.as_str(), CONNECTION);
    assert_eq!(record.user.as_str(), "alice");
    assert_eq!(record.roles, vec!["admin", "publisher"]);
    assert_eq!(
        record.expires_at,
        record.connected_at.unix_timestamp() + 7_500
    );
}

#[tokio::test]
async fn connect_with_subprotocol_token_answers_the_bearer_subprotocol() {
    let roster = Arc::new(MemoryRosterStore::new());
    let response = connect::handle(&connect_deps(&roster), &fixture("connect_subprotocol.json"))
        .await
        .unwrap();
    assert_eq!(
        to_json(response),
        json!({"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "bearer"}})
    );
    assert_eq!(roster.list_tenant(&acme()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn connect_without_identity_is_403_and_writes_nothing() {
    let roster = Arc::new(MemoryRosterStore::new());
    let mut json = fixture_json("connect_query.json");
    json["requestContext"]["authorizer"] = json!({"principalId": "alice", "user": "alice"});
    let response = connect::handle(&connect_deps(&roster), &event(json))
        .await
        .unwrap();
    assert_eq!(to_json(response), json!({"statusCode": 403}));

    let mut json = fixture_json("connect_query.json");
    json["requestContext"]["authorizer"]["tenant"] = json!("a#b");
    let response = connect::handle(&connect_deps(&roster), &event(json))
        .await
        .unwrap();
    assert_eq!(to_json(response), json!({"statusCode": 403}));
    assert!(roster.list_all().await.unwrap().is_empty());
}

#[tokio::test]
async fn connect_without_connection_id_is_an_error() {
    let roster = Arc::new(MemoryRosterStore::new());
    let mut json = fixture_json("connect_query.json");
    json["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("connectionId");
    let result = connect::handle(&connect_deps(&roster), &event(json)).await;
    assert!(matches!(result, Err(RouteError::NoConnectionId)));
}

#[tokio::test]
async fn a_malformed_connection_id_is_refused_at_the_edge_before_any_write() {
    let roster = Arc::new(MemoryRosterStore::new());
    let mut json = fixture_json("connect_query.json");
    json["requestContext"]["connectionId"] = json!("bad id");
    let result = connect::handle(&connect_deps(&roster), &event(json.clone())).await;
    assert!(
        matches!(&result, Err(RouteError::InvalidConnectionId(_))),
        "{result:?}"
    );
    assert!(roster.list_all().await.unwrap().is_empty());
    let deps = DisconnectDeps {
        roster: roster.clone(),
        usage: None,
    };
    let result = disconnect::handle(&deps, &event(json)).await;
    assert!(matches!(result, Err(RouteError::InvalidConnectionId(_))));
}

#[tokio::test]
async fn disconnect_removes_the_record_idempotently() {
    let roster = Arc::new(MemoryRosterStore::new());
    connect::handle(&connect_deps(&roster), &fixture("connect_query.json"))
        .await
        .unwrap();
    assert_eq!(roster.list_all().await.unwrap().len(), 1);

    let deps = DisconnectDeps {
        roster: roster.clone(),
        usage: None,
    };
    for _ in 0..2 {
        let response = disconnect::handle(&deps, &fixture("disconnect.json"))
            .await
            .unwrap();
        assert_eq!(to_json(response), json!({"statusCode": 200}));
    }
    assert!(roster.list_all().await.unwrap().is_empty());
}

fn default_deps() -> default::DefaultDeps {
    default::DefaultDeps {
        actions: ActionDeps {
            roster: Arc::new(MemoryRosterStore::new()),
            history: Arc::new(MemoryHistoryStore::new(10)),
            history_config: HistoryConfig::default(),
            verifier: None,
            push: None,
        },
        poster: Arc::new(ScriptedPoster::new()),
        resume: Default::default(),
    }
}

async fn default_reply(body: &str) -> Value {
    let mut json = fixture_json("default_message.json");
    json["body"] = json!(body);
    let response = to_json(
        default::handle(&default_deps(), &event(json))
            .await
            .unwrap(),
    );
    assert_eq!(response["statusCode"], 200);
    serde_json::from_str(response["body"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn default_answers_ping_with_pong() {
    let response = default::handle(&default_deps(), &fixture("default_message.json"))
        .await
        .unwrap();
    assert_eq!(
        to_json(response),
        json!({"statusCode": 200, "body": "{\"type\":\"pong\"}"})
    );
}

#[tokio::test]
async fn default_answers_whoami_with_the_identity() {
    assert_eq!(
        default_reply(r#"{"action":"whoami"}"#).await,
        json!({"type": "whoami", "connectionId": CONNECTION, "tenant": "acme", "user": "alice"})
    );
}

#[tokio::test]
async fn default_answers_anything_else_with_unknown_action() {
    let expected = json!({"type": "error", "error": "unknown_action"});
    assert_eq!(default_reply(r#"{"action":"dance"}"#).await, expected);
    assert_eq!(default_reply("not json").await, expected);
}

#[tokio::test]
async fn default_answers_a_malformed_resume_with_invalid_cursor() {
    let expected = json!({"type": "error", "error": "invalid_cursor"});
    assert_eq!(
        default_reply(r#"{"action":"resume","since":"x"}"#).await,
        expected
    );
    assert_eq!(default_reply(r#"{"action":"resume"}"#).await, expected);
}
