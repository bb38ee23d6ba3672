//! `user.online` / `user.offline` through `switchboard serve` as signed webhooks
//! (docs/design.md: Events), on the memory roster and on `--roster dynamodb` (DynamoDB
//! Local): the sequence of one user's connections, the offline delay, and 1,000 reconnects
//! inside the delay. Every request is verified by the receiver (`webhook_receiver.rs`).

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

use super::harness::{eventually, token, Backend, Client, TestServer};
use super::webhook_receiver::{is_user_event, presence_by_user, Receiver};

/// The offline delay the events tests run with (`EVENTS_OFFLINE_DELAY_SECS`).
pub const DELAY: Duration = Duration::from_secs(1);

/// `serve --dev` (loopback `http` webhook URLs are allowed in dev mode) on `backend`, its
/// events going to `receiver`, the offline delay [`DELAY`], plus `envs`.
pub async fn events_server(
    backend: Backend,
    receiver: &Receiver,
    envs: &[(&str, &str)],
) -> TestServer {
    let mut all = vec![("EVENTS_OFFLINE_DELAY_SECS", "1")];
    all.extend(receiver.envs());
    all.extend_from_slice(envs);
    TestServer::start_with(backend, &["--dev"], &all).await
}

/// [`events_server`] on the memory roster whose `WEBHOOK_FILE` gives acme and globex
/// endpoints of their own; every other tenant's events go to `global` (`WEBHOOK_URL`);
/// plus `envs`.
pub async fn tenant_endpoints_server(
    acme: &Receiver,
    globex: &Receiver,
    global: &Receiver,
    envs: &[(&str, &str)],
) -> TestServer {
    let file = std::env::temp_dir().join(format!("e2e-webhooks-{}.json", uuid::Uuid::new_v4()));
    let tenants =
        json!({"tenants": {"acme": acme.endpoint_json(), "globex": globex.endpoint_json()}});
    std::fs::write(&file, tenants.to_string()).unwrap();
    let mut all = vec![("WEBHOOK_FILE", file.to_str().unwrap())];
    all.extend_from_slice(envs);
    let server = events_server(Backend::Memory, global, &all).await;
    // Read whole at start.
    std::fs::remove_file(file).unwrap();
    server
}

/// Closes a client as a browser does: a close frame, then the server's answer (or the
/// end of the stream).
pub async fn close(mut client: Client) {
    let _ = client.socket.close(None).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = client.socket.next().await {}
    })
    .await;
}

/// The `data` of a presence event.
fn data(tenant: &str, user: &str, connections: u64, version: u64) -> Value {
    json!({"tenant": tenant, "user": user, "connections": connections, "version": version})
}

/// Asserts the event's envelope: a 26-character `evt_` id and an RFC 3339 timestamp.
#[track_caller]
pub fn assert_envelope(event: &Value) {
    let id = event["id"].as_str().unwrap();
    assert!(id.starts_with("evt_") && id.len() == 26, "{event}");
    let timestamp = event["timestamp"].as_str().unwrap();
    time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("timestamp {timestamp:?}: {e}"));
}

