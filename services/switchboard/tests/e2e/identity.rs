//! docs/design.md: Identity per issuer, on the real binary with a `JWT_ISSUERS_FILE`: an
//! issuer of tenant admins (`tenant-idp`, RSA, tenants acme and globex, no `globalAdmin`)
//! and one of global admins (`ops-idp`, EC, any tenant, `globalAdmin: true`). Dead letters
//! are made by a roster that cannot be reached.

use std::time::Duration;

use serde_json::{json, Value};

use super::harness::{
    eventually, ops_admin_token, tenant_and_ops_issuers_file, tenant_idp_token, Backend,
    DeadRoster, TestServer,
};

/// `serve` with the issuers file and a roster nobody answers: every message dead-letters
/// on its first failure.
async fn server_with_dead_roster(issuers: &str) -> TestServer {
    let dead = DeadRoster::unreachable();
    TestServer::start_raw(
        Backend::Memory,
        &dead.args(&["--visibility-timeout", "10ms", "--max-receives", "1"]),
        &dead.envs(&[("JWT_ISSUERS_FILE", issuers), ("SCAN_SEGMENTS", "1")]),
    )
    .await
}

/// `GET /v1/dead-letters<query>` as `token`: the status and the ids of the listed bodies
/// (`"broadcast"` for an envelope without an id), and `next`.
async fn list(server: &TestServer, token: &str, query: &str) -> (u16, Vec<String>, Value) {
    let response = reqwest::Client::new()
        .get(server.http(&format!("/v1/dead-letters{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let page: Value = response.json().await.unwrap_or(Value::Null);
    let ids = page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|letter| {
                    let body: Value =
                        serde_json::from_str(letter["body"].as_str().unwrap()).unwrap();
                    body["id"]
                        .as_str()
                        .or_else(|| body["shard"]["id"].as_str())
                        .unwrap_or("?")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    (status, ids, page["next"].clone())
}

async fn redrive(server: &TestServer, token: &str, query: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.http(&format!("/v1/dead-letters/redrive{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_admins_list_and_redrive_only_their_tenants_dead_letters() {
    let issuers = tenant_and_ops_issuers_file();
    let server = server_with_dead_roster(&issuers.display().to_string()).await;
    let acme_admin = tenant_idp_token("acme", "alice", &["admin"]);
    let acme_publisher = tenant_idp_token("acme", "alice", &["publisher"]);
    let globex_publisher = tenant_idp_token("globex", "alice", &["publisher"]);
    let ops = ops_admin_token();

    let users = |tenant: &str, id: &str| {
        json!({"id": id, "target": {"type": "users", "tenant": tenant, "users": ["bob"]},
               "data": 1})
    };
    for (token, body) in [
        (&acme_publisher, users("acme", "a-1")),
        (&globex_publisher, users("globex", "g-1")),
        (&acme_publisher, users("acme", "a-2")),
        (
            &ops,
            json!({"id": "b-1", "target": {"type": "broadcast"}, "data": 1}),
        ),
    ] {
        let (status, answer) = server.publish(token, &body).await;
        assert_eq!(status, 202, "{answer}");
    }
    eventually(Duration::from_secs(10), "four dead letters", || async {
        server.metric("switchboard_dead_letters").await >= 4.0
    })
    .await;

    // A tenant admin: its own tenant only, with or without `tenant`, paged over that.
    let (status, ids, next) = list(&server, &acme_admin, "").await;
    assert_eq!(
        (status, sorted(ids)),
        (200, vec!["a-1".into(), "a-2".into()])
    );
    assert!(next.is_null());
    let (status, first, next) = list(&server, &acme_admin, "?tenant=acme&limit=1").await;
    assert_eq!(status, 200);
    assert_eq!(first.len(), 1);
    let (_, second, last) = list(
        &server,
        &acme_admin,
        &format!("?tenant=acme&limit=1&next={}", next.as_str().unwrap()),
    )
    .await;
    assert_eq!(sorted([first, second].concat()), ["a-1", "a-2"]);
    assert!(last.is_null());
    // Another tenant's, and anything without role admin: 403.
    assert_eq!(list(&server, &acme_admin, "?tenant=globex").await.0, 403);
    assert_eq!(list(&server, &acme_publisher, "").await.0, 403);
    assert_eq!(redrive(&server, &acme_admin, "?tenant=globex").await.0, 403);
    assert_eq!(redrive(&server, &acme_publisher, "").await.0, 403);
    assert_eq!(list(&server, &acme_admin, "?tenant=a%23b").await.0, 400);

    // The global admin sees everything, broadcast included, or one tenant's.
    let (status, all, _) = list(&server, &ops, "").await;
    assert_eq!(status, 200);
    for id in ["a-1", "a-2", "g-1", "b-1"] {
        assert!(all.contains(&id.to_string()), "{id} missing from {all:?}");
    }
    let (_, globex, _) = list(&server, &ops, "?tenant=globex").await;
    assert_eq!(globex, ["g-1"]);

    // The tenant admin's redrive puts back its two letters, nothing else.
    let (_, before, _) = list(&server, &ops, "").await;
    let (status, answer) = redrive(&server, &acme_admin, "").await;
    assert_eq!((status, answer), (200, json!({"redriven": 2})));
    let (_, after, _) = list(&server, &ops, "").await;
    let others = |ids: &[String]| -> Vec<String> {
        ids.iter()
            .filter(|id| !id.starts_with("a-"))
            .cloned()
            .collect()
    };
    assert_eq!(
        others(&after),
        others(&before),
        "other letters stayed, in order"
    );
    // Redelivered to the same dead roster, they come back as new dead letters.
    eventually(Duration::from_secs(10), "acme letters back", || async {
        sorted(list(&server, &acme_admin, "").await.1) == ["a-1", "a-2"]
    })
    .await;
    let _ = std::fs::remove_dir_all(issuers.parent().unwrap());
}
