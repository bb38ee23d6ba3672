//! docs/design.md: The one-machine binary: `switchboard serve` on a real network. Each test drives
//! the real binary.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::MaybeTlsStream;

use super::harness::{
    assert_refused, dead_letter_ids, eventually, serve_refused, token, Backend, Client, DeadRoster,
    Socket, TestServer,
};

// ---- hole 2: dev mode is explicit, loopback only -------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_a_key_source_refuses_to_start_naming_the_variables() {
    let (status, stderr) = serve_refused(&["--listen", "127.0.0.1:0"], &[]);
    assert_refused(status, &stderr, "JWT_HS256_SECRET");
    for var in [
        "JWT_HS256_SECRET",
        "JWT_JWKS_FILE",
        "JWT_JWKS_URL",
        "JWT_ISSUERS_FILE",
        "--dev",
    ] {
        assert!(stderr.contains(var), "{var} not named: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_jwks_url_is_an_error_not_dev_mode() {
    let (status, stderr) = serve_refused(&["--listen", "127.0.0.1:0"], &[("JWT_JWKS_URL", "")]);
    assert_refused(status, &stderr, "JWT_JWKS_URL");
    assert!(stderr.contains("JWT_JWKS_URL"), "{stderr}");
    // Even with --dev: a half-written configuration never falls back to a random secret.
    let (status, stderr) = serve_refused(
        &["--dev", "--listen", "127.0.0.1:0"],
        &[("JWT_JWKS_URL", "")],
    );
    assert_refused(status, &stderr, "JWT_JWKS_URL");
    assert!(stderr.contains("JWT_JWKS_URL"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_refuses_a_non_loopback_listen() {
    let (status, stderr) = serve_refused(&["--dev", "--listen", "0.0.0.0:0"], &[]);
    assert_refused(status, &stderr, "--dev");
    assert!(
        stderr.contains("--dev") && stderr.contains("loopback"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_hs256_secret_is_refused_without_dev_and_accepted_with_it() {
    let short = [("JWT_HS256_SECRET", "only-16-bytes-xx")];
    let (status, stderr) = serve_refused(&["--listen", "127.0.0.1:0"], &short);
    assert_refused(status, &stderr, "JWT_HS256_SECRET");
    assert!(
        stderr.contains("JWT_HS256_SECRET") && stderr.contains("32"),
        "{stderr}"
    );
    let server = TestServer::start_raw(Backend::Memory, &["--dev"], &short).await;
    let status = reqwest::get(server.http("/healthz"))
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

async fn dev_token(server: &TestServer, host: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(server.http("/dev/token"))
        .json(&json!({"tenant": "demo", "user": "alice", "roles": ["admin"]}));
    if let Some(host) = host {
        request = request.header("host", host);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_token_answers_loopback_hosts_only() {
    let server = TestServer::start_raw(Backend::Memory, &["--dev"], &[]).await;
    // A loopback peer addressing a loopback host: a token that the server accepts.
    let (status, body) = dev_token(&server, None).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_string();
    let mut client = Client::connect(&server, &token).await;
    assert_eq!(client.request(r#"{"action":"ping"}"#).await["type"], "pong");
    let port = server.addr.port();
    let (status, _) = dev_token(&server, Some(&format!("localhost:{port}"))).await;
    assert_eq!(status, 200);
    // DNS rebinding: a page of another site reaching 127.0.0.1 sends its own host name.
    for host in [format!("evil.example:{port}"), "evil.example".to_string()] {
        let (status, body) = dev_token(&server, Some(&host)).await;
        assert_eq!(status, 403, "{host}: {body}");
    }
    let page = reqwest::Client::new()
        .get(server.http("/"))
        .header("host", "rebound.example")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_dev_there_is_no_dev_token_endpoint() {
    let server = TestServer::start(Backend::Memory).await;
    let (status, _) = dev_token(&server, None).await;
    assert_eq!(status, 404);
}

// ---- hole 1: the management API has its own listener, optionally SigV4-checked ------

fn management_sdk(
    server: &TestServer,
    key: &str,
    secret: &str,
) -> aws_sdk_apigatewaymanagement::Client {
    use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new(key, secret, None, None, "test"))
        .endpoint_url(server.management("/main"))
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_api_is_not_served_on_the_public_listener() {
    let server = TestServer::start(Backend::Memory).await;
    let client = Client::connect(&server, &token("acme", "alice", &[])).await;
    let id = &client.connection_id;
    let http = reqwest::Client::new();
    let public = server.http(&format!("/main/@connections/{id}"));
    assert_eq!(http.get(&public).send().await.unwrap().status(), 404);
    assert_eq!(
        http.post(&public).body("x").send().await.unwrap().status(),
        404
    );
    assert_eq!(http.delete(&public).send().await.unwrap().status(), 404);
    // The same call on the management listener finds the connection.
    let private = server.management(&format!("/main/@connections/{id}"));
    assert_eq!(http.get(&private).send().await.unwrap().status(), 200);
    // And the management listener serves no public route (only `/metrics` and `/healthz`).
    assert_eq!(
        http.get(server.management("/v1/dead-letters"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_api_with_credentials_requires_a_sigv4_signature() {
    use aws_sdk_apigatewaymanagement::error::SdkError;
    use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
    use aws_sdk_apigatewaymanagement::primitives::Blob;

    let (key, secret) = ("AKIDSWITCHBOARD", "management-secret-key-for-the-e2e-test");
    let server = TestServer::start_with(
        Backend::Memory,
        &[],
        &[
            ("MANAGEMENT_ACCESS_KEY_ID", key),
            ("MANAGEMENT_SECRET_ACCESS_KEY", secret),
        ],
    )
    .await;
    let mut client = Client::connect(&server, &token("acme", "alice", &[])).await;
    let id = client.connection_id.clone();

    // The official SDK signs unchanged: post, get and delete all pass.
    let sdk = management_sdk(&server, key, secret);
    sdk.post_to_connection()
        .connection_id(&id)
        .data(Blob::new(r#"{"signed":true}"#))
        .send()
        .await
        .expect("signed post_to_connection");
    assert_eq!(client.next_json().await, json!({"signed": true}));
    let info = sdk
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .expect("signed get");
    assert!(info.connected_at().is_some());

    // Unsigned: 403, nothing delivered, nothing disclosed.
    let http = reqwest::Client::new();
    let url = server.management(&format!("/main/@connections/{id}"));
    let response = http.post(&url).body("unsigned").send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 403);
    assert_eq!(http.delete(&url).send().await.unwrap().status(), 403);
    // A forged header with the right key id but no valid signature.
    let forged = http
        .get(&url)
        .header("x-amz-date", "20260101T000000Z")
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential={key}/20260101/eu-west-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature={}", "0".repeat(64)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    // Signed with the wrong secret, or another key id: 403 (ForbiddenException).
    for (k, s) in [(key, "not-the-secret"), ("AKIDOTHER", secret)] {
        let result = management_sdk(&server, k, s)
            .post_to_connection()
            .connection_id(&id)
            .data(Blob::new("x"))
            .send()
            .await;
        match result {
            Err(SdkError::ServiceError(e)) => {
                assert_eq!(e.raw().status().as_u16(), 403);
                assert!(
                    matches!(e.err(), PostToConnectionError::ForbiddenException(_)),
                    "{e:?}"
                );
            }
            other => panic!("expected 403, got {other:?}"),
        }
    }

    sdk.delete_connection()
        .connection_id(&id)
        .send()
        .await
        .expect("signed delete");
    assert!(client.close_code().await.is_some());
}

// ---- hole 3 + 11: slow consumers, close handshakes ------------------------------------

/// A client whose TCP receive window is tiny and that stops reading after `whoami`.
async fn stuck_client(server: &TestServer, token: &str) -> (Socket, String) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let url = format!("{}?token={token}", server.ws_url());
    let (mut ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
        .await
        .expect("handshake");
    ws.send(Message::Text(r#"{"action":"whoami"}"#.into()))
        .await
        .unwrap();
    let id = loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(text.as_str()).unwrap();
                break value["connectionId"].as_str().unwrap().to_string();
            }
            Some(Ok(_)) => continue,
            other => panic!("no whoami reply: {other:?}"),
        }
    };
    (ws, id)
}

async fn connection_status(server: &TestServer, id: &str) -> u16 {
    reqwest::get(server.management(&format!("/main/@connections/{id}")))
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn big_data(n: usize) -> String {
    format!("{n:04}-{}", "x".repeat(100 * 1024))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_delays_no_one_and_is_closed() {
    let server = TestServer::start_with(Backend::Memory, &[], &[("SEND_TIMEOUT_SECS", "2")]).await;
    let (_stuck, stuck_id) = stuck_client(&server, &token("acme", "stuck", &[])).await;
    let mut alice = Client::connect(&server, &token("acme", "alice", &[])).await;
    let mut bob = Client::connect(&server, &token("globex", "bob", &[])).await;
    let publisher = token("acme", "backend", &["publisher"]);
    let globex_publisher = token("globex", "backend", &["publisher"]);

    // Alice reads as fast as she can, meanwhile.
    let reader = tokio::spawn(async move {
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < 60 {
            let frame = alice.next_json().await;
            seen.insert(frame["id"].as_str().unwrap().to_string());
        }
        seen
    });
    for n in 0..60 {
        let (status, body) = server
            .publish(
                &publisher,
                &json!({"id": format!("big-{n}"), "target": {"type": "tenant", "tenant": "acme"}, "data": big_data(n)}),
            )
            .await;
        assert_eq!(status, 202, "{body}");
    }
    // Another tenant's client is not held up by the stuck one.
    let sent = Instant::now();
    let (status, _) = server
        .publish(
            &globex_publisher,
            &json!({"id": "hello-bob", "target": {"type": "users", "tenant": "globex", "users": ["bob"]}, "data": 1}),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(bob.next_json().await["id"], "hello-bob");
    let latency = sent.elapsed();
    assert!(latency < Duration::from_secs(1), "bob waited {latency:?}");

    // The healthy client of the same tenant got every frame.
    let seen = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("alice got 60 frames within 30 s")
        .unwrap();
    let expected: std::collections::BTreeSet<String> =
        (0..60).map(|n| format!("big-{n}")).collect();
    assert_eq!(seen, expected);

    // The stuck one is closed (send timeout or full outbox) and removed.
    eventually(
        Duration::from_secs(10),
        "stuck connection closed",
        || async { connection_status(&server, &stuck_id).await == 410 },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_closes_a_socket_whose_writes_are_stuck() {
    // A long send timeout: only the DELETE can end this socket quickly.
    let server =
        TestServer::start_with(Backend::Memory, &[], &[("SEND_TIMEOUT_SECS", "300")]).await;
    let (_stuck, id) = stuck_client(&server, &token("acme", "stuck", &[])).await;
    let http = reqwest::Client::new();
    let url = server.management(&format!("/main/@connections/{id}"));
    let mut queued = 0;
    for n in 0..100 {
        let status = http
            .post(&url)
            .body(big_data(n))
            .send()
            .await
            .unwrap()
            .status();
        if status != 200 {
            break;
        }
        queued += 1;
    }
    assert!(
        queued >= 60,
        "only {queued} frames were taken before the socket closed"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        connection_status(&server, &id).await,
        200,
        "still open, writes stuck"
    );
    let started = Instant::now();
    assert_eq!(http.delete(&url).send().await.unwrap().status(), 204);
    eventually(
        Duration::from_secs(5),
        "deleted connection gone",
        || async { connection_status(&server, &id).await == 410 },
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    eventually(Duration::from_secs(5), "gauge back to 0", || async {
        server.metric("switchboard_connections").await == 0.0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_close_is_answered_with_a_close_frame() {
    let server = TestServer::start(Backend::Memory).await;
    let mut client = Client::connect(&server, &token("acme", "alice", &[])).await;
    client
        .socket
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })))
        .await
        .unwrap();
    // The server's reply arrives (a clean close, not 1006), then the stream ends.
    match tokio::time::timeout(Duration::from_secs(5), client.socket.next()).await {
        Ok(Some(Ok(Message::Close(Some(frame))))) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected the server's close reply, got {other:?}"),
    }
    match tokio::time::timeout(Duration::from_secs(5), client.socket.next()).await {
        Ok(None) => {}
        other => panic!("expected the end of the stream, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_close_waits_for_the_client_reply() {
    let server = TestServer::start(Backend::Memory).await;
    let mut client = Client::connect(&server, &token("acme", "alice", &[])).await;
    let url = server.management(&format!("/main/@connections/{}", client.connection_id));
    assert_eq!(
        reqwest::Client::new()
            .delete(&url)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    match tokio::time::timeout(Duration::from_secs(5), client.socket.next()).await {
        Ok(Some(Ok(Message::Close(Some(frame))))) => assert_eq!(u16::from(frame.code), 1000),
        other => panic!("expected a close frame, got {other:?}"),
    }
    // tungstenite answers the close; the server then ends the TCP connection cleanly.
    match tokio::time::timeout(Duration::from_secs(5), client.socket.next()).await {
        Ok(None) => {}
        other => panic!("expected a clean end, got {other:?}"),
    }
}

// ---- hole 6: idle timeout ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_with_1001_and_active_ones_stay() {
    let server = TestServer::start_with(Backend::Memory, &[], &[("IDLE_TIMEOUT_SECS", "1")]).await;
    let mut idle = Client::connect(&server, &token("acme", "idle", &[])).await;
    let mut active = Client::connect(&server, &token("acme", "active", &[])).await;
    let started = Instant::now();
    let keep_alive = tokio::spawn(async move {
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(active.request(r#"{"action":"ping"}"#).await["type"], "pong");
        }
        active
    });
    assert_eq!(idle.close_code().await, Some(1001));
    assert!(started.elapsed() >= Duration::from_millis(900));
    let mut active = keep_alive.await.unwrap();
    assert_eq!(active.request(r#"{"action":"ping"}"#).await["type"], "pong");
}

// ---- holes 4 + 5: bounded memory, caps, token before body ------------------------------

/// A server whose roster is unreachable: every message stays queued (or dead-letters).
async fn server_with_dead_roster(args: &[&str], envs: &[(&str, &str)]) -> TestServer {
    let dead = DeadRoster::unreachable();
    TestServer::start_with(Backend::Memory, &dead.args(args), &dead.envs(envs)).await
}

fn to_acme(id: &str) -> Value {
    json!({"id": id, "target": {"type": "tenant", "tenant": "acme"}, "data": 1})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_with_retry_after() {
    let server = server_with_dead_roster(
        &["--visibility-timeout", "60s"],
        // One tenant may fill the whole queue (tenant_queue.rs tests the shares).
        &[("QUEUE_CAPACITY", "3"), ("TENANT_SHARE_PERCENT", "100")],
    )
    .await;
    let publisher = token("acme", "backend", &["publisher"]);
    for n in 0..3 {
        let (status, body) = server
            .publish(&publisher, &to_acme(&format!("q-{n}")))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let response = reqwest::Client::new()
        .post(server.http("/v1/messages"))
        .bearer_auth(&publisher)
        .json(&to_acme("q-3"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "busy");
    assert_eq!(
        server.metric("switchboard_publishes_refused_total").await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_capped_and_paginated() {
    let server = server_with_dead_roster(
        &["--visibility-timeout", "10ms", "--max-receives", "1"],
        &[
            ("DEAD_LETTER_CAPACITY", "3"),
            ("TENANT_SHARE_PERCENT", "100"),
        ],
    )
    .await;
    let publisher = token("acme", "backend", &["publisher"]);
    let admin = token("ops", "root", &["admin"]);
    for n in 0..5 {
        let (status, _) = server
            .publish(&publisher, &to_acme(&format!("dl-{n}")))
            .await;
        assert_eq!(status, 202);
        // One at a time, so the list order is the publish order.
        eventually(Duration::from_secs(10), "dead-lettered", || async {
            server.metric("switchboard_dead_letters").await
                + server
                    .metric("switchboard_dead_letters_dropped_total")
                    .await
                == f64::from(n + 1)
        })
        .await;
    }
    assert_eq!(server.metric("switchboard_dead_letters").await, 3.0);
    assert_eq!(
        server
            .metric("switchboard_dead_letters_dropped_total")
            .await,
        2.0
    );

    let http = reqwest::Client::new();
    let page = |query: String| {
        let http = http.clone();
        let url = server.http(&format!("/v1/dead-letters{query}"));
        let admin = admin.clone();
        async move {
            let response = http.get(url).bearer_auth(admin).send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, first) = page("?limit=2".into()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(dead_letter_ids(&first), ["dl-2", "dl-3"]);
    let next = first["next"].as_str().unwrap().to_string();
    let (_, second) = page(format!("?limit=2&next={next}")).await;
    assert_eq!(dead_letter_ids(&second), ["dl-4"]);
    assert!(second["next"].is_null());
    let (_, all) = page(String::new()).await;
    assert_eq!(dead_letter_ids(&all), ["dl-2", "dl-3", "dl-4"]);
    for bad in ["?limit=0", "?limit=1001", "?limit=x", "?next=abc"] {
        assert_eq!(page(bad.into()).await.0, 400, "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_is_not_read_before_the_token_is_verified() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(Backend::Memory).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // Announces a large body and never sends it.
    stream
        .write_all(
            b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer not-a-token\r\n\
              Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut answer))
        .await
        .expect("an answer without the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

/// The status of a WebSocket handshake (101 when it opened).
pub async fn handshake_status(server: &TestServer, token: &str) -> u16 {
    let url = format!("{}?token={token}", server.ws_url());
    match tokio_tungstenite::connect_async(url).await {
        Ok((mut socket, _)) => {
            let _ = socket.close(None).await;
            101
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("handshake failed: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_caps_answer_429_per_user_and_503_per_server() {
    let server = TestServer::start_with(
        Backend::Memory,
        &[],
        &[
            ("MAX_CONNECTIONS", "3"),
            ("MAX_CONNECTIONS_PER_USER", "2"),
            ("TENANT_SHARE_PERCENT", "100"),
        ],
    )
    .await;
    let alice = token("acme", "alice", &[]);
    let _a1 = Client::connect(&server, &alice).await;
    let _a2 = Client::connect(&server, &alice).await;
    assert_eq!(handshake_status(&server, &alice).await, 429);
    // The same user name in another tenant is another user.
    let _g1 = Client::connect(&server, &token("globex", "alice", &[])).await;
    assert_eq!(
        handshake_status(&server, &token("acme", "bob", &[])).await,
        503
    );
    assert_eq!(
        server
            .metric("switchboard_connections_refused_total{reason=\"max_per_user\"}")
            .await,
        1.0
    );
}

// ---- hole 7: shutdown drains, then closes ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_burst_delivers_or_logs_every_accepted_message() {
    let log_path =
        std::env::temp_dir().join(format!("switchboard-shutdown-{}.log", uuid::Uuid::new_v4()));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = TestServer::start_logged(
        Backend::Memory,
        &["--drain-timeout", "20s"],
        &[
            ("JWT_HS256_SECRET", super::harness::SECRET),
            ("RUST_LOG", "warn"),
        ],
        Some(log),
    );
    let mut client = Client::connect(&server, &token("acme", "alice", &[])).await;
    let publisher = token("acme", "backend", &["publisher"]);
    let url = server.http("/v1/messages");
    let burst = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut accepted = Vec::new();
        let mut refused = 0;
        for n in 0..1000 {
            let id = format!("burst-{n:04}");
            let sent = http
                .post(&url)
                .bearer_auth(&publisher)
                .json(&json!({"id": id, "target": {"type": "users", "tenant": "acme", "users": ["alice"]}, "data": n}))
                .send()
                .await;
            match sent {
                Ok(response) if response.status() == 202 => accepted.push(id),
                Ok(response) => {
                    assert_eq!(response.status(), 503, "only 202 or 503 during shutdown");
                    refused += 1;
                }
                Err(_) => refused += 1, // the listener is gone
            }
        }
        (accepted, refused)
    });
    // Let part of the burst through, then SIGTERM.
    let mut received = std::collections::HashSet::new();
    while received.len() < 200 {
        received.insert(client.next_json().await["id"].as_str().unwrap().to_string());
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Everything until the 1001 close.
    loop {
        match tokio::time::timeout(Duration::from_secs(30), client.socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                received.insert(frame["id"].as_str().unwrap().to_string());
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1001));
                break;
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected frames then a 1001 close, got {other:?}"),
        }
    }
    let exit = server.wait_exit(Duration::from_secs(30)).expect("exits");
    assert!(exit.success(), "{exit:?}");
    let (accepted, refused) = burst.await.unwrap();
    assert!(refused > 0, "the burst should outlast the shutdown");
    let logs = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    let missing: Vec<&String> = accepted
        .iter()
        .filter(|id| !received.contains(*id) && !logs.contains(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "accepted but neither delivered nor logged: {missing:?}"
    );
    assert!(accepted.len() >= 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_slow_to_send_its_headers_is_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server =
        TestServer::start_with(Backend::Memory, &[], &[("HEADER_READ_TIMEOUT_SECS", "1")]).await;
    for addr in [server.addr, server.management_addr] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        // Half a request, then nothing (slow loris).
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        let started = Instant::now();
        let mut buffer = vec![0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue, // a 408, if any, then the close
                }
            }
        })
        .await;
        assert!(read.is_ok(), "{addr}: connection still open after 5 s");
        assert!(started.elapsed() >= Duration::from_millis(900));
    }
    // A complete request is still served.
    assert_eq!(
        reqwest::get(server.http("/healthz"))
            .await
            .unwrap()
            .status(),
        200
    );
}

// ---- hole 12: out-of-range settings stop start-up with a message -----------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_durations_are_refused_at_start_up() {
    let secret = [("JWT_HS256_SECRET", super::harness::SECRET)];
    let (status, stderr) = serve_refused(
        &[
            "--listen",
            "127.0.0.1:0",
            "--visibility-timeout",
            "100000000years",
        ],
        &secret,
    );
    assert_refused(status, &stderr, "--visibility-timeout");
    assert!(stderr.contains("--visibility-timeout"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let (status, stderr) = serve_refused(
        &["--listen", "127.0.0.1:0"],
        &[secret[0], ("CONNECTION_TTL_SECS", "9223372036854775807")],
    );
    assert_refused(status, &stderr, "CONNECTION_TTL_SECS");
    assert!(stderr.contains("CONNECTION_TTL_SECS"), "{stderr}");
}

// ---- hole 8: two processes on one DynamoDB roster ------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_roster_never_remove_each_others_connections() {
    let endpoint = super::harness::dynamodb_endpoint();
    let table = format!("e2e-shared-{}", uuid::Uuid::new_v4());
    // A fresh history table too: receipts live there, and ids repeat between runs.
    let history_table = format!("{table}-history");
    let envs = [
        ("DYNAMODB_ENDPOINT", endpoint.as_str()),
        ("ROSTER_TABLE", table.as_str()),
        ("HISTORY_TABLE", history_table.as_str()),
    ];
    // In process: no AWS credentials in the variables, so DynamoDB Local gets dummy ones.
    let args = ["--roster", "dynamodb", "--create-table"];
    let a = TestServer::start_with(Backend::Memory, &args, &envs).await;
    let b = TestServer::start_with(Backend::Memory, &args, &envs).await;
    let mut on_a = Client::connect(&a, &token("acme", "alice", &[])).await;
    let mut on_b = Client::connect(&b, &token("acme", "bob", &[])).await;
    let publisher = token("acme", "backend", &["publisher"]);

    // A tenant message through A finds both roster items; B's is not A's to remove.
    for n in 0..3 {
        let (status, _) = a.publish(&publisher, &to_acme(&format!("via-a-{n}"))).await;
        assert_eq!(status, 202);
        assert_eq!(on_a.next_json().await["id"], format!("via-a-{n}"));
    }
    eventually(
        Duration::from_secs(5),
        "A skipped B's connection",
        || async {
            a.metric("switchboard_foreign_connections_skipped_total")
                .await
                >= 3.0
        },
    )
    .await;
    assert_eq!(
        a.metric("switchboard_posts_total{result=\"gone\"}").await,
        0.0
    );
    // B's connection is still in the roster: B's own publish reaches it.
    let (status, _) = b.publish(&publisher, &to_acme("via-b")).await;
    assert_eq!(status, 202);
    assert_eq!(on_b.next_json().await["id"], "via-b");
    assert_eq!(
        b.metric("switchboard_posts_total{result=\"gone\"}").await,
        0.0
    );

    // A closed socket of A's own is still cleaned up as gone by A.
    drop(on_a);
    eventually(Duration::from_secs(5), "A's socket closed", || async {
        a.metric("switchboard_connections").await == 0.0
    })
    .await;
    assert_eq!(on_b.request(r#"{"action":"ping"}"#).await["type"], "pong");
}