/// Connect → `user.online` v1 with 1 connection; a second connection → `online` v2 with 2;
/// closing one announces nothing; closing both → exactly one `user.offline` (v4, 0
/// connections), and not before the delay.
pub async fn online_and_offline_follow_connections(backend: Backend) {
    let receiver = Receiver::start().await;
    let server = events_server(backend, &receiver, &[]).await;
    let alice = token("acme", "alice", &[]);
    let online = |e: &Value| is_user_event(e, "user.online", "acme", "alice");
    let offline = |e: &Value| is_user_event(e, "user.offline", "acme", "alice");
    let within = Duration::from_secs(10);

    let first = Client::connect(&server, &alice).await;
    let event = receiver.wait_event(within, "online v1", online).await;
    assert_envelope(&event);
    assert_eq!(event["data"], data("acme", "alice", 1, 1));

    let second = Client::connect(&server, &alice).await;
    let events = receiver.wait_count(within, "online v2", 2, online).await;
    assert_eq!(events[1]["data"], data("acme", "alice", 2, 2));
    assert_ne!(events[0]["id"], events[1]["id"]);

    // One of two closes: nothing announced, even well past the delay.
    close(first).await;
    eventually(within, "one connection left", || async {
        server.metric("switchboard_connections").await == 1.0
    })
    .await;
    tokio::time::sleep(DELAY * 2 + Duration::from_millis(500)).await;
    assert!(
        !receiver.events().iter().any(offline),
        "offline with a connection left: {:#?}",
        receiver.events()
    );

    // The last close: one offline, after the delay.
    let closed = Instant::now();
    close(second).await;
    receiver.wait_event(within, "offline", offline).await;
    let arrived = receiver
        .deliveries()
        .into_iter()
        .find(|d| offline(&d.event))
        .unwrap()
        .at;
    assert!(
        arrived.duration_since(closed) >= DELAY,
        "offline {:?} after the close, before the delay {DELAY:?}",
        arrived.duration_since(closed)
    );
    // Nothing more comes: the whole story is online v1, online v2, offline v4.
    tokio::time::sleep(DELAY * 2).await;
    let events = receiver.events();
    let story: Vec<(&Value, &Value)> = events.iter().map(|e| (&e["type"], &e["data"])).collect();
    assert_eq!(
        story,
        vec![
            (&json!("user.online"), &data("acme", "alice", 1, 1)),
            (&json!("user.online"), &data("acme", "alice", 2, 2)),
            (&json!("user.offline"), &data("acme", "alice", 0, 4)),
        ]
    );
    events.iter().for_each(assert_envelope);
    // Answered 200 each time: each event was delivered exactly once, by this version.
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 3);
    let agent = format!("switchboard/{}", env!("CARGO_PKG_VERSION"));
    for delivery in deliveries {
        assert_eq!(delivery.headers["user-agent"], agent.as_str());
    }
}

/// 1,000 reconnects of one user, each (close, then connect) shorter than the delay → no
/// `user.offline` at all, and the latest event by version says online, as the user is.
/// Then the last close → exactly one `user.offline`, at the version of that close (every
/// add and remove counted: 1,001 of each → 2,002).
pub async fn reconnect_flaps_inside_the_delay_announce_no_offline(backend: Backend) {
    const FLAPS: u64 = 1_000;
    let receiver = Receiver::start().await;
    // The default delay, 3 s: a flap under a loaded DynamoDB Local stays well inside it.
    let delay = Duration::from_secs(3);
    let server = events_server(backend, &receiver, &[("EVENTS_OFFLINE_DELAY_SECS", "3")]).await;
    let bob = token("acme", "bob", &[]);
    let offline = |e: &Value| is_user_event(e, "user.offline", "acme", "bob");

    let mut client = Client::connect(&server, &bob).await;
    receiver
        .wait_event(Duration::from_secs(10), "online v1", |e| {
            is_user_event(e, "user.online", "acme", "bob")
        })
        .await;
    let mut longest = Duration::ZERO;
    for _ in 0..FLAPS {
        let started = Instant::now();
        close(client).await;
        client = Client::connect(&server, &bob).await;
        longest = longest.max(started.elapsed());
    }
    eprintln!("longest of {FLAPS} flaps: {longest:?}");
    assert!(
        longest < delay,
        "a flap took {longest:?}, not shorter than the delay"
    );
    // Every offline check of those closes has run by now.
    tokio::time::sleep(delay * 2 + Duration::from_millis(500)).await;
    let events = receiver.events();
    assert!(
        !events.iter().any(offline),
        "offline during flaps: {events:#?}"
    );
    let by_user = presence_by_user(&events);
    let latest = by_user[&("acme".into(), "bob".into())].last().unwrap();
    assert_eq!(latest["type"], "user.online", "{latest}");
    assert_eq!(server.metric("switchboard_connections").await, 1.0);

    let closed = Instant::now();
    close(client).await;
    let event = receiver
        .wait_event(Duration::from_secs(10), "offline", offline)
        .await;
    assert!(
        closed.elapsed() >= delay,
        "offline {:?} after the close: {event}",
        closed.elapsed()
    );
    assert_eq!(event["data"], data("acme", "bob", 0, 2 * (FLAPS + 1)));
    tokio::time::sleep(delay * 2).await;
    assert_eq!(receiver.events().iter().filter(|e| offline(e)).count(), 1);
    let by_user = presence_by_user(&receiver.events());
    assert_eq!(
        by_user[&("acme".into(), "bob".into())].last().unwrap(),
        &event
    );
}

