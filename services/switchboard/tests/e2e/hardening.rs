//! SPEC §13: `switchboard serve` on a real network. Each test drives the real binary.

use serde_json::{json, Value};

use super::harness::{serve_refused, token, Backend, Client, TestServer};

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
    let server = TestServer::start(Backend::Memory);
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
    // And the management listener serves nothing else.
    assert_eq!(
        http.get(server.management("/healthz"))
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
    );
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
