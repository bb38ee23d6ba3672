//! Delivery receipts and idempotent publish on the real binary (SPEC §15): counts and
//! status through `GET /v1/messages/{id}`, one `202` among 20 concurrent publishes of one
//! id, the tenant rules of the read, and expiry. Gone, partial/dead and 2,500-connection
//! sharded receipts need a management endpoint that fails on purpose: they are in
//! `services/lambdas/tests/publisher_sharding.rs` (fake endpoint) and the core's
//! `publisher::receipt_tests` (scripted pusher).

use std::time::Duration;

use serde_json::{json, Value};

use super::harness::{eventually, token, Backend, Client, TestServer};

async fn receipt(server: &TestServer, token: &str, path: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(server.http(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub async fn receipts_report_delivery_and_repeated_ids_are_not_resent(backend: Backend) {
    let server = TestServer::start(backend);
    let mut clients = vec![
        Client::connect(&server, &token("acme", "alice", &[])).await,
        Client::connect(&server, &token("acme", "alice", &[])).await,
        Client::connect(&server, &token("acme", "bob", &[])).await,
        Client::connect(&server, &token("acme", "carol", &[])).await,
    ];
    let publisher = token("acme", "backend", &["publisher"]);

    // A message to 3 users with 4 connections.
    let to_three = json!({"id":"r-1","target":{"type":"users","tenant":"acme","users":["alice","bob","carol"]},"data":1});
    let (status, body) = server.publish(&publisher, &to_three).await;
    assert_eq!((status, body), (202, json!({"id": "r-1"})));
    for client in &mut clients {
        assert_eq!(client.next_json().await["id"], "r-1");
    }
    eventually(Duration::from_secs(10), "r-1 delivered", || async {
        receipt(&server, &publisher, "/v1/messages/r-1").await.1["status"] == "delivered"
    })
    .await;
    let (status, r1) = receipt(&server, &publisher, "/v1/messages/r-1").await;
    assert_eq!(status, 200);
    assert_eq!(r1["tenant"], "acme");
    assert_eq!(r1["target"]["users"], json!(["alice", "bob", "carol"]));
    assert_eq!(
        (&r1["matched"], &r1["delivered"], &r1["gone"], &r1["failed"]),
        (&json!(4), &json!(4), &json!(0), &json!(0))
    );
    assert!(r1["acceptedAt"].is_string() && r1["updatedAt"].is_string());

    // The same id 20 times at once: one 202, nineteen 200s with the receipt.
    let same = json!({"id":"r-same","target":{"type":"tenant","tenant":"acme"},"data":2});
    let answers =
        futures::future::join_all((0..20).map(|_| server.publish(&publisher, &same))).await;
    let accepted = answers.iter().filter(|(s, _)| *s == 202).count();
    let repeated: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b)
        .collect();
    assert_eq!((accepted, repeated.len()), (1, 19), "{answers:?}");
    assert!(repeated
        .iter()
        .all(|b| b["id"] == "r-same" && b["status"].is_string()));
    eventually(Duration::from_secs(10), "r-same delivered", || async {
        let (_, r) = receipt(&server, &publisher, "/v1/messages/r-same").await;
        r["status"] == "delivered" && r["delivered"] == 4
    })
    .await;
    for client in &mut clients {
        assert_eq!(client.next_json().await["id"], "r-same");
        // Nothing else is on its way: the next frame answers this ping.
        let pong = client.request(r#"{"action":"ping"}"#).await;
        assert_eq!(pong["type"], "pong", "r-same exactly once: {pong}");
    }

    // Who may read it: another tenant's publisher gets 404, an admin reads it with
    // ?tenant=, and without a tenant a global admin asks for the broadcast receipt.
    let globex = token("globex", "backend", &["publisher"]);
    let (status, body) = receipt(&server, &globex, "/v1/messages/r-1").await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = receipt(&server, &globex, "/v1/messages/r-1?tenant=acme").await;
    assert_eq!(status, 404, "never 403");
    let admin = token("ops", "root", &["admin"]);
    let (status, read) = receipt(&server, &admin, "/v1/messages/r-1?tenant=acme").await;
    assert_eq!(status, 200);
    assert_eq!(read["id"], "r-1");
    assert_eq!(receipt(&server, &admin, "/v1/messages/r-1").await.0, 404);
    let reader = token("acme", "alice", &[]);
    assert_eq!(receipt(&server, &reader, "/v1/messages/r-1").await.0, 403);
    assert_eq!(
        receipt(&server, &publisher, "/v1/messages/nope").await.0,
        404
    );
    let too_long = format!("/v1/messages/{}", "x".repeat(1_000));
    assert_eq!(receipt(&server, &publisher, &too_long).await.0, 404);

    // A broadcast receipt has a null tenant.
    let (status, _) = server
        .publish(
            &admin,
            &json!({"id":"r-all","target":{"type":"broadcast"},"data":4}),
        )
        .await;
    assert_eq!(status, 202);
    eventually(Duration::from_secs(10), "r-all delivered", || async {
        let (_, r) = receipt(&server, &admin, "/v1/messages/r-all").await;
        r["status"] == "delivered" && r["tenant"].is_null() && r["matched"] == 4
    })
    .await;

    // An expired message is reported `expired`.
    let (status, _) = server
        .publish(&publisher, &json!({"id":"r-old","target":{"type":"tenant","tenant":"acme"},"data":5,"expiresAt":"2020-01-01T00:00:00Z"}))
        .await;
    assert_eq!(status, 202);
    eventually(Duration::from_secs(10), "r-old expired", || async {
        receipt(&server, &publisher, "/v1/messages/r-old").await.1["status"] == "expired"
    })
    .await;
}

pub async fn receipts_off_means_no_receipts_and_no_idempotency(backend: Backend) {
    let server = TestServer::start_with(backend, &[], &[("RECEIPT_TTL_SECS", "0")]);
    let publisher = token("acme", "backend", &["publisher"]);
    let again = json!({"id":"twice","target":{"type":"tenant","tenant":"acme"},"data":1});
    assert_eq!(server.publish(&publisher, &again).await.0, 202);
    assert_eq!(server.publish(&publisher, &again).await.0, 202);
    assert_eq!(
        receipt(&server, &publisher, "/v1/messages/twice").await.0,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_receipt_ttl_refuses_to_start_naming_it() {
    let (status, stderr) = super::harness::serve_refused(
        &["--listen", "127.0.0.1:0"],
        &[
            ("JWT_HS256_SECRET", super::harness::SECRET),
            ("RECEIPT_TTL_SECS", "a day"),
        ],
    );
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("RECEIPT_TTL_SECS"), "{stderr}");
}
