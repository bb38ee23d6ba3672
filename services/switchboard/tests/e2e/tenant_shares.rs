//! Per-tenant shares of `serve`'s shared bounds (docs/design.md: Receipts, The one-machine
//! binary): one tenant's flood of publishes leaves another tenant's receipt — and the
//! idempotency of its retry — alone, and one tenant holding its share of `MAX_CONNECTIONS`
//! is refused (429) while another tenant's handshakes open.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use super::hardening::handshake_status;
use super::harness::{eventually, token, Backend, Client, TestServer};

/// Receipts the store holds in these tests (`RECEIPT_CAPACITY`): a flood of twice that
/// many evicts everything older with one shared bound.
const RECEIPTS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenants_flood_of_publishes_leaves_another_tenants_receipt_and_retry_alone() {
    let capacity = RECEIPTS.to_string();
    let server = TestServer::start_with(
        Backend::Memory,
        &[],
        &[
            ("RECEIPT_CAPACITY", capacity.as_str()),
            ("TENANT_SHARE_PERCENT", "25"),
        ],
    )
    .await;
    let quiet = token("quiet", "backend", &["publisher"]);
    let mut bob = Client::connect(&server, &token("quiet", "bob", &[])).await;
    let once =
        json!({"id":"q-1","target":{"type":"users","tenant":"quiet","users":["bob"]},"data":1});
    assert_eq!(server.publish(&quiet, &once).await.0, 202);
    assert_eq!(bob.next_json().await["id"], "q-1");

    // The loud tenant publishes twice the store's capacity (no one is connected there).
    let loud = token("loud", "backend", &["publisher"]);
    let accepted = futures::stream::iter(0..2 * RECEIPTS)
        .map(|i| {
            let server = &server;
            let loud = &loud;
            async move {
                let body = json!({"id":format!("l-{i}"),"target":{"type":"tenant","tenant":"loud"},"data":i});
                loop {
                    match server.publish(loud, &body).await.0 {
                        202 => return true,
                        // The loud tenant's share of the queue: wait for it to drain.
                        429 | 503 => tokio::time::sleep(Duration::from_millis(20)).await,
                        _ => return false,
                    }
                }
            }
        })
        .buffer_unordered(16)
        .filter(|accepted| std::future::ready(*accepted))
        .count()
        .await;
    assert_eq!(accepted, 2 * RECEIPTS);

    // The quiet tenant's receipt is still there, and its retry is answered 200, not sent.
    let response = reqwest::Client::new()
        .get(server.http("/v1/messages/q-1"))
        .bearer_auth(&quiet)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "q-1's receipt was evicted");
    let (status, body) = server.publish(&quiet, &once).await;
    assert_eq!(status, 200, "the retry was taken as a new message: {body}");
    assert_eq!(body["id"], "q-1");
    // A next message to bob (after the retry in bob's stream order) comes with nothing
    // before it: q-1 was not sent again.
    let next =
        json!({"id":"q-2","target":{"type":"users","tenant":"quiet","users":["bob"]},"data":2});
    assert_eq!(server.publish(&quiet, &next).await.0, 202);
    let before = bob.frames_until("q-2").await;
    assert!(before.is_empty(), "q-1 delivered twice: {before:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_at_its_connection_share_is_refused_while_others_connect() {
    let server = TestServer::start_with(
        Backend::Memory,
        &[],
        &[("MAX_CONNECTIONS", "40"), ("TENANT_SHARE_PERCENT", "25")],
    )
    .await;
    let mut held = Vec::new();
    for n in 0..10 {
        held.push(Client::connect(&server, &token("loud", &format!("u{n}"), &[])).await);
    }
    assert_eq!(
        handshake_status(&server, &token("loud", "u10", &[])).await,
        429
    );
    for n in 0..10 {
        held.push(Client::connect(&server, &token("quiet", &format!("u{n}"), &[])).await);
    }
    assert_eq!(
        server
            .metric("switchboard_connections_refused_total{reason=\"tenant_share\"}")
            .await,
        1.0
    );
    // One of the loud tenant's sockets leaves: its next handshake opens.
    let mut leaving = held.swap_remove(0);
    leaving.socket.close(None).await.unwrap();
    drop(leaving);
    eventually(
        Duration::from_secs(5),
        "the loud tenant's slot frees",
        || async { handshake_status(&server, &token("loud", "u10", &[])).await == 101 },
    )
    .await;
}
