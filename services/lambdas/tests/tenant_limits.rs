#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Tenant settings on the AWS connect path (docs/design.md: Tenants): the authorizer denies
//! a suspended tenant's valid token; `$connect` refuses a suspended tenant (403) and a
//! handshake at `maxConnections` / `maxConnectionsPerUser` (429 naming the setting),
//! counting the roster only for tenants with caps. Real-shaped events, the memory roster.
//!
//! The cap is exact one connect after another; concurrent connects of one tenant can each
//! count below it, so a tenant ends at most `cap + in_flight - 1` (the last test reaches
//! that bound on purpose and shows it is never passed).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_core::auth::{mint_hs256, AuthConfig, Verifier};
use switchboard_core::connection::ConnectConfig;
use switchboard_core::roster::RosterStore;
use switchboard_core::tenants::{SettingsTable, Tenants};
use switchboard_lambdas::authorizer::{authorize_json, Authorizer};
use switchboard_lambdas::connect::{self, ConnectDeps};
use switchboard_lambdas::websocket::WebsocketEvent;
use switchboard_model::{ConnectionId, TenantId, UserId};
use tokio::sync::Barrier;

#[path = "support/counting_roster.rs"]
mod counting_roster;

use counting_roster::Roster;

const SECRET: &[u8] = b"lambda-tenant-limits-test-secret-32";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn tenants(settings: Value) -> Tenants {
    Tenants::from_table(SettingsTable::parse(&settings.to_string()).unwrap())
}

