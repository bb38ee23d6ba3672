#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `$default` `resume` as on AWS: a real-shaped `$default` event (the fixture), history in
//! DynamoDB Local (`DYNAMODB_ENDPOINT`, a fresh table), the missed frames posted to the
//! caller through the real `ApiGatewayPusher` against a fake management endpoint, and the
//! `resumed` frame as the route response body. Also the start-up of `default::build`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_apigatewaymanagement::config::{Credentials, SharedCredentialsProvider};
use axum::extract::{Path, State};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use switchboard_aws::config::{dynamodb_client, DynamoConfig, LocalDefaults};
use switchboard_aws::{create_history_table, delete_table, ApiGatewayPusher, DynamoHistoryStore};
use switchboard_core::connection::ActionDeps;
use switchboard_core::history::{Cursor, HistoryConfig, HistoryEntry, HistoryStore, Stream};
use switchboard_lambdas::default::{self, DefaultDeps};
use switchboard_lambdas::websocket::WebsocketEvent;
use switchboard_model::{TenantId, UserId};
use time::OffsetDateTime;

const CONNECTION: &str = "TWegAd-1joECJFA=";

type Posts = Arc<Mutex<Vec<(String, String)>>>;

async fn management_endpoint() -> (SocketAddr, Posts) {
    let posts: Posts = Arc::default();
    let app = Router::new()
        .route(
            "/{stage}/@connections/{id}",
            post(
                |State(posts): State<Posts>,
                 Path((_, id)): Path<(String, String)>,
                 body: String| async move {
                    posts.lock().unwrap().push((id, body));
                    ""
                },
            ),
        )
        .with_state(posts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, posts)
}

fn endpoint() -> String {
    let endpoint = std::env::var("DYNAMODB_ENDPOINT").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1:") || endpoint.starts_with("http://localhost:"),
        "DYNAMODB_ENDPOINT={endpoint:?}: these tests need DynamoDB Local (scripts/test.sh)"
    );
    endpoint
}

fn resume_event(since: &str) -> WebsocketEvent {
    let path = format!(
        "{}/tests/fixtures/default_message.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["body"] = json!(json!({"action": "resume", "since": since}).to_string());
    serde_json::from_value(json).unwrap()
}

async fn record(
    store: &DynamoHistoryStore,
    id: &str,
    at: OffsetDateTime,
    stream: Stream,
) -> Cursor {
    let cursor = Cursor::new(at);
    let entry = HistoryEntry {
        frame: json!({"id": id, "cursor": cursor.as_str(), "data": id}).to_string(),
        cursor: cursor.clone(),
        id: id.into(),
        expires_at: at.unix_timestamp() + 300,
    };
    store.append(&entry, &[stream]).await.unwrap();
    cursor
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_posts_the_missed_frames_in_order_then_answers_resumed() {
    let client = dynamodb_client(&DynamoConfig {
        table: "unused".into(),
        scan_segments: 1,
        endpoint: Some(endpoint()),
        local: LocalDefaults {
            region: true,
            credentials: true,
        },
    })
    .await;
    let table = format!("history-default-{}", uuid_like());
    create_history_table(&client, &table).await.unwrap();
    let store = DynamoHistoryStore::new(client.clone(), table.clone());
    let acme = TenantId::parse("acme").unwrap();
    let alice = UserId::parse("alice").unwrap();
    let now = OffsetDateTime::now_utc();
    let ms = time::Duration::milliseconds;
    let since = record(
        &store,
        "seen",
        now,
        Stream::User(acme.clone(), alice.clone()),
    )
    .await;
    record(&store, "to-acme", now + ms(5), Stream::Tenant(acme.clone())).await;
    record(&store, "to-all", now + ms(6), Stream::Global).await;
    record(
        &store,
        "to-alice",
        now + ms(7),
        Stream::User(acme.clone(), alice.clone()),
    )
    .await;
    record(
        &store,
        "to-bob",
        now + ms(8),
        Stream::User(acme.clone(), UserId::parse("bob").unwrap()),
    )
    .await;
    record(
        &store,
        "to-globex",
        now + ms(9),
        Stream::Tenant(TenantId::parse("globex").unwrap()),
    )
    .await;

    let (addr, posts) = management_endpoint().await;
    let sdk = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "test",
        )))
        .build();
    let deps = DefaultDeps {
        actions: ActionDeps {
            roster: Arc::new(switchboard_core::roster::MemoryRosterStore::new()),
            history: Arc::new(store),
            history_config: HistoryConfig::default(),
            verifier: None,
        },
        pusher: Arc::new(ApiGatewayPusher::new(&sdk, &format!("http://{addr}/main"))),
    };
    let response = default::handle(&deps, &resume_event(since.as_str()))
        .await
        .unwrap();
    let response = serde_json::to_value(response).unwrap();
    assert_eq!(response["statusCode"], 200);
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"type": "resumed", "count": 3, "complete": true})
    );
    let posted = posts.lock().unwrap().clone();
    let ids: Vec<String> = posted
        .iter()
        .map(|(connection, frame)| {
            assert_eq!(connection, CONNECTION, "posted to the caller only");
            serde_json::from_str::<Value>(frame).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        ids,
        ["to-acme", "to-all", "to-alice"],
        "oldest first, own streams only"
    );

    let response = default::handle(&deps, &resume_event("garbage"))
        .await
        .unwrap();
    let body: Value = serde_json::from_str(
        serde_json::to_value(response).unwrap()["body"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body, json!({"type": "error", "error": "invalid_cursor"}));
    delete_table(&client, &table).await.unwrap();
}

#[tokio::test]
async fn build_names_a_missing_or_invalid_variable() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_string())
        }
    };
    let error = default::build(env(&[])).await.err().unwrap();
    assert!(error.to_string().contains("CALLBACK_URL"), "{error}");
    let error = default::build(env(&[
        (
            "CALLBACK_URL",
            "https://abc.execute-api.eu-west-1.amazonaws.com/main",
        ),
        ("RESUME_MAX", "0"),
    ]))
    .await
    .err()
    .unwrap();
    assert!(error.to_string().contains("RESUME_MAX"), "{error}");
    let deps = default::build(env(&[
        (
            "CALLBACK_URL",
            "https://abc.execute-api.eu-west-1.amazonaws.com/main",
        ),
        ("HISTORY_TTL_SECS", "60"),
        ("AWS_REGION", "eu-west-1"),
        ("JWT_HS256_SECRET", "default-resume-secret-of-32-bytes!"),
    ]))
    .await
    .unwrap();
    assert_eq!(deps.actions.history_config.ttl.as_secs(), 60);
}

fn uuid_like() -> String {
    format!("{:x}", OffsetDateTime::now_utc().unix_timestamp_nanos())
}
