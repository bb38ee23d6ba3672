//! The keep-alive rule (README: Use it from a browser, keep-alive; docs/design.md: The
//! one-machine binary): API Gateway closes a socket after 10 idle minutes, the client library
//! sends `{"action":"ping"}` every 9 and is answered `{"type":"pong"}`. `serve` closes a
//! socket `IDLE_TIMEOUT_SECS` (600) after its last client frame; here that rule is run at
//! 4 s with a ping every 3.6 s, the same 9 : 10 ratio (400 ms of margin for a loaded machine).

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::harness::{token, Backend, Client, TestServer};

const IDLE: Duration = Duration::from_secs(4);
/// The client's interval at the same ratio as 9 minutes to 10.
const KEEP_ALIVE: Duration = Duration::from_millis(3600);
/// Slack for scheduling on a machine shared with builds.
const SLACK: Duration = Duration::from_millis(1500);

/// Waits for the close: 1001, one idle timeout after `last_frame` (the client's), not before.
async fn assert_closed_idle(client: &mut Client, last_frame: Instant) {
    assert_eq!(
        client.close_code().await,
        Some(1001),
        "idle timeout closes with going away"
    );
    let silent_for = last_frame.elapsed();
    let early = IDLE - Duration::from_millis(100);
    assert!(silent_for >= early, "closed early: {silent_for:?}");
    assert!(silent_for < IDLE + SLACK, "closed late: {silent_for:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_every_nine_tenths_of_the_idle_timeout_keeps_the_socket_and_silence_closes_it() {
    let idle_secs = IDLE.as_secs().to_string();
    let server =
        TestServer::start_with(Backend::Memory, &[], &[("IDLE_TIMEOUT_SECS", &idle_secs)]).await;
    let mut kept = Client::connect(&server, &token("acme", "kept", &[])).await;
    let mut silent = Client::connect(&server, &token("acme", "silent", &[])).await;
    let connected = Instant::now();

    let pinging = tokio::spawn(async move {
        for _ in 0..3 {
            tokio::time::sleep(KEEP_ALIVE).await;
            kept.send(r#"{"action":"ping"}"#).await;
            // What API Gateway's MOCK `ping` route answers, and nothing more.
            assert_eq!(kept.next_json().await, json!({"type": "pong"}));
        }
        let last_ping = Instant::now();
        (kept, last_ping)
    });

    // Silent since its `whoami`: closed one idle timeout later.
    assert_closed_idle(&mut silent, connected).await;
    // Three pings, 10.8 s (over two idle timeouts): the socket stayed open throughout.
    let (mut kept, last_ping) = pinging.await.unwrap();
    // Then silence: the timeout counts from the last client frame.
    assert_closed_idle(&mut kept, last_ping).await;
}

/// API Gateway does not see WebSocket control frames, so they do not keep a socket open
/// there: `serve` holds them to the same rule (a client whose library pings with control
/// frames only would be closed on AWS and must be here too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_control_pings_do_not_keep_a_socket_from_idling() {
    let idle_secs = IDLE.as_secs().to_string();
    let server =
        TestServer::start_with(Backend::Memory, &[], &[("IDLE_TIMEOUT_SECS", &idle_secs)]).await;
    let client = Client::connect(&server, &token("acme", "control", &[])).await;
    let last_message = Instant::now();
    let (mut sink, mut stream) = client.socket.split();
    // Control pings at half the timeout, until the socket is closed.
    let pinging = tokio::spawn(async move {
        loop {
            tokio::time::sleep(IDLE / 2).await;
            if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                break;
            }
        }
    });
    // One deadline for the whole wait: the server's pongs to the control pings arrive too.
    let closed = tokio::time::timeout(IDLE + SLACK, async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                other => panic!("no close frame: {other:?}"),
            }
        }
    })
    .await;
    pinging.abort();
    let code =
        closed.unwrap_or_else(|_| panic!("still open {:?} after its last message", IDLE + SLACK));
    assert_eq!(code, Some(1001), "closed as idle despite the control pings");
    let silent_for = last_message.elapsed();
    let early = IDLE - Duration::from_millis(100);
    assert!(silent_for >= early, "closed early: {silent_for:?}");
    assert!(silent_for < IDLE + SLACK, "closed late: {silent_for:?}");
}
