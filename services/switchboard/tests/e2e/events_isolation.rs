//! Webhooks never hold anything else up (docs/design.md: Events): a receiver that hangs
//! delays no handshake and no frame, its events beyond the bounded queue are dropped and
//! counted; a tenant whose endpoint fails never holds another tenant's events back.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::events_presence::{events_server, tenant_endpoints_server};
use super::harness::{eventually, token, Backend, Client};
use super::webhook_receiver::{is_user_event, Receiver};

/// A receiver that holds every request 30 s (past `WEBHOOK_TIMEOUT_SECS` 2), a queue of 50
/// events: 200 users connect and get a message as fast as with no events at all; the
/// events beyond the queue are dropped and counted, the queue never holds more than 50.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_delays_no_connection_and_no_frame() {
    const USERS: usize = 200;
    let receiver = Receiver::start().await;
    receiver.stall(Duration::from_secs(30));
    let server = events_server(
        Backend::Memory,
        &receiver,
        &[
            ("WEBHOOK_QUEUE_CAPACITY", "50"),
            ("WEBHOOK_TIMEOUT_SECS", "2"),
        ],
    )
    .await;
    let mut clients = Vec::new();
    let mut slowest = Duration::ZERO;
    for n in 0..USERS {
        let started = Instant::now();
        clients.push(Client::connect(&server, &token("acme", &format!("u-{n}"), &[])).await);
        slowest = slowest.max(started.elapsed());
    }
    eprintln!("slowest of {USERS} connects with a hanging receiver: {slowest:?}");
    assert!(
        slowest < Duration::from_secs(1),
        "a connect waited {slowest:?}"
    );

    let publisher = token("acme", "backend", &["publisher"]);
    let sent = Instant::now();
    let everyone =
        json!({"id":"while-hanging","target":{"type":"tenant","tenant":"acme"},"data":1});
    assert_eq!(server.publish(&publisher, &everyone).await.0, 202);
    for client in &mut clients {
        assert_eq!(client.next_json().await["id"], "while-hanging");
    }
    let all_got_it = sent.elapsed();
    eprintln!("{USERS} frames delivered in {all_got_it:?}");
    assert!(
        all_got_it < Duration::from_secs(2),
        "frames waited {all_got_it:?}"
    );

    let dropped = "switchboard_webhook_deliveries_total{result=\"dropped\"}";
    eventually(Duration::from_secs(10), "the overflow dropped", || async {
        server.metric(dropped).await >= (USERS - 50) as f64
    })
    .await;
    assert!(server.metric("switchboard_webhook_queue_events").await <= 50.0);
    assert!(receiver.events().is_empty(), "nothing was accepted");
}

/// acme's own endpoint answers 500; globex's, beside it, gets each of its users' online
/// at once, while acme's events wait (probed with backoff).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_tenant_endpoint_holds_no_other_tenants_events() {
    const USERS: usize = 10;
    let acme = Receiver::start().await;
    acme.answer(500);
    let globex = Receiver::start().await;
    let global = Receiver::start().await;
    let server = tenant_endpoints_server(&acme, &globex, &global, &[]).await;
    let mut clients = Vec::new();
    for n in 0..USERS {
        let user = format!("u-{n}");
        clients.push(Client::connect(&server, &token("acme", &user, &[])).await);
        clients.push(Client::connect(&server, &token("globex", &user, &[])).await);
    }
    let started = Instant::now();
    globex
        .wait_count(
            Duration::from_secs(5),
            "globex's users online",
            USERS,
            |e| e["type"] == "user.online",
        )
        .await;
    eprintln!("globex's events took {:?}", started.elapsed());
    assert!(acme.events().is_empty());
    assert!(!acme.deliveries().is_empty(), "acme's endpoint was tried");
    assert!(
        global.deliveries().is_empty(),
        "nothing for the global endpoint"
    );
    let globex_events: Vec<Value> = globex.events();
    assert!(globex_events
        .iter()
        .all(|e| e["data"]["tenant"] == "globex"));

    // Once acme's endpoint answers again, its events come too.
    acme.answer(200);
    acme.wait_until(Duration::from_secs(330), "acme's users online", |events| {
        (0..USERS).all(|n| {
            events
                .iter()
                .any(|e| is_user_event(e, "user.online", "acme", &format!("u-{n}")))
        })
    })
    .await;
}

/// A queue of 40 events, each tenant at most 25 % (10): acme's endpoint fails, so acme's
/// 30 online events fill its share and 20 are dropped (counted); globex's 10, beside them,
/// are all taken and delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_fills_only_its_share_of_the_webhook_queue() {
    let acme = Receiver::start().await;
    acme.answer(500);
    let globex = Receiver::start().await;
    let global = Receiver::start().await;
    let server = tenant_endpoints_server(
        &acme,
        &globex,
        &global,
        &[
            ("WEBHOOK_QUEUE_CAPACITY", "40"),
            ("TENANT_SHARE_PERCENT", "25"),
        ],
    )
    .await;
    let mut clients = Vec::new();
    for n in 0..30 {
        clients.push(Client::connect(&server, &token("acme", &format!("u-{n}"), &[])).await);
    }
    let dropped = "switchboard_webhook_deliveries_total{result=\"dropped\"}";
    eventually(
        Duration::from_secs(10),
        "acme's overflow dropped",
        || async { server.metric(dropped).await == 20.0 },
    )
    .await;
    for n in 0..10 {
        clients.push(Client::connect(&server, &token("globex", &format!("u-{n}"), &[])).await);
    }
    globex
        .wait_count(Duration::from_secs(10), "globex's users online", 10, |e| {
            e["type"] == "user.online"
        })
        .await;
    assert_eq!(
        server.metric(dropped).await,
        20.0,
        "none of globex's dropped"
    );
    assert!(acme.events().is_empty());
}
