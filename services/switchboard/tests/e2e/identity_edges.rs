//! docs/design.md: Identity per issuer; The one-machine binary, at their edges, on the real
//! start-up path: issuers that would share a tenant's users refuse to start, a
//! `refresh` is pinned to the connection's issuer, dev tokens are valid on their own
//! process only, and `Host` is read strictly.

use std::path::PathBuf;

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::harness::{
    assert_refused, expires_in, serve_refused, signed_token, token, Backend, Client, TestServer,
    LISTEN, SECRET,
};

const ACME_IDP: &str = "https://acme-idp.example";
const SUPPORT_IDP: &str = "https://support-idp.example";

/// An issuers file in a fresh folder: `acme-idp` (RSA `rsa-1`, tenant acme) and
/// `support-idp` (EC `ec-1`, `support_tenants`), with `extra` merged into support-idp's
/// entry.
fn issuers_file(support_tenants: Value, extra: Value) -> PathBuf {
    super::harness::issuers_file(|dir| {
        let mut support = json!({"issuer": SUPPORT_IDP, "jwksFile": dir.join("ec-1.json"),
                                 "tenants": support_tenants});
        for (key, value) in extra.as_object().unwrap() {
            support[key] = value.clone();
        }
        json!([
            {"issuer": ACME_IDP, "jwksFile": dir.join("rsa-1.json"), "tenants": ["acme"]},
            support
        ])
    })
}

/// A token of `iss` for acme/alice: acme-idp signs RS256 with `rsa-1`, support-idp ES256
/// with `ec-1`.
fn idp_token(iss: &str, ttl_secs: u64) -> String {
    let claims = json!({"iss": iss, "sub": "alice", "tenant": "acme", "exp": expires_in(ttl_secs)});
    signed_token(if iss == ACME_IDP { "rsa-1" } else { "ec-1" }, &claims)
}

/// `serve` with support-idp vouching for any tenant, acme included, on purpose
/// (`allowSharedTenants`): both issuers can name acme/alice.
async fn sharing_server() -> TestServer {
    let file = issuers_file(json!("*"), json!({"allowSharedTenants": true}));
    let path = file.display().to_string();
    TestServer::start_raw(Backend::Memory, &[], &[("JWT_ISSUERS_FILE", &path)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_issuers_refuse_to_start_naming_the_file_the_issuers_and_the_tenant() {
    for tenants in [json!(["globex", "acme"]), json!("*")] {
        let file = issuers_file(tenants.clone(), json!({}));
        let path = file.display().to_string();
        let (status, stderr) = serve_refused(&LISTEN, &[("JWT_ISSUERS_FILE", &path)]);
        assert_refused(status, &stderr, "JWT_ISSUERS_FILE");
        for needle in [
            "JWT_ISSUERS_FILE",
            path.as_str(),
            r#"issuers[0] ("https://acme-idp.example")"#,
            r#"issuers[1] ("https://support-idp.example")"#,
            r#"tenant "acme""#,
            "allowSharedTenants",
        ] {
            assert!(
                stderr.contains(needle),
                "{tenants}: {needle} not in {stderr}"
            );
        }
    }
    // Allowed on purpose: it starts.
    let server = sharing_server().await;
    let health = reqwest::get(server.http("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_with_another_issuers_token_is_refused_over_a_live_socket() {
    let server = sharing_server().await;
    let mut client = Client::connect(&server, &idp_token(ACME_IDP, 60)).await;
    let refresh = |token: String| json!({"action": "refresh", "token": token}).to_string();

    let answer = client
        .request(&refresh(idp_token(SUPPORT_IDP, 3_600)))
        .await;
    assert_eq!(
        answer,
        json!({"type": "error", "error": "identity_mismatch"})
    );

    let answer = client.request(&refresh(idp_token(ACME_IDP, 3_600))).await;
    assert_eq!(answer["type"], "refreshed", "{answer}");
    // The socket stays usable either way.
    assert_eq!(client.request(r#"{"action":"ping"}"#).await["type"], "pong");
}

async fn dev_token(server: &TestServer) -> String {
    let response = reqwest::Client::new()
        .post(server.http("/dev/token"))
        .json(&json!({"tenant": "demo", "user": "mallory", "roles": ["admin"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["token"].as_str().unwrap().to_string()
}

/// The status of a handshake with `token` (101 when it opened).
async fn handshake_status(server: &TestServer, token: &str) -> u16 {
    let url = format!("{}?token={token}", server.ws_url());
    match tokio_tungstenite::connect_async(url).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("handshake: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_tokens_of_one_process_are_refused_by_another_sharing_the_secret() {
    let shared = [("JWT_HS256_SECRET", SECRET)];
    let one = TestServer::start_raw(Backend::Memory, &["--dev"], &shared).await;
    let other = TestServer::start_raw(Backend::Memory, &["--dev"], &shared).await;
    let plain = TestServer::start_raw(Backend::Memory, &[], &shared).await;

    let minted = dev_token(&one).await;
    assert_eq!(handshake_status(&one, &minted).await, 101);
    let broadcast = json!({"target": {"type": "broadcast"}, "data": {"n": 1}});
    assert_eq!(one.publish(&minted, &broadcast).await.0, 202);
    for server in [&other, &plain] {
        assert_eq!(handshake_status(server, &minted).await, 401);
        assert_eq!(server.publish(&minted, &broadcast).await.0, 401);
    }
    // The configured secret's own tokens still work on every process.
    let shared_token = token("acme", "alice", &[]);
    for server in [&one, &other, &plain] {
        assert_eq!(handshake_status(server, &shared_token).await, 101);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_that_is_not_host_and_port_is_refused_with_400() {
    let server =
        TestServer::start_raw(Backend::Memory, &["--dev"], &[("JWT_HS256_SECRET", SECRET)]).await;
    let port = server.addr.port();
    let bad = [
        format!("user@127.0.0.1:{port}"),
        format!("[::1]@evil.example:{port}"),
        format!("evil@app.localhost:{port}"),
        format!("127.0.0.1:{port}/x"),
    ];
    for host in &bad {
        let mut request = format!("{}?token={}", server.ws_url(), token("acme", "alice", &[]))
            .into_client_request()
            .unwrap();
        request.headers_mut().insert("host", host.parse().unwrap());
        match tokio_tungstenite::connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 400, "{host}");
                let body: Value =
                    serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
                assert_eq!(body["error"], "invalid_request", "{host}");
            }
            other => panic!("{host}: expected a 400, got {other:?}"),
        }
        let response = reqwest::Client::new()
            .post(server.http("/dev/token"))
            .header("host", host.as_str())
            .json(&json!({"tenant": "demo", "user": "alice", "roles": ["admin"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{host}");
    }
    assert!(
        server
            .metric("switchboard_connections_refused_total{reason=\"invalid_host\"}")
            .await
            >= bad.len() as f64
    );
    // A valid Host still opens.
    let client = Client::connect(&server, &token("acme", "alice", &[])).await;
    assert!(!client.connection_id.is_empty());
}
