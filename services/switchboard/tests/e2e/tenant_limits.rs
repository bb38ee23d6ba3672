//! Tenant settings (`TENANTS_FILE`, docs/design.md: Tenants) through the real server: a
//! publisher over its tenant's rate gets 429s naming the limit while another tenant is
//! untouched, a tenant at its connection cap is refused while others connect, a suspended
//! tenant can neither connect nor publish and its open sockets close with 4003, a payload
//! over a tenant's own limit gets 413, a target type it may not be sent 403, and a bad file
//! refuses start-up naming the key.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::harness::{assert_refused, serve_refused, token, Backend, Client, TestServer};

/// A settings file in a fresh folder (removed by the test when done).
fn settings_file(text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tenants-e2e-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tenants.json");
    std::fs::write(&path, text).unwrap();
    path
}

/// Rewrites the file with a later modification time, so the next check re-reads it.
fn rewrite(path: &PathBuf, text: &str) {
    std::fs::write(path, text).unwrap();
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() + Duration::from_secs(60))
        .unwrap();
}

async fn server_with(path: &std::path::Path) -> TestServer {
    let path = path.display().to_string();
    TestServer::start_with(Backend::Memory, &[], &[("TENANTS_FILE", path.as_str())]).await
}

fn to_user(tenant: &str, user: &str, data: Value) -> Value {
    json!({"target": {"type": "users", "tenant": tenant, "users": [user]}, "data": data})
}

