//! The `token` and `publish` commands, run as processes.

use std::sync::{Arc, Mutex};

use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use super::harness::{
    assert_refused, command_refused, run_switchboard, Backend, Client, TestServer, SECRET,
};

pub fn switchboard(args: &[&str], envs: &[(&str, &str)]) -> (bool, String, String) {
    let output = run_switchboard(args, envs);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).trim().to_string(),
        String::from_utf8_lossy(&output.stderr).trim().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_and_publish_commands_reach_a_client() {
    let server = TestServer::start(Backend::Memory).await;
    let secret = [("JWT_HS256_SECRET", SECRET)];
    let (ok, alice, _) = switchboard(&["token", "--tenant", "acme", "--user", "alice"], &secret);
    assert!(ok);
    let (ok, backend, _) = switchboard(
        &[
            "token",
            "--tenant",
            "acme",
            "--user",
            "backend",
            "--role",
            "publisher",
            "--ttl",
            "5m",
        ],
        &secret,
    );
    assert!(ok);
    let mut client = Client::connect(&server, &alice).await;

    let url = server.http("/v1/messages");
    let (ok, stdout, stderr) = switchboard(
        &[
            "publish",
            "--url",
            &url,
            "--token",
            &backend,
            "--tenant",
            "acme",
            "--user",
            "alice",
            "--id",
            "cli-1",
            "--data",
            r#"{"via":"cli"}"#,
        ],
        &[],
    );
    assert!(ok, "{stderr}");
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap(),
        json!({"id":"cli-1"})
    );
    let mut frame = client.next_json().await;
    let cursor = frame
        .as_object_mut()
        .unwrap()
        .remove("cursor")
        .expect("a users message is recorded: its frame carries a cursor");
    assert!(cursor.as_str().is_some_and(|c| c.len() > 14), "{cursor}");
    assert_eq!(frame, json!({"id":"cli-1","data":{"via":"cli"}}));

    // Refusals are reported with the server's answer and a failing exit code.
    let (ok, _, stderr) = switchboard(
        &[
            "publish", "--url", &url, "--token", &backend, "--tenant", "globex", "--data", "1",
        ],
        &[],
    );
    assert!(!ok);
    assert!(stderr.contains("403"), "{stderr}");
    // Invalid input never leaves the machine.
    let (status, stderr) = command_refused(
        &[
            "publish", "--url", &url, "--token", &backend, "--tenant", "a#b",
        ],
        &[],
    );
    assert_refused(status, &stderr, "--tenant");
    assert!(stderr.contains("target.tenant"), "{stderr}");
    // Without a secret, `token` says what is missing.
    let (status, stderr) = command_refused(&["token", "--tenant", "acme", "--user", "alice"], &[]);
    assert_refused(status, &stderr, "JWT_HS256_SECRET");
    assert!(stderr.contains("JWT_HS256_SECRET"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_command_sends_to_an_sqs_queue_url() {
    // A fake SQS endpoint speaking the JSON protocol the SDK uses.
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = received.clone();
    let app = Router::new().route(
        "/",
        post(move |body: String| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(serde_json::from_str(&body).unwrap_or(Value::Null));
                (
                    [("content-type", "application/x-amz-json-1.0")],
                    json!({"MessageId": "00000000-0000-0000-0000-000000000001", "MD5OfMessageBody": "x"}).to_string(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let queue_url = format!("{endpoint}/000000000000/switchboard");
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
        switchboard(
            &[
                "publish",
                "--queue-url",
                &queue_url,
                "--tenant",
                "acme",
                "--user",
                "alice",
                "--id",
                "sqs-1",
                "--data",
                "[1]",
            ],
            &[
                ("AWS_ENDPOINT_URL_SQS", endpoint.as_str()),
                ("AWS_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "local"),
                ("AWS_SECRET_ACCESS_KEY", "local"),
            ],
        )
    })
    .await
    .unwrap();
    assert!(ok, "{stderr}");
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap(),
        json!({"id":"sqs-1"})
    );
    let requests = received.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    assert!(requests[0]["QueueUrl"]
        .as_str()
        .unwrap()
        .ends_with("/000000000000/switchboard"));
    let body: Value = serde_json::from_str(requests[0]["MessageBody"].as_str().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"id":"sqs-1","target":{"type":"users","tenant":"acme","users":["alice"]},"data":[1]})
    );
}
