//! Delivery receipts and idempotent publish through `serve` (docs/design.md: Receipts): counts and
//! status through `GET /v1/messages/{id}`, one `202` among 20 concurrent publishes of one
//! id, the tenant rules of the read, expiry, and (DynamoDB roster) a gone connection.
//! A paged tenant message of 2,500 sockets. Partial/dead receipts need posts that fail on
//! purpose, which `serve`'s in-process poster never does (a socket that cannot take a frame
//! is closed and gone): they are in `services/lambdas/tests/publisher_work_items.rs` (fake
//! management and SQS endpoints) and the core's `publisher::tests::receipts` (scripted
//! poster).

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
    let server = TestServer::start(backend).await;
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
    let server = TestServer::start_with(backend, &[], &[("RECEIPT_TTL_SECS", "0")]).await;
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
    super::harness::assert_refused(status, &stderr, "RECEIPT_TTL_SECS");
    assert!(stderr.contains("RECEIPT_TTL_SECS"), "{stderr}");
}

/// On the binary with a DynamoDB roster: 3 users with 4 connections, one of them gone (a
/// roster item of this server's own, 5 minutes old, with no socket — what a crashed socket
/// leaves) → `delivered` with matched 4, delivered 3, gone 1. The memory roster has no way
/// to hold an item without its socket, so this runs on DynamoDB Local only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_connection_is_counted_on_the_receipt() {
    use switchboard_core::roster::{ConnectionRecord, RosterStore};

    let endpoint = super::harness::dynamodb_endpoint();
    let table = format!("e2e-gone-{}", uuid::Uuid::new_v4());
    let history_table = format!("{table}-history");
    let envs = [
        ("DYNAMODB_ENDPOINT", endpoint.as_str()),
        ("ROSTER_TABLE", table.as_str()),
        ("HISTORY_TABLE", history_table.as_str()),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_REGION", "us-east-1"),
    ];
    let server = TestServer::start_with(
        Backend::Memory,
        &["--roster", "dynamodb", "--create-table"],
        &envs,
    )
    .await;
    let mut clients = vec![
        Client::connect(&server, &token("acme", "alice", &[])).await,
        Client::connect(&server, &token("acme", "alice", &[])).await,
        Client::connect(&server, &token("acme", "bob", &[])).await,
    ];
    // The first four characters of every connection id are this process's tag.
    let tag: String = clients[0].connection_id.chars().take(4).collect();
    let dynamo = switchboard_aws::DynamoConfig {
        roster_table: table.clone(),
        history_table: history_table.clone(),
        scan_segments: 1,
        endpoint: Some(endpoint.clone()),
        local: switchboard_aws::LocalDefaults {
            region: true,
            credentials: true,
        },
    };
    let roster = switchboard_aws::dynamo::DynamoStores::connect(&dynamo)
        .await
        .roster();
    let stale = ConnectionRecord::from_raw(
        &format!("{tag}crashedSocket"),
        "acme",
        "carol",
        vec![],
        time::OffsetDateTime::now_utc() - time::Duration::minutes(5),
        7_500,
    )
    .unwrap();
    roster.put(&stale).await.unwrap();

    let publisher = token("acme", "backend", &["publisher"]);
    let to_three = json!({"id":"with-gone","target":{"type":"users","tenant":"acme","users":["alice","bob","carol"]},"data":1});
    assert_eq!(server.publish(&publisher, &to_three).await.0, 202);
    for client in &mut clients {
        assert_eq!(client.next_json().await["id"], "with-gone");
    }
    eventually(Duration::from_secs(10), "with-gone delivered", || async {
        receipt(&server, &publisher, "/v1/messages/with-gone")
            .await
            .1["status"]
            == "delivered"
    })
    .await;
    let (_, r) = receipt(&server, &publisher, "/v1/messages/with-gone").await;
    assert_eq!(
        (&r["matched"], &r["delivered"], &r["gone"], &r["failed"]),
        (&json!(4), &json!(3), &json!(1), &json!(0)),
        "{r}"
    );
}

/// A paged tenant message on the binary: 2,500 live sockets, pages of 100 (25 work items
/// chained through the in-process queue); the receipt ends `delivered` with 2,500 matched and
/// delivered once every page ran, and each socket got the message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paged_tenant_message_counts_every_page_on_its_receipt() {
    const CONNECTIONS: usize = 2_500;
    let server =
        TestServer::start_with(Backend::Memory, &[], &[("FANOUT_SHARD_SIZE", "100")]).await;
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for chunk in (0..CONNECTIONS).collect::<Vec<_>>().chunks(250) {
        let tokens: Vec<String> = chunk
            .iter()
            .map(|n| token("acme", &format!("u-{n}"), &[]))
            .collect();
        let server = &server;
        clients.extend(
            futures::future::join_all(tokens.iter().map(|t| Client::connect(server, t))).await,
        );
    }
    let publisher = token("acme", "backend", &["publisher"]);
    let everyone = json!({"id":"r-big","target":{"type":"tenant","tenant":"acme"},"data":"all"});
    let (status, _) = server.publish(&publisher, &everyone).await;
    assert_eq!(status, 202);
    eventually(Duration::from_secs(60), "r-big delivered", || async {
        receipt(&server, &publisher, "/v1/messages/r-big").await.1["status"] == "delivered"
    })
    .await;
    let (_, big) = receipt(&server, &publisher, "/v1/messages/r-big").await;
    assert_eq!(
        (
            &big["matched"],
            &big["delivered"],
            &big["gone"],
            &big["failed"]
        ),
        (
            &json!(CONNECTIONS),
            &json!(CONNECTIONS),
            &json!(0),
            &json!(0)
        ),
        "{big}"
    );
    let ids = futures::future::join_all(clients.iter_mut().map(|c| async {
        let frame = c.next_json().await;
        let pong = c.request(r#"{"action":"ping"}"#).await;
        (frame["id"].clone(), pong["type"].clone())
    }))
    .await;
    assert!(
        ids.iter().all(|(id, pong)| id == "r-big" && pong == "pong"),
        "every socket got r-big once"
    );
}
