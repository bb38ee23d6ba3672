//! Webhook deliveries (docs/design.md: Events): a receiver that answers 500 for 60 s while
//! several users come and go and a message settles gets, once it answers 200 again, every
//! event — none lost, none invented — with each user's versions strictly increasing
//! (deduplicated by `webhook-id`, as receivers do). `410` disables the endpoint; a redirect
//! is never followed; a proxy in the environment is never used.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::events_presence::{close, events_server};
use super::harness::{eventually, token, Backend, Client};
use super::webhook_receiver::{presence_by_user, Receiver};

const OUTAGE: Duration = Duration::from_secs(60);
/// How long after the outage every event must have arrived: the longest backoff between
/// two probes of a failing endpoint (5 minutes), and some.
const RECOVERY: Duration = Duration::from_secs(330);

pub async fn a_failing_receiver_gets_every_event_once_it_recovers(backend: Backend) {
    const USERS: usize = 5;
    let receiver = Receiver::start().await;
    let outage_ends = Instant::now() + OUTAGE;
    receiver.fail_until(500, outage_ends);
    let server = events_server(backend, &receiver, &[]).await;

    // Each user: two connections, then both closed → online v1, online v2, offline v4.
    let users: Vec<String> = (0..USERS).map(|n| format!("user-{n}")).collect();
    let mut first = Vec::new();
    let mut second = Vec::new();
    for user in &users {
        first.push(Client::connect(&server, &token("acme", user, &[])).await);
        second.push(Client::connect(&server, &token("acme", user, &[])).await);
    }
    let publisher = token("acme", "backend", &["publisher"]);
    let message = json!({"id":"during-outage","target":{"type":"tenant","tenant":"acme"},"data":1});
    assert_eq!(server.publish(&publisher, &message).await.0, 202);
    for mut client in first.into_iter().chain(second) {
        assert_eq!(client.next_json().await["id"], "during-outage");
        close(client).await;
    }
    eventually(Duration::from_secs(10), "every socket closed", || async {
        server.metric("switchboard_connections").await == 0.0
    })
    .await;
    assert!(
        Instant::now() + Duration::from_secs(5) < outage_ends,
        "the story happened inside the outage"
    );

    let expected = USERS * 3 + 1;
    let events = receiver
        .wait_until(
            OUTAGE + RECOVERY,
            "every event after the outage",
            |events| events.len() >= expected,
        )
        .await;
    let recovered = Instant::now().saturating_duration_since(outage_ends);
    eprintln!("every event arrived {recovered:?} after the outage ended");
    // Nothing accepted during the outage; the endpoint was tried again and again during it
    // (one probe at a time), and each attempt signed with its own time.
    let deliveries = receiver.deliveries();
    assert!(deliveries
        .iter()
        .all(|d| d.accepted() == (d.at >= outage_ends)));
    let failed: Vec<_> = deliveries.iter().filter(|d| !d.accepted()).collect();
    assert!(failed.len() >= 2, "retried during the outage: {failed:#?}");
    assert!(failed.iter().all(|d| d.answered == 500));
    for tried in &failed {
        let through = deliveries
            .iter()
            .find(|d| d.id == tried.id && d.accepted())
            .expect("a failed event got through later");
        assert!(
            through.timestamp > tried.timestamp,
            "webhook-timestamp is the attempt's: {} then {}",
            tried.timestamp,
            through.timestamp
        );
    }
    eprintln!(
        "{} attempts answered 500 during the {OUTAGE:?} outage",
        failed.len()
    );

    // None lost, none invented: exactly each user's story and the message.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.events().len(), expected, "{events:#?}");
    let by_user = presence_by_user(&events);
    assert_eq!(by_user.len(), USERS);
    for ((tenant, user), story) in by_user {
        let story: Vec<(&Value, &Value, &Value)> = story
            .iter()
            .map(|e| (&e["type"], &e["data"]["version"], &e["data"]["connections"]))
            .collect();
        assert_eq!(
            story,
            vec![
                (&json!("user.online"), &json!(1), &json!(1)),
                (&json!("user.online"), &json!(2), &json!(2)),
                (&json!("user.offline"), &json!(4), &json!(0)),
            ],
            "{tenant}/{user}"
        );
    }
    let settled: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "message.settled")
        .collect();
    assert_eq!(settled.len(), 1);
    assert_eq!(settled[0]["data"]["id"], "during-outage");
    assert_eq!(settled[0]["data"]["status"], "delivered");
    assert_eq!(settled[0]["data"]["delivered"], USERS * 2);
}

/// `410 Gone` disables the endpoint until restart: after one 410, later events are not
/// sent there even once it would answer 200 again (counted `disabled`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_disables_the_endpoint() {
    let receiver = Receiver::start().await;
    receiver.answer(410);
    let server = events_server(Backend::Memory, &receiver, &[]).await;
    let _alice = Client::connect(&server, &token("acme", "alice", &[])).await;
    eventually(Duration::from_secs(10), "the 410", || async {
        receiver.deliveries().len() == 1
    })
    .await;
    let disabled = "switchboard_webhook_deliveries_total{result=\"disabled\"}";
    // Alice's online (answered 410, nothing else waiting) is dropped too.
    eventually(
        Duration::from_secs(10),
        "alice's online dropped",
        || async { server.metric(disabled).await == 1.0 },
    )
    .await;
    receiver.answer(200);
    let _bob = Client::connect(&server, &token("acme", "bob", &[])).await;
    eventually(Duration::from_secs(10), "bob's online dropped", || async {
        server.metric(disabled).await == 2.0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 1, "{deliveries:#?}");
    assert_eq!(deliveries[0].event["data"]["user"], "alice");
    assert!(receiver.events().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_gets_every_event_once_it_recovers_memory_roster() {
    a_failing_receiver_gets_every_event_once_it_recovers(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_gets_every_event_once_it_recovers_dynamodb_roster() {
    a_failing_receiver_gets_every_event_once_it_recovers(Backend::Dynamodb).await;
}

/// A `307` to another receiver is a failure, retried at the same URL: the other receiver
/// never hears of the event. Once the endpoint answers 200, the event arrives there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed() {
    let receiver = Receiver::start().await;
    let elsewhere = Receiver::start().await;
    receiver.redirect(elsewhere.url());
    let server = events_server(Backend::Memory, &receiver, &[]).await;
    let _alice = Client::connect(&server, &token("acme", "alice", &[])).await;
    eventually(Duration::from_secs(10), "a retry after the 307", || async {
        receiver.deliveries().len() >= 2
    })
    .await;
    assert!(receiver.deliveries().iter().all(|d| d.answered == 307));
    receiver.answer(200);
    receiver
        .wait_event(Duration::from_secs(330), "alice online", |e| {
            e["type"] == "user.online"
        })
        .await;
    assert!(
        elsewhere.deliveries().is_empty(),
        "the redirect was followed"
    );
}

/// The real binary with `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` (both cases) naming a port
/// nobody listens on: the deliveries go straight to the endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_in_the_environment_is_not_used() {
    let receiver = Receiver::start().await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let mut envs = vec![("EVENTS_OFFLINE_DELAY_SECS", "1")];
    envs.extend(receiver.envs());
    for name in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        envs.push((name, proxy.as_str()));
    }
    let server = super::harness::TestServer::start_process(Backend::Memory, &["--dev"], &envs);
    let _alice = Client::connect(&server, &token("acme", "alice", &[])).await;
    receiver
        .wait_event(Duration::from_secs(10), "alice online", |e| {
            e["type"] == "user.online"
        })
        .await;
}
