//! History and `resume` bounded in bytes, on the real binary (memory history): frames
//! shared by every stream and every resume, the store under `HISTORY_MAX_BYTES`, and a
//! resume from before what the store can vouch for answered `complete: false`
//! (docs/design.md: History and resume).

use std::time::Duration;

use futures::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::harness::{token, Backend, Client, TestServer};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
/// The payload of each large message: a frame of about 120 KiB (under the 128 KiB limit).
const PAYLOAD_BYTES: usize = 120 * 1024;

/// The server's resident memory (`VmRSS`), in bytes.
fn rss(server: &mut TestServer) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * KIB
}

/// Publishes `count` messages of [`PAYLOAD_BYTES`] to `users` and waits until history has
/// them.
async fn publish_large(server: &TestServer, count: usize, users: &[String]) {
    let publisher = token("acme", "backend", &["publisher"]);
    for i in 0..count {
        let envelope = json!({
            "id": format!("big-{i}"),
            "target": {"type": "users", "tenant": "acme", "users": users},
            "data": "x".repeat(PAYLOAD_BYTES),
        });
        let (status, body) = server.publish(&publisher, &envelope).await;
        assert_eq!(status, 202, "{body}");
    }
    settled(server).await;
}

/// Publishes to `user` once and returns the cursor its connection received.
async fn cursor_of_one_message(server: &TestServer, user: &str) -> String {
    let publisher = token("acme", "backend", &["publisher"]);
    let mut client = Client::connect(server, &token("acme", user, &[])).await;
    let (status, body) = server
        .publish(
            &publisher,
            &json!({"id":"seen","target":{"type":"users","tenant":"acme","users":[user]},"data":0}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let frame = client.next_json().await;
    let _ = client.socket.close(None).await;
    frame["cursor"].as_str().unwrap().to_string()
}

/// Sends a resume and returns the ids it replayed and its `resumed` frame.
async fn resume(client: &mut Client, since: &str) -> (Vec<String>, Value) {
    client
        .send(&json!({"action":"resume","since":since}).to_string())
        .await;
    let mut ids = Vec::new();
    loop {
        let frame = client.next_json().await;
        if frame["type"] == "resumed" {
            return (ids, frame);
        }
        ids.push(frame["id"].as_str().unwrap_or_default().to_string());
    }
}

/// Waits until the queue has handed every publish to the publisher (and so to history).
async fn settled(server: &TestServer) {
    super::harness::eventually(Duration::from_secs(20), "queue drained", || async {
        server.metric("switchboard_queue_depth").await == 0.0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// The +356 MiB case: 30 messages of 120 KiB to 100 offline users. Each frame is kept once
/// (not once per user), the store stays under `HISTORY_MAX_BYTES`, and a resume from
/// before what the budget evicted is `complete: false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_stays_under_its_byte_budget_and_says_what_it_evicted() {
    const BUDGET: u64 = 2 * MIB;
    let budget = BUDGET.to_string();
    let mut server =
        TestServer::start_process(Backend::Memory, &[], &[("HISTORY_MAX_BYTES", &budget)]);
    let since = cursor_of_one_message(&server, "u0").await;
    settled(&server).await;
    let before = rss(&mut server);

    let users: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
    publish_large(&server, 30, &users).await;
    let after = rss(&mut server);
    let growth = after.saturating_sub(before);
    eprintln!(
        "history_bounds: RSS {} KiB → {} KiB (+{} KiB) with HISTORY_MAX_BYTES={budget}",
        before / KIB,
        after / KIB,
        growth / KIB
    );
    // The budget, plus room for the allocator's free lists and the requests' buffers.
    assert!(
        growth < BUDGET + 24 * MIB,
        "RSS grew {} KiB for a {} KiB history budget",
        growth / KIB,
        BUDGET / KIB
    );

    let mut client = Client::connect(&server, &token("acme", "u0", &[])).await;
    let (ids, resumed) = resume(&mut client, &since).await;
    assert_eq!(
        resumed["complete"], false,
        "entries were evicted: {resumed}"
    );
    assert!(ids.len() < 30, "the budget cannot hold 30 of them: {ids:?}");
    assert_eq!(resumed["count"], ids.len());
}

/// After a restart, memory history starts empty: a resume from a cursor of the previous
/// process cannot be vouched for (`complete: false`); one from the new process can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_a_restart_is_incomplete() {
    let server = TestServer::start_process(Backend::Memory, &[], &[]);
    let old = cursor_of_one_message(&server, "alice").await;
    drop(server);

    let server = TestServer::start_process(Backend::Memory, &[], &[]);
    let mut client = Client::connect(&server, &token("acme", "alice", &[])).await;
    let (ids, resumed) = resume(&mut client, &old).await;
    assert!(ids.is_empty(), "{ids:?}");
    assert_eq!(
        resumed,
        json!({"type":"resumed","count":0,"complete":false}),
        "messages accepted before the restart are gone"
    );
    let new = cursor_of_one_message(&server, "alice").await;
    let (_, resumed) = resume(&mut client, &new).await;
    assert_eq!(resumed["complete"], true, "{resumed}");
}

/// 20 sockets of one user each ask for a 12 MiB history and never read: every resume
/// sends the store's own frames, so memory grows by the sockets' buffers, not by 20 copies
/// of the history. The bound (docs/design.md: History and resume): per socket one frame being
/// written and tungstenite's buffer of about one frame (2 × 128 KiB), plus the shared list of the
/// resume's frames (16 B each): 20 × ~270 KiB ≈ 5.3 MiB; asserted with room for the
/// allocator at 24 MiB (before frames were shared: +240 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_reading_resumers_share_the_history() {
    let mut server = TestServer::start_process(
        Backend::Memory,
        &[],
        &[
            ("RESUME_MAX_BYTES", "67108864"),
            ("SEND_TIMEOUT_SECS", "60"),
        ],
    );
    let since = cursor_of_one_message(&server, "alice").await;
    publish_large(&server, 100, &["alice".to_string()]).await;
    let before = rss(&mut server);

    let alice = token("acme", "alice", &[]);
    let mut idle = Vec::new();
    for _ in 0..20 {
        let mut client = Client::connect(&server, &alice).await;
        client
            .socket
            .send(Message::Text(
                json!({"action":"resume","since":since}).to_string().into(),
            ))
            .await
            .unwrap();
        idle.push(client);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss(&mut server);
    let growth = after.saturating_sub(before);
    eprintln!(
        "history_bounds: 20 non-reading resumers: RSS {} KiB → {} KiB (+{} KiB)",
        before / KIB,
        after / KIB,
        growth / KIB
    );
    assert!(
        growth < 24 * MIB,
        "20 non-reading resumers took {} KiB",
        growth / KIB
    );
    // A reading client still gets the whole history.
    let mut reader = Client::connect(&server, &alice).await;
    let (ids, resumed) = resume(&mut reader, &since).await;
    assert_eq!(ids.len(), 100);
    assert_eq!(resumed["complete"], true, "{resumed}");
    drop(idle);
}

/// A resume's bytes are capped (`RESUME_MAX_BYTES`, 4 MiB by default): over a 7 MiB
/// history the oldest frames that fit are sent, then `complete: false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_stops_at_its_byte_cap() {
    let server = TestServer::start(Backend::Memory).await;
    let since = cursor_of_one_message(&server, "alice").await;
    publish_large(&server, 60, &["alice".to_string()]).await;
    let mut client = Client::connect(&server, &token("acme", "alice", &[])).await;
    let (ids, resumed) = resume(&mut client, &since).await;
    assert_eq!(resumed["complete"], false, "{resumed}");
    assert_eq!(resumed["count"], ids.len());
    let cap = 4 * MIB as usize;
    assert_eq!(
        ids.len(),
        cap / (PAYLOAD_BYTES + 100),
        "as many as fit: {ids:?}"
    );
    assert_eq!(ids[0], "big-0", "the oldest first");
}

/// A client that reads slowly does not hold its resume open: no frame starts later than
/// 25 s (`RESUME_BUDGET`) after the resume was read, then `resumed` says how many were
/// sent and `complete: false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_resume_ends_at_its_deadline() {
    let server =
        TestServer::start_with(Backend::Memory, &[], &[("RESUME_MAX_BYTES", "268435456")]).await;
    let since = cursor_of_one_message(&server, "alice").await;
    publish_large(&server, 300, &["alice".to_string()]).await;
    let mut client = Client::connect(&server, &token("acme", "alice", &[])).await;
    let started = std::time::Instant::now();
    client
        .send(&json!({"action":"resume","since":since}).to_string())
        .await;
    let mut received = 0usize;
    let resumed = loop {
        let frame = client.next_json().await;
        if frame["type"] == "resumed" {
            break frame;
        }
        received += 1;
        // One frame a second until past the deadline, then as fast as it comes.
        if started.elapsed() < Duration::from_secs(26) {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    assert_eq!(resumed["complete"], false, "{resumed}");
    assert_eq!(resumed["count"], received);
    assert!(received < 300, "{received}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}