/// 50 connections of one user opened at once, then closed at once: the online store
/// counts each change once, atomically — 50 `user.online` with versions 1..=50 and
/// `connections` equal to the version, then one `user.offline` at version 100.
pub async fn concurrent_connects_and_closes_of_one_user_count_each_change(backend: Backend) {
    const TABS: u64 = 50;
    let receiver = Receiver::start().await;
    let server = events_server(backend, &receiver, &[]).await;
    let dave = token("acme", "dave", &[]);
    let clients =
        futures::future::join_all((0..TABS).map(|_| Client::connect(&server, &dave))).await;
    let online = receiver
        .wait_count(
            Duration::from_secs(20),
            "every tab online",
            TABS as usize,
            |e| is_user_event(e, "user.online", "acme", "dave"),
        )
        .await;
    let mut seen: Vec<(u64, u64)> = online
        .iter()
        .map(|e| {
            let data = &e["data"];
            (
                data["version"].as_u64().unwrap(),
                data["connections"].as_u64().unwrap(),
            )
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=TABS).map(|v| (v, v)).collect::<Vec<_>>());

    futures::future::join_all(clients.into_iter().map(close)).await;
    let event = receiver
        .wait_event(Duration::from_secs(20), "offline", |e| {
            is_user_event(e, "user.offline", "acme", "dave")
        })
        .await;
    assert_eq!(event["data"], data("acme", "dave", 0, 2 * TABS));
    tokio::time::sleep(DELAY * 2).await;
    assert_eq!(receiver.deliveries().len(), TABS as usize + 1);
}

/// A socket the server ends (`DELETE @connections/{id}` on the management API) ends in
/// `user.offline` as a client's close does.
pub async fn a_connection_the_server_ends_goes_offline(backend: Backend) {
    let receiver = Receiver::start().await;
    let server = events_server(backend, &receiver, &[]).await;
    let mut client = Client::connect(&server, &token("acme", "carol", &[])).await;
    receiver
        .wait_event(Duration::from_secs(10), "online", |e| {
            is_user_event(e, "user.online", "acme", "carol")
        })
        .await;
    let path = format!("/main/@connections/{}", client.connection_id);
    let deleted = reqwest::Client::new()
        .delete(server.management(&path))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    assert!(client.close_code().await.is_some());
    let event = receiver
        .wait_event(Duration::from_secs(10), "offline", |e| {
            is_user_event(e, "user.offline", "acme", "carol")
        })
        .await;
    assert_eq!(event["data"], data("acme", "carol", 0, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_and_offline_follow_connections_memory_roster() {
    online_and_offline_follow_connections(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_and_offline_follow_connections_dynamodb_roster() {
    online_and_offline_follow_connections(Backend::Dynamodb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_flaps_inside_the_delay_announce_no_offline_memory_roster() {
    reconnect_flaps_inside_the_delay_announce_no_offline(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_flaps_inside_the_delay_announce_no_offline_dynamodb_roster() {
    reconnect_flaps_inside_the_delay_announce_no_offline(Backend::Dynamodb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_server_ends_goes_offline_memory_roster() {
    a_connection_the_server_ends_goes_offline(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_server_ends_goes_offline_dynamodb_roster() {
    a_connection_the_server_ends_goes_offline(Backend::Dynamodb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_connects_and_closes_of_one_user_count_each_change_memory_roster() {
    concurrent_connects_and_closes_of_one_user_count_each_change(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_connects_and_closes_of_one_user_count_each_change_dynamodb_roster() {
    concurrent_connects_and_closes_of_one_user_count_each_change(Backend::Dynamodb).await;
}
