//! A `serve` on the DynamoDB roster killed with `kill -9` (docs/design.md: Events, leases):
//! its sockets vanish without a disconnect step, yet a process on the same tables (restarted,
//! or a peer that was running all along) sweeps its lease: it removes the dead process's
//! connections, and each of their users gets `user.offline` exactly once. A user who reconnected to
//! the new process in the meantime is not announced offline. A graceful stop (SIGTERM) is no
//! vanishing: its users' offline checks run at once, before the process exits.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::events_presence::DELAY;
use super::harness::{dynamodb_endpoint, token, Backend, Client, TestServer};
use super::webhook_receiver::{is_user_event, Receiver};

/// The lease lasts 15 s and the sweep runs every 5 s: the dead process's users are offline
/// within about 20 s plus the offline delay. Waited for generously.
const SWEPT_WITHIN: Duration = Duration::from_secs(90);

/// Fresh DynamoDB Local tables for processes that share them (`--roster dynamodb`), their
/// events going to one receiver with the offline delay 1 s.
struct SharedTables {
    vars: Vec<(&'static str, String)>,
}

impl SharedTables {
    const ARGS: [&'static str; 4] = ["--dev", "--roster", "dynamodb", "--create-table"];

    fn new(receiver: &Receiver) -> Self {
        let table = format!("e2e-events-{}", uuid::Uuid::new_v4());
        let mut vars = vec![
            ("DYNAMODB_ENDPOINT", dynamodb_endpoint()),
            ("HISTORY_TABLE", format!("{table}-history")),
            ("ROSTER_TABLE", table),
            ("AWS_ACCESS_KEY_ID", "local".into()),
            ("AWS_SECRET_ACCESS_KEY", "local".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("EVENTS_OFFLINE_DELAY_SECS", "1".into()),
        ];
        vars.extend(receiver.envs().map(|(k, v)| (k, v.to_string())));
        Self { vars }
    }

    fn envs(&self) -> Vec<(&str, &str)> {
        self.vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }
}

/// Waits until `online` users are announced online, then kills `server` with `kill -9`:
/// when it died.
async fn kill_9_once_online(
    server: &mut TestServer,
    receiver: &Receiver,
    online: usize,
) -> Instant {
    receiver
        .wait_count(Duration::from_secs(20), "everyone online", online, |e| {
            e["type"] == "user.online"
        })
        .await;
    let status = std::process::Command::new("kill")
        .args(["-9", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
    Instant::now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_serves_users_go_offline_once_after_a_restart() {
    const USERS: usize = 20;
    let receiver = Receiver::start().await;
    let shared = SharedTables::new(&receiver);
    let envs = shared.envs();
    let args = SharedTables::ARGS;

    let mut dying = TestServer::start_process(Backend::Memory, &args, &envs);
    let users: Vec<String> = (0..USERS).map(|n| format!("u-{n}")).collect();
    let mut clients = Vec::new();
    for user in users.iter().chain([&"split".to_string()]) {
        clients.push(Client::connect(&dying, &token("acme", user, &[])).await);
    }

    let killed = kill_9_once_online(&mut dying, &receiver, USERS + 1).await;
    drop(clients);

    let restarted = TestServer::start_process(Backend::Memory, &args, &envs);
    // `split` is back at once, on the new process, before the sweep: its dead connection
    // still counts, so this is its second (online, 2 connections, version 2).
    let _split = Client::connect(&restarted, &token("acme", "split", &[])).await;
    let back = receiver
        .wait_event(Duration::from_secs(20), "split back online", |e| {
            is_user_event(e, "user.online", "acme", "split") && e["data"]["version"] == 2
        })
        .await;
    assert_eq!(back["data"]["connections"], 2, "{back}");

    let offline = |e: &Value| e["type"] == "user.offline";
    receiver
        .wait_count(
            SWEPT_WITHIN,
            "every user of the dead process offline",
            USERS,
            offline,
        )
        .await;
    eprintln!(
        "{USERS} users offline {:?} after the kill",
        killed.elapsed()
    );
    // Another sweep period and delay: nothing more comes.
    tokio::time::sleep(Duration::from_secs(5) + DELAY * 3).await;
    let events = receiver.events();
    for user in &users {
        let theirs: Vec<&Value> = events
            .iter()
            .filter(|e| is_user_event(e, "user.offline", "acme", user))
            .collect();
        assert_eq!(theirs.len(), 1, "{user}: {theirs:#?}");
        assert_eq!(
            theirs[0]["data"],
            json!({"tenant":"acme","user":user,"connections":0,"version":2})
        );
    }
    assert!(
        !events
            .iter()
            .any(|e| is_user_event(e, "user.offline", "acme", "split")),
        "split has a live connection: {events:#?}"
    );
    assert_eq!(events.iter().filter(|e| offline(e)).count(), USERS);

    // Versions live in the history table: they go on after the restart.
    let _again = Client::connect(&restarted, &token("acme", "u-0", &[])).await;
    let online = receiver
        .wait_event(Duration::from_secs(10), "u-0 back online", |e| {
            is_user_event(e, "user.online", "acme", "u-0") && e["data"]["version"] != 1
        })
        .await;
    assert_eq!(
        online["data"],
        json!({"tenant":"acme","user":"u-0","connections":1,"version":3})
    );
}

/// Two processes on the same tables; one is killed with `kill -9`. The other, still
/// running, sweeps its lease: the dead one's users go offline once each, and a user with a
/// connection on the live one too stays online (its count goes from 2 to 1, no event).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_peer_sweeps_a_killed_serves_users() {
    const USERS: usize = 5;
    let receiver = Receiver::start().await;
    let shared = SharedTables::new(&receiver);
    let envs = shared.envs();
    let mut dying = TestServer::start_process(Backend::Memory, &SharedTables::ARGS, &envs);
    let peer = TestServer::start_process(Backend::Memory, &SharedTables::ARGS, &envs);
    let mut clients = Vec::new();
    for n in 0..USERS {
        clients.push(Client::connect(&dying, &token("acme", &format!("u-{n}"), &[])).await);
    }
    clients.push(Client::connect(&dying, &token("acme", "both", &[])).await);
    let _live = Client::connect(&peer, &token("acme", "both", &[])).await;

    let killed = kill_9_once_online(&mut dying, &receiver, USERS + 2).await;
    drop(clients);
    receiver
        .wait_count(
            SWEPT_WITHIN,
            "the dead process's users offline",
            USERS,
            |e| e["type"] == "user.offline",
        )
        .await;
    eprintln!(
        "{USERS} users offline {:?} after the kill",
        killed.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(5) + DELAY * 3).await;
    let events = receiver.events();
    for n in 0..USERS {
        let user = format!("u-{n}");
        let offline = events
            .iter()
            .filter(|e| is_user_event(e, "user.offline", "acme", &user))
            .count();
        assert_eq!(offline, 1, "{user}: {events:#?}");
    }
    assert!(
        !events
            .iter()
            .any(|e| is_user_event(e, "user.offline", "acme", "both")),
        "both has a live connection on the peer: {events:#?}"
    );
    assert_eq!(peer.metric("switchboard_connections").await, 1.0);
}

/// SIGTERM with a 60 s offline delay: the sockets close, and each user's `user.offline`
/// arrives at once (well before the delay), before the process exits 0.
async fn a_graceful_stop_announces_its_users_offline_at_once(backend: Backend) {
    const USERS: usize = 3;
    let receiver = Receiver::start().await;
    let mut envs = vec![("EVENTS_OFFLINE_DELAY_SECS", "60")];
    envs.extend(receiver.envs());
    let mut server = TestServer::start_process(backend, &["--dev"], &envs);
    let mut clients = Vec::new();
    for n in 0..USERS {
        clients.push(Client::connect(&server, &token("acme", &format!("u-{n}"), &[])).await);
    }
    receiver
        .wait_count(Duration::from_secs(10), "everyone online", USERS, |e| {
            e["type"] == "user.online"
        })
        .await;
    let stopped = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for client in &mut clients {
        assert_eq!(client.close_code().await, Some(1001));
    }
    let exit = server
        .wait_exit(Duration::from_secs(15))
        .expect("exits within the drain bound");
    assert!(exit.success(), "{exit:?}");
    let events = receiver.events();
    for n in 0..USERS {
        let user = format!("u-{n}");
        let offline: Vec<&Value> = events
            .iter()
            .filter(|e| is_user_event(e, "user.offline", "acme", &user))
            .collect();
        assert_eq!(offline.len(), 1, "{user} before the exit: {events:#?}");
        assert_eq!(
            offline[0]["data"],
            json!({"tenant":"acme","user":user,"connections":0,"version":2})
        );
    }
    assert!(stopped.elapsed() < Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_announces_its_users_offline_at_once_memory_roster() {
    a_graceful_stop_announces_its_users_offline_at_once(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_announces_its_users_offline_at_once_dynamodb_roster() {
    a_graceful_stop_announces_its_users_offline_at_once(Backend::Dynamodb).await;
}
