//! The API the operator console reads (issue 26), on `serve` with a `JWT_ISSUERS_FILE`: an
//! issuer of tenant-scoped tokens (`tenant-idp`, RSA, tenants acme and globex) and one of
//! global admins (`ops-idp`, EC). `GET /v1/tenants` and the presence summary follow
//! sockets as they open and close, with presence's role rules; a receipt says when it is
//! final; one dead letter is redriven by its id.

use std::time::Duration;

use serde_json::{json, Value};

use super::harness::{
    eventually, ops_admin_token, tenant_and_ops_issuers_file, tenant_idp_token, Backend, Client,
    DeadRoster, TestServer,
};

/// `method path` as `token` (none: no `Authorization`): the status and the JSON answer.
async fn call(server: &TestServer, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let request = match method {
        "POST" => client.post(server.http(path)),
        _ => client.get(server.http(path)),
    };
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn summary(tenant: &str, connections: u64, users: u64) -> Value {
    json!({"tenant": tenant, "connections": connections, "users": users, "complete": true})
}

/// Polls `GET /v1/tenants` as `token` until its `tenants` are `expected` (within 1 s).
async fn tenants_become(server: &TestServer, token: &str, expected: Value) {
    eventually(Duration::from_secs(1), &format!("tenants {expected}"), || {
        let expected = expected.clone();
        async move { call(server, "GET", "/v1/tenants", Some(token)).await.1["tenants"] == expected }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_and_summaries_follow_sockets_with_presence_role_rules() {
    let issuers = tenant_and_ops_issuers_file();
    let server = TestServer::start_raw(
        Backend::Memory,
        &[],
        &[("JWT_ISSUERS_FILE", &issuers.display().to_string())],
    )
    .await;
    let ops = ops_admin_token();
    let acme_admin = tenant_idp_token("acme", "ann", &["admin"]);
    let acme_publisher = tenant_idp_token("acme", "backend", &["publisher"]);
    let globex_publisher = tenant_idp_token("globex", "backend", &["publisher"]);

    let (status, body) = call(&server, "GET", "/v1/tenants", Some(&ops)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"caller": {"tenant": "ops", "user": "root", "globalAdmin": true},
               "tenants": [], "listed": "all", "truncated": false})
    );

    let alice = Client::connect(&server, &tenant_idp_token("acme", "alice", &[])).await;
    let mut bob = Client::connect(&server, &tenant_idp_token("acme", "bob", &[])).await;
    let _gina = Client::connect(&server, &tenant_idp_token("globex", "gina", &[])).await;
    tenants_become(
        &server,
        &ops,
        json!([summary("acme", 2, 2), summary("globex", 1, 1)]),
    )
    .await;
    // A tenant-scoped admin: exactly its own tenant.
    let (status, body) = call(&server, "GET", "/v1/tenants", Some(&acme_admin)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"caller": {"tenant": "acme", "user": "ann", "globalAdmin": false},
               "tenants": [summary("acme", 2, 2)], "listed": "all", "truncated": false})
    );
    // Not an admin: 403 (what the console refuses at sign-in); no token: 401.
    let (status, body) = call(&server, "GET", "/v1/tenants", Some(&acme_publisher)).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
    assert!(
        body["message"].as_str().unwrap().contains("admin"),
        "{body}"
    );
    let (status, body) = call(&server, "GET", "/v1/tenants", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );

    // The summary: presence's role rules.
    let path = "/v1/tenants/acme/presence/summary";
    for token in [&ops, &acme_admin, &acme_publisher] {
        let (status, body) = call(&server, "GET", path, Some(token)).await;
        assert_eq!((status, body), (200, summary("acme", 2, 2)));
    }
    let reader = tenant_idp_token("acme", "alice", &[]);
    for token in [
        &globex_publisher,
        &reader,
        &tenant_idp_token("globex", "g", &["admin"]),
    ] {
        assert_eq!(call(&server, "GET", path, Some(token)).await.0, 403);
    }
    assert_eq!(call(&server, "GET", path, None).await.0, 401);
    let (status, _) = call(
        &server,
        "GET",
        "/v1/tenants/a%23b/presence/summary",
        Some(&ops),
    )
    .await;
    assert_eq!(status, 400);

    // One socket closes: both views say 1 within a second.
    bob.socket.close(None).await.unwrap();
    drop(bob);
    tenants_become(
        &server,
        &ops,
        json!([summary("acme", 1, 1), summary("globex", 1, 1)]),
    )
    .await;
    assert_eq!(
        call(&server, "GET", path, Some(&ops)).await.1,
        summary("acme", 1, 1)
    );
    drop(alice);
    let _ = std::fs::remove_dir_all(issuers.parent().unwrap());
}

