//! SPEC §13: `switchboard serve` on a real network. Each test drives the real binary.

use serde_json::{json, Value};

use super::harness::{serve_refused, Backend, Client, TestServer};

// ---- hole 2: dev mode is explicit, loopback only -------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_a_key_source_refuses_to_start_naming_the_variables() {
    let (status, stderr) = serve_refused(&["--listen", "127.0.0.1:0"], &[]);
    assert!(!status.success(), "{stderr}");
    for var in ["JWT_HS256_SECRET", "JWT_JWKS_FILE", "JWT_JWKS_URL", "--dev"] {
        assert!(stderr.contains(var), "{var} not named: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_jwks_url_is_an_error_not_dev_mode() {
    let (status, stderr) = serve_refused(&["--listen", "127.0.0.1:0"], &[("JWT_JWKS_URL", "")]);
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("JWT_JWKS_URL"), "{stderr}");
    // Even with --dev: a half-written configuration never falls back to a random secret.
    let (status, stderr) = serve_refused(
        &["--dev", "--listen", "127.0.0.1:0"],
        &[("JWT_JWKS_URL", "")],
    );
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("JWT_JWKS_URL"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_refuses_a_non_loopback_listen() {
    let (status, stderr) = serve_refused(&["--dev", "--listen", "0.0.0.0:0"], &[]);
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("--dev") && stderr.contains("loopback"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_hs256_secret_is_refused_without_dev_and_accepted_with_it() {
    let short = [("JWT_HS256_SECRET", "only-16-bytes-xx")];
    let (status, stderr) = serve_refused(&["--listen", "127.0.0.1:0"], &short);
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("JWT_HS256_SECRET") && stderr.contains("32"),
        "{stderr}"
    );
    let server = TestServer::start_raw(Backend::Memory, &["--dev"], &short);
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
    let server = TestServer::start_raw(Backend::Memory, &["--dev"], &[]);
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
    let server = TestServer::start(Backend::Memory);
    let (status, _) = dev_token(&server, None).await;
    assert_eq!(status, 404);
}