fn t(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

/// A `$connect` event of `tenant`/`user` on connection `id` (the authorizer's context).
fn connect_event(tenant: &str, user: &str, id: &str) -> WebsocketEvent {
    let mut event = fixture("connect_query.json");
    let context = &mut event["requestContext"];
    context["connectionId"] = json!(id);
    context["authorizer"]["tenant"] = json!(tenant);
    context["authorizer"]["user"] = json!(user);
    context["authorizer"]["principalId"] = json!(user);
    serde_json::from_value(event).unwrap()
}

fn deps(roster: &Arc<Roster>, tenants: Tenants) -> ConnectDeps {
    ConnectDeps {
        roster: roster.clone(),
        config: ConnectConfig::default(),
        tenants,
        usage: None,
    }
}

/// Connects `tenant`/`user` on `id`: the status and the JSON body (if any).
async fn connect(deps: &ConnectDeps, tenant: &str, user: &str, id: &str) -> (u16, Value) {
    let response = connect::handle(deps, &connect_event(tenant, user, id))
        .await
        .unwrap();
    let body = response
        .body
        .map(|b| serde_json::from_str(&b).unwrap())
        .unwrap_or(Value::Null);
    (response.status_code, body)
}

async fn live(roster: &Roster, tenant: &str) -> usize {
    roster.inner.list_tenant(&t(tenant)).await.unwrap().len()
}

#[tokio::test]
async fn the_authorizer_denies_a_suspended_tenants_valid_token() {
    let verifier = Verifier::new(AuthConfig::with_hs256_secret(SECRET))
        .await
        .unwrap();
    let authorizer = Authorizer {
        verifier,
        tenants: tenants(json!({"tenants": {"acme": {"suspended": true}}})),
    };
    let mint = |tenant: &str| {
        mint_hs256(
            SECRET,
            &t(tenant),
            &UserId::parse("alice").unwrap(),
            &[],
            Duration::from_secs(300),
        )
    };
    let request = |tenant: &str| {
        let path = format!(
            "{}/tests/fixtures/query_token.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(path).unwrap();
        serde_json::from_str::<Value>(&text.replace("__TOKEN__", &mint(tenant))).unwrap()
    };
    let denied = authorize_json(&authorizer, request("acme")).await.unwrap();
    let denied = serde_json::to_value(denied).unwrap();
    assert_eq!(
        denied["policyDocument"]["Statement"][0]["Effect"], "Deny",
        "{denied}"
    );
    assert_eq!(denied["principalId"], "alice");
    let allowed = authorize_json(&authorizer, request("globex"))
        .await
        .unwrap();
    let allowed = serde_json::to_value(allowed).unwrap();
    assert_eq!(allowed["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(allowed["context"]["tenant"], "globex");
}

#[tokio::test]
async fn connect_refuses_a_suspended_tenant_without_a_roster_write() {
    let roster = Arc::new(Roster::default());
    let deps = deps(
        &roster,
        tenants(json!({"tenants": {"acme": {"suspended": true, "maxConnections": 5}}})),
    );
    let (status, body) = connect(&deps, "acme", "alice", "c-1").await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "tenant_suspended");
    assert_eq!(live(&roster, "acme").await, 0);
    assert_eq!(roster.counts.load(Ordering::SeqCst), 0, "no count needed");
    assert_eq!(connect(&deps, "globex", "alice", "g-1").await.0, 200);
}

#[tokio::test]
async fn one_after_another_the_tenant_cap_is_exact() {
    let roster = Arc::new(Roster::default());
    let deps = deps(
        &roster,
        tenants(json!({"tenants": {"acme": {"maxConnections": 3}}})),
    );
    for i in 0..3 {
        let user = format!("user-{i}");
        assert_eq!(
            connect(&deps, "acme", &user, &format!("c-{i}")).await.0,
            200
        );
    }
    let (status, body) = connect(&deps, "acme", "user-9", "c-3").await;
    assert_eq!(status, 429);
    assert_eq!(body["error"], "limit_exceeded");
    assert_eq!(body["limit"], "maxConnections");
    assert!(body["message"].as_str().unwrap().contains("acme"), "{body}");
    assert_eq!(
        live(&roster, "acme").await,
        3,
        "the refused one never written"
    );
    // Other tenants have no cap; a disconnect frees a place at once.
    assert_eq!(connect(&deps, "globex", "user-0", "g-1").await.0, 200);
    roster
        .remove(&t("acme"), &ConnectionId::parse("c-0").unwrap())
        .await
        .unwrap();
    assert_eq!(connect(&deps, "acme", "user-9", "c-4").await.0, 200);
    assert_eq!(connect(&deps, "acme", "user-9", "c-5").await.0, 429);
    assert_eq!(live(&roster, "acme").await, 3);
}

#[tokio::test]
async fn the_per_user_cap_refuses_only_that_user() {
    let roster = Arc::new(Roster::default());
    let deps = deps(
        &roster,
        tenants(json!({"defaults": {"maxConnectionsPerUser": 2}})),
    );
    assert_eq!(connect(&deps, "acme", "alice", "a-1").await.0, 200);
    assert_eq!(connect(&deps, "acme", "alice", "a-2").await.0, 200);
    let (status, body) = connect(&deps, "acme", "alice", "a-3").await;
    assert_eq!(
        (status, body["limit"].as_str()),
        (429, Some("maxConnectionsPerUser"))
    );
    assert_eq!(connect(&deps, "acme", "bob", "b-1").await.0, 200);
    // The same user id in another tenant is another person.
    assert_eq!(connect(&deps, "globex", "alice", "g-1").await.0, 200);
    assert_eq!(live(&roster, "acme").await, 3);
}

#[tokio::test]
async fn a_tenant_without_caps_costs_no_count() {
    let roster = Arc::new(Roster::default());
    let deps = deps(
        &roster,
        tenants(json!({"tenants": {"capped": {"maxConnections": 10}}})),
    );
    for i in 0..5 {
        assert_eq!(
            connect(&deps, "acme", "alice", &format!("a-{i}")).await.0,
            200
        );
    }
    assert_eq!(roster.counts.load(Ordering::SeqCst), 0);
    assert_eq!(connect(&deps, "capped", "alice", "c-1").await.0, 200);
    assert_eq!(
        roster.counts.load(Ordering::SeqCst),
        1,
        "one count: the tenant's"
    );
}

/// The approximation's bound, reached on purpose: `in_flight` connects all count before any
/// writes, so each sees the tenant below its cap. The tenant ends at `cap - 1 + in_flight`,
/// never more, and the next connect, alone, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_connects_pass_the_cap_by_at_most_those_in_flight_minus_one() {
    const CAP: usize = 3;
    const IN_FLIGHT: usize = 4;
    let settings = json!({"tenants": {"acme": {"maxConnections": CAP}}});
    let roster = Arc::new(Roster {
        gate: Some(Barrier::new(IN_FLIGHT)),
        ..Roster::default()
    });
    // Fill to one below the cap first (one count at a time would wait at the gate: write
    // these directly).
    for i in 0..CAP - 1 {
        let record = switchboard_core::testkit::record("acme", "alice", &format!("pre-{i}"));
        roster.put(&record).await.unwrap();
    }
    let shared = Arc::new(deps(&roster, tenants(settings.clone())));
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|i| {
            let deps = shared.clone();
            tokio::spawn(async move { connect(&deps, "acme", "bob", &format!("race-{i}")).await.0 })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        if tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap()
            == 200
        {
            admitted += 1;
        }
    }
    let held = live(&roster, "acme").await;
    assert_eq!(admitted, IN_FLIGHT, "each counted {} < {CAP}", CAP - 1);
    assert_eq!(held, CAP - 1 + IN_FLIGHT, "the documented bound, reached");
    // Alone again (the same connections, no gate), the count is exact: refused.
    let ungated = Arc::new(Roster::default());
    for record in roster.inner.list_tenant(&t("acme")).await.unwrap() {
        ungated.put(&record).await.unwrap();
    }
    let ungated_deps = deps(&ungated, tenants(settings));
    assert_eq!(connect(&ungated_deps, "acme", "bob", "late").await.0, 429);
}

/// A settings file the authorizer or `$connect` cannot use stops the function at init,
/// naming the variable or the key at fault; a good one is loaded.
#[tokio::test]
async fn a_bad_tenants_file_fails_the_authorizer_and_connect_at_init() {
    let dir = std::env::temp_dir().join(format!("tenant-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"tenants":{"acme":{"maxConections":3}}}"#).unwrap();
    let good = dir.join("good.json");
    std::fs::write(&good, r#"{"tenants":{"acme":{"maxConnections":3}}}"#).unwrap();
    let env = |file: &std::path::Path| {
        let file = file.display().to_string();
        move |key: &str| match key {
            "AWS_REGION" => Some("eu-west-1".to_string()),
            "JWT_HS256_SECRET" => Some("startup-test-secret-of-32-bytes!!".to_string()),
            "TENANTS_FILE" => Some(file.clone()),
            _ => None,
        }
    };
    let error = switchboard_lambdas::authorizer::build(env(&bad))
        .await
        .unwrap_err();
    assert!(error.contains("maxConections"), "{error}");
    let error = connect::build(env(&bad)).await.err().unwrap().to_string();
    assert!(error.contains("maxConections"), "{error}");
    let missing = dir.join("missing.json");
    let error = connect::build(env(&missing))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("TENANTS_FILE"), "{error}");
    let authorizer = switchboard_lambdas::authorizer::build(env(&good))
        .await
        .unwrap();
    assert_eq!(
        authorizer.tenants.settings(&t("acme")).max_connections,
        Some(3)
    );
    let deps = connect::build(env(&good)).await.unwrap();
    assert_eq!(deps.tenants.settings(&t("acme")).max_connections, Some(3));
    std::fs::remove_dir_all(&dir).unwrap();
}
