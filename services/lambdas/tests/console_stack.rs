#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The console_stack rig (examples/console_stack, the AWS path of the console's browser
//! test) on its own: the real `publish-api` and `publisher` binaries under its emulated
//! Runtime API, its tables on DynamoDB Local. Through its HTTP API: presence counts the
//! connections the rig writes, a publish is delivered to the fake `@connections` endpoint
//! and its receipt turns `delivered` and final, a removed connection is gone (410), and a
//! path the stack does not route is API Gateway's own 404.

#[path = "support/dynamodb_local.rs"]
mod dynamodb_local;
#[path = "../examples/console_stack/gateway.rs"]
mod gateway;
#[path = "../examples/console_stack/rig.rs"]
mod rig;
#[path = "../examples/console_stack/routes.rs"]
mod routes;
#[path = "../examples/console_stack/runtime.rs"]
mod runtime;
#[path = "../examples/console_stack/stack.rs"]
mod stack;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_core::auth::mint_hs256;
use switchboard_model::{TenantId, UserId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "console-stack-test-secret-32-bytes!";

/// One HTTP/1.1 exchange with `url` (`http://host:port/path`): (status, JSON body or null).
async fn call(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("an answer within 30 s")
        .unwrap();
    let text = String::from_utf8(answer).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Polls `check` every 100 ms until it answers `Some`, for at most 20 s.
async fn until<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn presence_publish_receipt_and_routes_through_the_real_binaries() {
    let mut stack = stack::start(stack::StackConfig {
        secret: SECRET.into(),
        // The binaries of this package, built for its integration tests.
        bin_dir: PathBuf::from(env!("CARGO_BIN_EXE_publish-api"))
            .parent()
            .unwrap()
            .to_path_buf(),
        dynamodb_endpoint: dynamodb_local::endpoint(),
        tenants_file: None,
        function_logs: std::env::var_os("TEST_LOG").is_some(),
    })
    .await
    .unwrap();
    let (api, rig) = (stack.api_url.clone(), stack.rig_url.clone());
    tokio::select! {
        () = scenario(&api, &rig) => {}
        failure = stack.failure() => panic!("{failure:?}"),
    }
    stack.stop().await;
}

async fn scenario(api: &str, rig: &str) {
    let admin = mint_hs256(
        SECRET.as_bytes(),
        &TenantId::parse("ops").unwrap(),
        &UserId::parse("console").unwrap(),
        &["admin".to_string()],
        Duration::from_secs(600),
    );
    let token = Some(admin.as_str());
    // A GET of the API as the admin.
    let get = async |path: &str| call("GET", &format!("{api}{path}"), token, None).await;

    let connect = async |user: &str| {
        let (status, body) = call(
            "POST",
            &format!("{rig}/_rig/connections"),
            None,
            Some(json!({"tenant": "acme", "user": user})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        body["connectionId"].as_str().unwrap().to_string()
    };
    let alice = connect("alice").await;
    let bob = connect("bob").await;
    let (status, summary) = get("/v1/tenants/acme/presence/summary").await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        (&summary["connections"], &summary["users"]),
        (&json!(2), &json!(2))
    );

    // bob's connection ends: posts to it would be 410 now.
    let (status, _) = call(
        "DELETE",
        &format!("{rig}/_rig/connections/acme/{bob}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, summary) = get("/v1/tenants/acme/presence/summary").await;
    assert_eq!(summary["connections"], 1);

    let (status, accepted) = call(
        "POST",
        &format!("{api}/v1/messages"),
        token,
        Some(json!({"id": "rig-1", "target": {"type": "tenant", "tenant": "acme"}, "data": {"n": 1}})),
    )
    .await;
    assert_eq!((status, accepted), (202, json!({"id": "rig-1"})));
    let receipt = until("a final receipt", async || {
        let (_, receipt) = get("/v1/messages/rig-1?tenant=acme").await;
        (receipt["final"] == true).then_some(receipt)
    })
    .await;
    assert_eq!(receipt["status"], "delivered", "{receipt}");
    assert_eq!(
        (&receipt["matched"], &receipt["delivered"]),
        (&json!(1), &json!(1))
    );
    let (_, posts) = call("GET", &format!("{rig}/_rig/posts"), None, None).await;
    let posts: Vec<(String, Value)> = posts
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["connectionId"].as_str().unwrap().to_string(),
                p["data"]["data"].clone(),
            )
        })
        .collect();
    assert_eq!(posts, vec![(alice, json!({"n": 1}))]);

    // Not a route of the stack: API Gateway answers, the function never sees it.
    let (status, body) = get("/v1/dead-letters").await;
    assert_eq!((status, body), (404, json!({"message": "Not Found"})));
}
