#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The publish-api function serves the console's two reads (issue 26) beside publishing,
//! with the same role rules as `serve`: `GET /v1/tenants` (role admin) and
//! `GET /v1/tenants/{t}/presence/summary` (presence's rules). On a roster that cannot name
//! its live tenants without a scan (DynamoDB's; here a memory roster hiding that ability,
//! which also runs the port's default `tally`), a global admin gets the `TENANTS_FILE`
//! tenants, `"listed":"configured"`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_core::auth::{mint_hs256, AuthConfig, Verifier};
use switchboard_core::publish_api::PublishApi;
use switchboard_core::roster::{MemoryRosterStore, RosterStore};
use switchboard_core::tenants::Tenants;
use switchboard_core::testkit::{record, RecordingQueue};
use switchboard_lambdas::emf::testkit::MemorySink;
use switchboard_lambdas::emf::Metrics;
use switchboard_lambdas::publish_api::router;
use switchboard_model::{TenantId, UserId};
use tower::ServiceExt;

#[path = "support/counting_roster.rs"]
mod counting_roster;

use counting_roster::Roster;

const SECRET: &[u8] = b"lambda-console-routes-secret-of-32b";

fn token(tenant: &str, roles: &[&str]) -> String {
    mint_hs256(
        SECRET,
        &TenantId::parse(tenant).unwrap(),
        &UserId::parse("alice").unwrap(),
        &roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        Duration::from_secs(300),
    )
}

/// The function's router on `roster` (acme: alice twice and bob; globex: one) and
/// `tenants`.
async fn app(roster: Arc<dyn RosterStore>, tenants: Tenants) -> axum::Router {
    for (tenant, user, connection) in [
        ("acme", "alice", "a-1"),
        ("acme", "alice", "a-2"),
        ("acme", "bob", "b-1"),
        ("globex", "gina", "g-1"),
    ] {
        roster.put(&record(tenant, user, connection)).await.unwrap();
    }
    let verifier = Arc::new(
        Verifier::new(AuthConfig::with_hs256_secret(SECRET))
            .await
            .unwrap(),
    );
    let api = PublishApi {
        verifier,
        queue: Arc::new(RecordingQueue::new()),
        receipts: None,
        tenants,
        usage: None,
        push_enabled: false,
    };
    let metrics = Metrics::new("Switchboard/Test", Arc::new(MemorySink::new())).unwrap();
    router(api, roster, metrics)
}

async fn get(app: &axum::Router, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = http::Request::builder().uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(lambda_http::Body::Empty).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn summary(tenant: &str, connections: u64, users: u64) -> Value {
    json!({"tenant": tenant, "connections": connections, "users": users, "complete": true})
}

#[tokio::test]
async fn the_console_reads_are_served_with_the_role_rules() {
    let app = app(Arc::new(MemoryRosterStore::new()), Tenants::unlimited()).await;
    // The single key source's admin is a global admin: every live tenant, by name.
    let (status, body) = get(&app, "/v1/tenants", Some(&token("ops", &["admin"]))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"caller": {"tenant": "ops", "user": "alice", "globalAdmin": true},
               "tenants": [summary("acme", 3, 2), summary("globex", 1, 1)],
               "listed": "all", "truncated": false})
    );
    for roles in [&["publisher"][..], &[]] {
        let (status, body) = get(&app, "/v1/tenants", Some(&token("acme", roles))).await;
        assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
    }
    assert_eq!(get(&app, "/v1/tenants", None).await.0, 401);

    let path = "/v1/tenants/acme/presence/summary";
    for token in [token("ops", &["admin"]), token("acme", &["publisher"])] {
        assert_eq!(
            get(&app, path, Some(&token)).await,
            (200, summary("acme", 3, 2))
        );
    }
    for token in [token("globex", &["publisher"]), token("acme", &[])] {
        assert_eq!(get(&app, path, Some(&token)).await.0, 403);
    }
    assert_eq!(get(&app, path, None).await.0, 401);
}

#[tokio::test]
async fn without_a_tenant_listing_the_global_admin_gets_the_configured_tenants() {
    let dir = std::env::temp_dir().join(format!("console-routes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tenants.json");
    std::fs::write(&file, r#"{"tenants":{"initech":{},"acme":{}}}"#).unwrap();
    let tenants =
        Tenants::from_lookup(|key| (key == "TENANTS_FILE").then(|| file.display().to_string()))
            .unwrap();
    let roster = Arc::new(Roster::default());
    let app = app(roster, tenants).await;
    let (status, body) = get(&app, "/v1/tenants", Some(&token("ops", &["admin"]))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["listed"], "configured");
    assert_eq!(
        body["tenants"],
        json!([summary("acme", 3, 2), summary("initech", 0, 0)]),
        "globex is live but not configured: the console lets the admin name it"
    );
    // The port's default tally (paged reads) counts like the adapters'.
    let (status, body) = get(
        &app,
        "/v1/tenants/globex/presence/summary",
        Some(&token("ops", &["admin"])),
    )
    .await;
    assert_eq!((status, body), (200, summary("globex", 1, 1)));
    let _ = std::fs::remove_dir_all(dir);
}
