//! `message.settled` through `switchboard serve` (docs/design.md: Events): one event per
//! message at its final status — `delivered`, `unmatched`, `expired`, and `dead` (fault
//! injected: `FANOUT_MAX_CONNECTIONS` far below the tenant's real size, so the page chain is
//! dead-lettered as a runaway) — whose data is the receipt `GET /v1/messages/{id}` answers.
//! And the routing of `WEBHOOK_FILE`: each tenant's events reach its own endpoint only, the
//! rest the global one.
//!
//! `partial` needs posts that keep failing, which `serve`'s in-process poster never has (a
//! socket that cannot take a frame is closed and counted gone): the publisher's own tests
//! cover it with a scripted poster.

use std::time::Duration;

use serde_json::{json, Value};

use super::events_presence::{close, events_server, tenant_endpoints_server};
use super::harness::{token, Backend, Client, TestServer};
use super::webhook_receiver::{is_settled, is_user_event, Receiver};

const WITHIN: Duration = Duration::from_secs(20);

async fn receipt(server: &TestServer, token: &str, id: &str) -> Value {
    let response = reqwest::Client::new()
        .get(server.http(&format!("/v1/messages/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "receipt of {id}");
    response.json().await.unwrap()
}

/// Waits for the `message.settled` of `id`, asserts its status and that its data is the
/// receipt (counts, target, times) read back with `reader`, and that it came once.
async fn assert_settled(
    server: &TestServer,
    receiver: &Receiver,
    reader: &str,
    id: &str,
    status: &str,
) -> Value {
    let event = receiver
        .wait_event(WITHIN, &format!("{id} settled"), |e| is_settled(e, id))
        .await;
    super::events_presence::assert_envelope(&event);
    assert_eq!(event["data"]["status"], status, "{event}");
    let read = receipt(server, reader, id).await;
    assert_eq!(event["data"], read, "the event's receipt is the API's");
    let deliveries = receiver.deliveries();
    let of_it: Vec<_> = deliveries
        .iter()
        .filter(|d| is_settled(&d.event, id))
        .collect();
    assert_eq!(of_it.len(), 1, "{id} settled once: {of_it:#?}");
    event
}

/// Delivered (3 connections of 2 users), unmatched (nobody connected) and expired (an
/// `expiresAt` already past): one `message.settled` each, the receipt's counts.
pub async fn settled_carries_the_final_receipt(backend: Backend) {
    let receiver = Receiver::start().await;
    let server = events_server(backend, &receiver, &[]).await;
    let mut clients = vec![
        Client::connect(&server, &token("acme", "alice", &[])).await,
        Client::connect(&server, &token("acme", "alice", &[])).await,
        Client::connect(&server, &token("acme", "bob", &[])).await,
    ];
    let publisher = token("acme", "backend", &["publisher"]);

    let to_two = json!({"id":"s-delivered","target":{"type":"users","tenant":"acme","users":["alice","bob"]},"data":1});
    assert_eq!(server.publish(&publisher, &to_two).await.0, 202);
    for client in &mut clients {
        assert_eq!(client.next_json().await["id"], "s-delivered");
    }
    let event = assert_settled(&server, &receiver, &publisher, "s-delivered", "delivered").await;
    assert_eq!(
        (&event["data"]["matched"], &event["data"]["delivered"]),
        (&json!(3), &json!(3))
    );

    let to_nobody = json!({"id":"s-unmatched","target":{"type":"users","tenant":"acme","users":["carol"]},"data":2});
    assert_eq!(server.publish(&publisher, &to_nobody).await.0, 202);
    let event = assert_settled(&server, &receiver, &publisher, "s-unmatched", "unmatched").await;
    assert_eq!(event["data"]["matched"], 0);

    let late = json!({"id":"s-expired","target":{"type":"tenant","tenant":"acme"},"data":3,"expiresAt":"2020-01-01T00:00:00Z"});
    assert_eq!(server.publish(&publisher, &late).await.0, 202);
    let event = assert_settled(&server, &receiver, &publisher, "s-expired", "expired").await;
    assert_eq!(event["data"]["delivered"], 0);
    for client in clients {
        close(client).await;
    }
}

/// Dead: a tenant of 30 connections while `FANOUT_MAX_CONNECTIONS` says 1 and pages hold
/// 1 connection, so the chain is past its hop bound (2 × 1 + 2 × 5 + 10 = 22) before its
/// end and is dead-lettered as a runaway: one `message.settled`, `dead`, with the counts of
/// the pages that ran.
pub async fn settled_reports_a_dead_message(backend: Backend) {
    const CONNECTIONS: usize = 30;
    let receiver = Receiver::start().await;
    let server = events_server(
        backend,
        &receiver,
        &[("FANOUT_SHARD_SIZE", "1"), ("FANOUT_MAX_CONNECTIONS", "1")],
    )
    .await;
    let mut clients = Vec::new();
    for n in 0..CONNECTIONS {
        clients.push(Client::connect(&server, &token("acme", &format!("u-{n}"), &[])).await);
    }
    let publisher = token("acme", "backend", &["publisher"]);
    let everyone = json!({"id":"s-dead","target":{"type":"tenant","tenant":"acme"},"data":1});
    assert_eq!(server.publish(&publisher, &everyone).await.0, 202);
    let event = assert_settled(&server, &receiver, &publisher, "s-dead", "dead").await;
    let delivered = event["data"]["delivered"].as_u64().unwrap();
    assert!(
        delivered > 0 && delivered < CONNECTIONS as u64,
        "a runaway stops part way: {event}"
    );
    assert_eq!(
        server.metric("switchboard_dead_letters").await,
        1.0,
        "the runaway item is the one dead letter"
    );
}

/// A broadcast to 400 connections in pages of 10 over 8 scan segments (chains that end at
/// about the same time): exactly one `message.settled` (one delivery, the receiver answering
/// 200), `tenant` null, its counts the receipt's.
pub async fn a_concurrent_broadcast_settles_once(backend: Backend) {
    const CONNECTIONS: usize = 400;
    let receiver = Receiver::start().await;
    let server = events_server(
        backend,
        &receiver,
        &[("FANOUT_SHARD_SIZE", "10"), ("SCAN_SEGMENTS", "8")],
    )
    .await;
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for chunk in (0..CONNECTIONS).collect::<Vec<_>>().chunks(100) {
        let tokens: Vec<String> = chunk
            .iter()
            .map(|n| token(&format!("t-{}", n % 4), &format!("u-{n}"), &[]))
            .collect();
        let server = &server;
        clients.extend(
            futures::future::join_all(tokens.iter().map(|t| Client::connect(server, t))).await,
        );
    }
    let admin = token("ops", "root", &["admin"]);
    let all = json!({"id":"s-broadcast","target":{"type":"broadcast"},"data":1});
    assert_eq!(server.publish(&admin, &all).await.0, 202);
    let event = assert_settled(&server, &receiver, &admin, "s-broadcast", "delivered").await;
    assert!(event["data"]["tenant"].is_null(), "{event}");
    assert_eq!(
        (&event["data"]["matched"], &event["data"]["delivered"]),
        (&json!(CONNECTIONS), &json!(CONNECTIONS))
    );
    // Late pages would have settled it again by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = receiver
        .deliveries()
        .iter()
        .filter(|d| d.event["type"] == "message.settled")
        .count();
    assert_eq!(settled, 1);
}

/// With receipts off (`RECEIPT_TTL_SECS=0`) there is no `message.settled`; presence events
/// still come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_receipts_nothing_settles() {
    let receiver = Receiver::start().await;
    let server = events_server(Backend::Memory, &receiver, &[("RECEIPT_TTL_SECS", "0")]).await;
    let mut alice = Client::connect(&server, &token("acme", "alice", &[])).await;
    let publisher = token("acme", "backend", &["publisher"]);
    let hello = json!({"id":"no-receipt","target":{"type":"users","tenant":"acme","users":["alice"]},"data":1});
    assert_eq!(server.publish(&publisher, &hello).await.0, 202);
    assert_eq!(alice.next_json().await["id"], "no-receipt");
    close(alice).await;
    let events = receiver
        .wait_until(WITHIN, "alice offline", |events| {
            events.iter().any(|e| e["type"] == "user.offline")
        })
        .await;
    assert!(
        !events.iter().any(|e| e["type"] == "message.settled"),
        "{events:#?}"
    );
}

/// `WEBHOOK_FILE` gives acme and globex endpoints of their own; initech and broadcasts
/// use the global one (`WEBHOOK_URL`). Each receiver verifies with its own secret (another
/// tenant's event there would be refused as unsigned for it) and gets exactly the events of
/// its tenants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_gets_its_own_events_only() {
    let acme = Receiver::start().await;
    let globex = Receiver::start().await;
    let global = Receiver::start().await;
    let server = tenant_endpoints_server(&acme, &globex, &global, &[]).await;

    let tenants = ["acme", "globex", "initech"];
    let mut clients = Vec::new();
    for tenant in tenants {
        clients.push(Client::connect(&server, &token(tenant, "user", &[])).await);
    }
    for (n, tenant) in tenants.iter().enumerate() {
        let publisher = token(tenant, "backend", &["publisher"]);
        let message = json!({"id": format!("m-{tenant}"), "target":{"type":"users","tenant":tenant,"users":["user"]},"data":n});
        assert_eq!(server.publish(&publisher, &message).await.0, 202);
        assert_eq!(clients[n].next_json().await["id"], format!("m-{tenant}"));
    }
    let admin = token("ops", "root", &["admin"]);
    let all = json!({"id":"m-all","target":{"type":"broadcast"},"data":"all"});
    assert_eq!(server.publish(&admin, &all).await.0, 202);
    for client in clients {
        close(client).await;
    }

    let routed = [(&acme, "acme"), (&globex, "globex"), (&global, "initech")];
    for (receiver, tenant) in routed {
        receiver
            .wait_event(WITHIN, "offline", |e| {
                is_user_event(e, "user.offline", tenant, "user")
            })
            .await;
        receiver
            .wait_event(WITHIN, "settled", |e| is_settled(e, &format!("m-{tenant}")))
            .await;
    }
    global
        .wait_event(WITHIN, "broadcast settled", |e| is_settled(e, "m-all"))
        .await;
    // Anything misrouted would have come by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let story = |receiver: &Receiver| -> Vec<(String, Value)> {
        let mut story: Vec<(String, Value)> = receiver
            .events()
            .iter()
            .map(|e| {
                let about = match e["type"].as_str().unwrap() {
                    "message.settled" => json!([e["data"]["tenant"], e["data"]["id"]]),
                    _ => json!([e["data"]["tenant"], e["data"]["user"]]),
                };
                (e["type"].as_str().unwrap().to_string(), about)
            })
            .collect();
        story.sort_by_key(|(kind, about)| format!("{kind} {about}"));
        story
    };
    for (receiver, tenant) in routed {
        // Each answered 200: one delivery per event, none announced twice.
        assert_eq!(receiver.deliveries().len(), receiver.events().len());
        let mut expected = vec![
            (
                "message.settled".to_string(),
                json!([tenant, format!("m-{tenant}")]),
            ),
            ("user.offline".to_string(), json!([tenant, "user"])),
            ("user.online".to_string(), json!([tenant, "user"])),
        ];
        if tenant == "initech" {
            expected.push(("message.settled".to_string(), json!([null, "m-all"])));
        }
        expected.sort_by_key(|(kind, about)| format!("{kind} {about}"));
        assert_eq!(
            story(receiver),
            expected,
            "the events at {tenant}'s endpoint"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_carries_the_final_receipt_memory_roster() {
    settled_carries_the_final_receipt(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_carries_the_final_receipt_dynamodb_roster() {
    settled_carries_the_final_receipt(Backend::Dynamodb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_reports_a_dead_message_memory_roster() {
    settled_reports_a_dead_message(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_reports_a_dead_message_dynamodb_roster() {
    settled_reports_a_dead_message(Backend::Dynamodb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_broadcast_settles_once_memory_roster() {
    a_concurrent_broadcast_settles_once(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_broadcast_settles_once_dynamodb_roster() {
    a_concurrent_broadcast_settles_once(Backend::Dynamodb).await;
}