/// A tenant message paced to one post a second (one connection a work item) is followed
/// through its receipt: not final while pages are outstanding, final once delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_says_final_once_nothing_more_will_change_it() {
    let server = TestServer::start_with(
        Backend::Memory,
        &[],
        &[("FANOUT_RATE", "1"), ("FANOUT_SHARD_SIZE", "1")],
    )
    .await;
    let mut sockets = Vec::new();
    for user in ["alice", "bob", "carol"] {
        sockets.push(Client::connect(&server, &super::harness::token("acme", user, &[])).await);
    }
    let publisher = super::harness::token("acme", "backend", &["publisher"]);
    let (status, body) = server
        .publish(
            &publisher,
            &json!({"id": "paced", "target": {"type": "tenant", "tenant": "acme"}, "data": 1}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let path = "/v1/messages/paced?tenant=acme";
    let (status, first) = call(&server, "GET", path, Some(&publisher)).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["final"], false, "{first}");
    assert!(
        ["queued", "delivering"].contains(&first["status"].as_str().unwrap()),
        "{first}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let last = loop {
        let (_, receipt) = call(&server, "GET", path, Some(&publisher)).await;
        if receipt["final"] == true {
            break receipt;
        }
        assert_ne!(
            receipt["status"], "delivered",
            "delivered is final: {receipt}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "never final: {receipt}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (last["status"].as_str(), last["delivered"].as_u64()),
        (Some("delivered"), Some(3))
    );
}

/// `POST /v1/dead-letters/redrive?id=` puts back just that letter, if the caller's scope
/// holds it (404 `not_found` otherwise); the others stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_dead_letter_is_redriven_by_its_id() {
    let issuers = tenant_and_ops_issuers_file();
    let dead = DeadRoster::unreachable();
    let server = TestServer::start_raw(
        Backend::Memory,
        &dead.args(&["--visibility-timeout", "10ms", "--max-receives", "1"]),
        &dead.envs(&[
            ("JWT_ISSUERS_FILE", &issuers.display().to_string()),
            ("SCAN_SEGMENTS", "1"),
        ]),
    )
    .await;
    let ops = ops_admin_token();
    let acme_admin = tenant_idp_token("acme", "ann", &["admin"]);
    let globex_admin = tenant_idp_token("globex", "gus", &["admin"]);
    for (tenant, id) in [("acme", "a-1"), ("acme", "a-2"), ("globex", "g-1")] {
        let publisher = tenant_idp_token(tenant, "backend", &["publisher"]);
        let body = json!({"id": id, "target": {"type": "users", "tenant": tenant,
                          "users": ["bob"]}, "data": 1});
        assert_eq!(server.publish(&publisher, &body).await.0, 202);
    }
    eventually(Duration::from_secs(10), "three dead letters", || async {
        server.metric("switchboard_dead_letters").await >= 3.0
    })
    .await;
    // Letter id of each message id, as the global admin lists them.
    let letters = |page: &Value| -> Vec<(String, String)> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|letter| {
                let body: Value = serde_json::from_str(letter["body"].as_str().unwrap()).unwrap();
                (
                    body["id"].as_str().unwrap().to_string(),
                    letter["id"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let (_, page) = call(&server, "GET", "/v1/dead-letters", Some(&ops)).await;
    let before = letters(&page);
    let letter_of = |message: &str| {
        before
            .iter()
            .find(|(id, _)| id == message)
            .map(|(_, letter)| letter.clone())
            .unwrap()
    };
    let a1 = letter_of("a-1");
    let redrive = |id: &str| format!("/v1/dead-letters/redrive?id={id}");

    // Not in the caller's scope, or no such letter: 404, nothing moves.
    let (status, body) = call(&server, "POST", &redrive(&a1), Some(&globex_admin)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (status, _) = call(&server, "POST", &redrive("no-such-letter"), Some(&ops)).await;
    assert_eq!(status, 404);
    let publisher = tenant_idp_token("acme", "backend", &["publisher"]);
    assert_eq!(
        call(&server, "POST", &redrive(&a1), Some(&publisher))
            .await
            .0,
        403
    );
    assert_eq!(call(&server, "POST", &redrive(&a1), None).await.0, 401);

    // The tenant admin redrives a-1 by its letter id: just that one.
    let (status, body) = call(&server, "POST", &redrive(&a1), Some(&acme_admin)).await;
    assert_eq!((status, body), (200, json!({"redriven": 1})));
    let (_, page) = call(&server, "GET", "/v1/dead-letters", Some(&ops)).await;
    let after: Vec<String> = letters(&page)
        .into_iter()
        .map(|(_, letter)| letter)
        .collect();
    assert!(!after.contains(&a1), "a-1's letter is gone: {after:?}");
    for message in ["a-2", "g-1"] {
        assert!(
            after.contains(&letter_of(message)),
            "{message} stayed: {after:?}"
        );
    }
    assert_eq!(
        call(&server, "POST", &redrive(&a1), Some(&acme_admin))
            .await
            .0,
        404
    );
    // Redelivered to the same dead roster, it comes back as a new letter.
    eventually(Duration::from_secs(10), "a-1 dead again", || async {
        let (_, page) = call(
            &server,
            "GET",
            "/v1/dead-letters?tenant=acme",
            Some(&acme_admin),
        )
        .await;
        letters(&page)
            .iter()
            .any(|(id, letter)| id == "a-1" && *letter != a1)
    })
    .await;
    let _ = std::fs::remove_dir_all(issuers.parent().unwrap());
}

/// `serve --roster dynamodb`: the roster cannot name its live tenants without a scan, so a
/// global admin gets the `TENANTS_FILE` tenants (`"listed":"configured"`) and asks for any
/// other tenant's summary by name (a `Query`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_dynamodb_roster_the_overview_lists_the_configured_tenants() {
    let dir = std::env::temp_dir().join(format!("console-api-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tenants.json");
    std::fs::write(&file, r#"{"tenants":{"initech":{},"acme":{}}}"#).unwrap();
    let server = TestServer::start_with(
        Backend::Dynamodb,
        &[],
        &[("TENANTS_FILE", &file.display().to_string())],
    )
    .await;
    let admin = super::harness::token("ops", "root", &["admin"]);
    let _sockets = [
        Client::connect(&server, &super::harness::token("acme", "alice", &[])).await,
        Client::connect(&server, &super::harness::token("acme", "bob", &[])).await,
        Client::connect(&server, &super::harness::token("globex", "gina", &[])).await,
    ];
    let (status, body) = call(&server, "GET", "/v1/tenants", Some(&admin)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["listed"], "configured");
    assert_eq!(
        body["tenants"],
        json!([summary("acme", 2, 2), summary("initech", 0, 0)])
    );
    let (status, body) = call(
        &server,
        "GET",
        "/v1/tenants/globex/presence/summary",
        Some(&admin),
    )
    .await;
    assert_eq!((status, body), (200, summary("globex", 1, 1)));
    let _ = std::fs::remove_dir_all(dir);
}