/// Status, `Retry-After` and body of one publish.
async fn publish(
    server: &TestServer,
    token: &str,
    envelope: &Value,
) -> (u16, Option<String>, Value) {
    let response = reqwest::Client::new()
        .post(server.http("/v1/messages"))
        .bearer_auth(token)
        .json(envelope)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (
        status,
        retry_after,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// The handshake's HTTP status (101 when it opened) and error body.
async fn handshake(server: &TestServer, token: &str) -> (u16, Value) {
    let url = format!("{}?token={token}", server.ws_url());
    match tokio_tungstenite::connect_async(url).await {
        Ok((mut socket, _)) => {
            let _ = socket.close(None).await;
            (101, Value::Null)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            (response.status().as_u16(), body)
        }
        Err(other) => panic!("handshake failed: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_over_its_rate_gets_429s_and_another_tenant_does_not() {
    let path = settings_file(r#"{"tenants":{"acme":{"publishesPerSecond":5}}}"#);
    let server = server_with(&path).await;
    let acme = token("acme", "svc", &["publisher"]);
    let globex = token("globex", "svc", &["publisher"]);
    let mut bob = Client::connect(&server, &token("globex", "bob", &[])).await;

    // Ten times the rate for two seconds: 100 publishes, interleaved with globex's.
    let (mut accepted, mut limited) = (0, 0);
    let started = tokio::time::Instant::now();
    for n in 0..100 {
        let (status, retry_after, body) =
            publish(&server, &acme, &to_user("acme", "alice", json!(n))).await;
        match status {
            202 => accepted += 1,
            429 => {
                limited += 1;
                assert_eq!(body["error"], "limit_exceeded", "{body}");
                assert_eq!(body["limit"], "publishesPerSecond", "{body}");
                assert!(body["message"].as_str().unwrap().contains("acme"), "{body}");
                let wait: u64 = retry_after.expect("Retry-After").parse().unwrap();
                assert!((1..=2).contains(&wait), "{wait}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
        if n % 10 == 0 {
            let (status, _, body) =
                publish(&server, &globex, &to_user("globex", "bob", json!(n))).await;
            assert_eq!(status, 202, "globex is not limited: {body}");
        }
        tokio::time::sleep_until(started + Duration::from_millis(20 * (n + 1))).await;
    }
    // A burst of 5 plus 5 a second for the ~2 s the loop took (longer on a loaded machine:
    // the bound follows the time it really took).
    let most = 5 + (5.0 * started.elapsed().as_secs_f64()).ceil() as usize + 1;
    assert!(
        (10..=most).contains(&accepted),
        "accepted {accepted}, at most {most}"
    );
    assert_eq!(accepted + limited, 100);
    for n in (0..100).step_by(10) {
        assert_eq!(bob.next_json().await["data"], json!(n));
    }
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_at_its_connection_cap_is_refused_and_others_connect() {
    let path =
        settings_file(r#"{"tenants":{"acme":{"maxConnections":3,"maxConnectionsPerUser":2}}}"#);
    let server = server_with(&path).await;
    let _a1 = Client::connect(&server, &token("acme", "alice", &[])).await;
    let _a2 = Client::connect(&server, &token("acme", "alice", &[])).await;
    let (status, body) = handshake(&server, &token("acme", "alice", &[])).await;
    assert_eq!(
        (status, body["limit"].as_str()),
        (429, Some("maxConnectionsPerUser")),
        "{body}"
    );
    let _b1 = Client::connect(&server, &token("acme", "bob", &[])).await;
    let (status, body) = handshake(&server, &token("acme", "carol", &[])).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "limit_exceeded");
    assert_eq!(body["limit"], "maxConnections");
    // Other tenants are not held to acme's cap.
    let mut others = Vec::new();
    for n in 0..5 {
        others.push(Client::connect(&server, &token("globex", &format!("u{n}"), &[])).await);
    }
    // A slot freed is a slot usable.
    drop(_b1);
    super::harness::eventually(
        Duration::from_secs(5),
        "acme's freed slot opens",
        || async { handshake(&server, &token("acme", "carol", &[])).await.0 == 101 },
    )
    .await;
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_tenant_cannot_connect_or_publish_and_its_sockets_close_with_4003() {
    let path = settings_file(r#"{"tenants":{"acme":{"maxConnections":100}}}"#);
    let server = server_with(&path).await;
    let mut alice = Client::connect(&server, &token("acme", "alice", &[])).await;
    let mut bob = Client::connect(&server, &token("globex", "bob", &[])).await;
    let acme = token("acme", "svc", &["publisher"]);
    let (status, _, _) = publish(&server, &acme, &to_user("acme", "alice", json!(1))).await;
    assert_eq!(status, 202);
    assert_eq!(alice.next_json().await["data"], 1);

    rewrite(&path, r#"{"tenants":{"acme":{"suspended":true}}}"#);
    // The file is checked every 2 s.
    assert_eq!(alice.close_code().await, Some(4003));
    let (status, body) = handshake(&server, &token("acme", "alice", &[])).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("tenant_suspended")),
        "{body}"
    );
    let (status, _, body) = publish(&server, &acme, &to_user("acme", "alice", json!(2))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("tenant_suspended")),
        "{body}"
    );
    // A global admin cannot send to it either.
    let admin = token("ops", "root", &["admin"]);
    let (status, _, _) = publish(&server, &admin, &to_user("acme", "alice", json!(3))).await;
    assert_eq!(status, 403);
    // Other tenants go on.
    let globex = token("globex", "svc", &["publisher"]);
    let (status, _, _) = publish(&server, &globex, &to_user("globex", "bob", json!(4))).await;
    assert_eq!(status, 202);
    assert_eq!(bob.next_json().await["data"], 4);

    // An invalid rewrite keeps the suspension; lifting it lets acme back in.
    rewrite(&path, r#"{"tenants":{"acme":{"suspended":"no"}}}"#);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        handshake(&server, &token("acme", "alice", &[])).await.0,
        403
    );
    assert!(
        server
            .metric("switchboard_tenant_settings_invalid_total")
            .await
            >= 1.0
    );
    let later = SystemTime::now() + Duration::from_secs(120);
    std::fs::write(&path, r#"{"tenants":{}}"#).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(later)
        .unwrap();
    super::harness::eventually(Duration::from_secs(5), "acme connects again", || async {
        handshake(&server, &token("acme", "alice", &[])).await.0 == 101
    })
    .await;
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_and_target_types_meet_the_tenants_own_limits() {
    let path = settings_file(
        r#"{"defaults":{"maxPayloadBytes":2048},
            "tenants":{"acme":{"maxPayloadBytes":100,"allowedTargets":["users","connections"]}}}"#,
    );
    let server = server_with(&path).await;
    let acme = token("acme", "svc", &["publisher"]);
    let big = json!("x".repeat(200));
    let (status, _, body) = publish(&server, &acme, &to_user("acme", "alice", big.clone())).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"], "limit_exceeded");
    assert_eq!(body["limit"], "maxPayloadBytes");
    let small = json!("x".repeat(90));
    let (status, _, _) = publish(&server, &acme, &to_user("acme", "alice", small)).await;
    assert_eq!(status, 202);
    // The defaults hold unlisted tenants: 200 bytes fit in 2,048.
    let globex = token("globex", "svc", &["publisher"]);
    let (status, _, _) = publish(&server, &globex, &to_user("globex", "bob", big)).await;
    assert_eq!(status, 202);
    let (status, _, body) = publish(
        &server,
        &acme,
        &json!({"target": {"type": "tenant", "tenant": "acme"}, "data": 1}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["limit"], "allowedTargets");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn a_bad_settings_file_refuses_start_up_naming_the_key() {
    for (text, named) in [
        (
            r#"{"tenants":{"acme":{"maxConections":5}}}"#,
            "tenants.acme.maxConections",
        ),
        (
            r#"{"defaults":{"publishesPerSecond":-1}}"#,
            "defaults.publishesPerSecond",
        ),
    ] {
        let path = settings_file(text);
        let file = path.display().to_string();
        let (status, stderr) = serve_refused(
            &[
                "--listen",
                "127.0.0.1:0",
                "--management-listen",
                "127.0.0.1:0",
            ],
            &[
                ("JWT_HS256_SECRET", super::harness::SECRET),
                ("TENANTS_FILE", file.as_str()),
            ],
        );
        assert_refused(status, &stderr, "TENANTS_FILE");
        assert!(stderr.contains("TENANTS_FILE"), "{stderr}");
        assert!(stderr.contains(named), "{stderr}");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
