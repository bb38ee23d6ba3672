//! API Gateway's WebSocket URL limit (4,096 characters) on `switchboard serve`: a handshake
//! URL one character over it is refused with 414 and counted, one at the limit connects,
//! and the same long token travels in the `bearer` subprotocol instead.

use std::time::Duration;

use serde_json::Value;
use switchboard_core::auth::extract::MAX_WEBSOCKET_URL_CHARS;
use switchboard_core::auth::{mint_hs256, MAX_TOKEN_BYTES};
use switchboard_model::{TenantId, UserId};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error as WsError;

use super::harness::{Backend, Client, TestServer, SECRET};

/// A valid token of `approx_chars` characters or a little more (less than 250 over) for
/// acme/alice: a large permission list, as real identity providers produce.
fn big_token(approx_chars: usize) -> String {
    // Each `"perm-0000",` adds 12 bytes of payload, 16 characters of base64url.
    let roles: Vec<String> = (0..approx_chars.div_ceil(16))
        .map(|i| format!("perm-{i:04}"))
        .collect();
    mint_hs256(
        SECRET.as_bytes(),
        &TenantId::parse("acme").unwrap(),
        &UserId::parse("alice").unwrap(),
        &roles,
        Duration::from_secs(600),
    )
}

/// `ws://HOST/main?token=<token>&pad=…`, padded to exactly `chars` characters.
fn url_of_length(server: &TestServer, token: &str, chars: usize) -> String {
    let url = format!("{}?token={token}&pad=", server.ws_url());
    assert!(url.len() <= chars, "{} > {chars}", url.len());
    let padded = format!("{url}{}", "x".repeat(chars - url.len()));
    assert_eq!(padded.len(), chars);
    padded
}

/// Connects to `url`; the refusal's status and JSON body, or `None` when it connected.
async fn refusal(url: &str) -> Option<(u16, Value)> {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => None,
        Err(WsError::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .map(|b| serde_json::from_slice(b).unwrap())
                .unwrap_or(Value::Null);
            Some((response.status().as_u16(), body))
        }
        Err(other) => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_one_character_over_the_limit_is_refused_and_the_subprotocol_carries_the_token() {
    let server = TestServer::start(Backend::Memory).await;
    let token = big_token(3800);
    assert!(token.len() > 3800, "{}", token.len());
    let refused = r#"switchboard_connections_refused_total{reason="url_too_long"}"#;

    // Exactly at the limit: connects, as alice.
    let (mut socket, _) =
        tokio_tungstenite::connect_async(url_of_length(&server, &token, MAX_WEBSOCKET_URL_CHARS))
            .await
            .expect("a URL of exactly 4,096 characters connects");
    drop(socket.close(None).await);

    // One character more: 414 before anything else, counted, nothing connected.
    let opened = server.metric("switchboard_connections_opened_total").await;
    let (status, body) = refusal(&url_of_length(&server, &token, 4097))
        .await
        .expect("a URL of 4,097 characters is refused");
    assert_eq!(status, 414, "{body}");
    assert_eq!(body["error"], "url_too_long", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("4097 characters"),
        "{body}"
    );
    assert_eq!(server.metric(refused).await, 1.0);
    assert_eq!(
        server.metric("switchboard_connections_opened_total").await,
        opened
    );
    assert_eq!(
        server.metric("switchboard_handshakes_refused_total").await,
        0.0,
        "the token was never looked at"
    );

    // The same token in `Sec-WebSocket-Protocol: bearer, <jwt>` connects.
    let mut client = Client::connect_subprotocol(&server, &token).await;
    assert_eq!(client.subprotocol.as_deref(), Some("bearer"));
    let whoami = client.request(r#"{"action":"whoami"}"#).await;
    assert_eq!(whoami["user"], "alice", "{whoami}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_too_long_for_any_url_connects_through_the_subprotocol_up_to_8_kib() {
    let server = TestServer::start(Backend::Memory).await;
    let token = big_token(6000);
    assert!(token.len() > MAX_WEBSOCKET_URL_CHARS && token.len() < MAX_TOKEN_BYTES);

    let url = format!("{}?token={token}", server.ws_url());
    let (status, _) = refusal(&url).await.expect("refused in the query");
    assert_eq!(status, 414);

    let client = Client::connect_subprotocol(&server, &token).await;
    assert_eq!(client.subprotocol.as_deref(), Some("bearer"));

    // The header path keeps the verifier's 8 KiB limit: a larger token is a 401.
    let huge = big_token(MAX_TOKEN_BYTES + 200);
    assert!(huge.len() > MAX_TOKEN_BYTES);
    let mut request = server.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        format!("bearer, {huge}").parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(WsError::Http(response)) => assert_eq!(response.status().as_u16(), 401),
        other => panic!("expected 401, got {other:?}"),
    }
    assert_eq!(
        server
            .metric(r#"switchboard_connections_refused_total{reason="url_too_long"}"#)
            .await,
        1.0
    );
}
