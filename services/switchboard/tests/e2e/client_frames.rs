//! What a client may send on its socket (docs/design.md: The one-machine binary): actions
//! within an allowance per socket (1008 past it, counted), frames within 128 KiB (1009 past
//! it, counted), and a well-behaved client is never touched.

use std::time::Duration;

use futures::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use super::harness::{token, Backend, Client, TestServer};

const ALLOWANCE: [(&str, &str); 2] = [("ACTIONS_PER_SECOND", "5"), ("ACTION_BURST", "10")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_actions_closes_with_1008_and_is_counted() {
    let server = TestServer::start_with(Backend::Memory, &[], &ALLOWANCE).await;
    let mut flood = Client::connect(&server, &token("acme", "flood", &[])).await;
    // Connecting spent one action (`whoami`); 200 more at once are far past a burst of 10.
    for _ in 0..200 {
        if flood
            .socket
            .feed(Message::Text(r#"{"action":"ping"}"#.into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = flood.socket.flush().await;
    let mut pongs = 0;
    let code = loop {
        match tokio::time::timeout(
            Duration::from_secs(10),
            futures::StreamExt::next(&mut flood.socket),
        )
        .await
        .expect("the server answers or closes within 10 s")
        {
            Some(Ok(Message::Text(_))) => pongs += 1,
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break None,
        }
    };
    assert_eq!(
        code,
        Some(1008),
        "closed with policy violation after {pongs} pongs"
    );
    assert!(pongs <= 10, "{pongs} actions answered: the burst is 10");
    assert_eq!(
        server
            .metric("switchboard_connections_closed_total{reason=\"action_rate\"}")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_within_the_allowance_are_all_answered() {
    let server = TestServer::start_with(Backend::Memory, &[], &ALLOWANCE).await;
    let mut client = Client::connect(&server, &token("acme", "calm", &[])).await;
    // 4 a second for 3 seconds: under the rate of 5, so the bucket never empties.
    for _ in 0..12 {
        assert_eq!(client.request(r#"{"action":"ping"}"#).await["type"], "pong");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        server
            .metric("switchboard_connections_closed_total{reason=\"action_rate\"}")
            .await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_client_frame_closes_with_1009_and_a_large_one_is_answered() {
    let server = TestServer::start(Backend::Memory).await;
    let mut client = Client::connect(&server, &token("acme", "big", &[])).await;
    // Just under the limit: read whole, answered like any unknown action.
    let large = format!(r#"{{"action":"{}"}}"#, "x".repeat(120 * 1024));
    assert_eq!(client.request(&large).await["error"], "unknown_action");
    // Over it: a clean 1009 close, not a dropped socket (1006).
    let oversized = format!(r#"{{"action":"{}"}}"#, "x".repeat(200 * 1024));
    client.send(&oversized).await;
    assert_eq!(client.close_code().await, Some(1009));
    assert_eq!(
        server
            .metric("switchboard_connections_closed_total{reason=\"message_too_big\"}")
            .await,
        1.0
    );
}
