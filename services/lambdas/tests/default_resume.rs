#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `$default` `resume` as on AWS: a real-shaped `$default` event (the fixture), history in
//! DynamoDB Local (`DYNAMODB_ENDPOINT`, a fresh table), the missed frames posted to the
//! caller through the real `ApiGatewayPoster` against a fake management endpoint, and the
//! `resumed` frame as the route response body. Also the start-up of `default::build`, and
//! the resume's time budget (a slow management endpoint ends in `complete: false` before
//! API Gateway's 29 s integration timeout) and retries (a 429 mid-resume).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_aws::testkit::sdk_config;

#[path = "support/dynamodb_local.rs"]
mod dynamodb_local;
use dynamodb_local::endpoint;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use switchboard_aws::config::{dynamodb_client, DynamoConfig, LocalDefaults};
use switchboard_aws::{create_history_table, delete_table, ApiGatewayPoster, DynamoHistoryStore};
use switchboard_core::connection::ActionDeps;
use switchboard_core::history::{
    Cursor, HistoryConfig, HistoryEntry, HistoryStore, ResumeLimits, Stream,
    WEBSOCKET_INTEGRATION_TIMEOUT,
};
use switchboard_lambdas::default::{self, DefaultDeps};
use switchboard_lambdas::websocket::WebsocketEvent;
use switchboard_model::{TenantId, UserId};
use time::OffsetDateTime;

const CONNECTION: &str = "TWegAd-1joECJFA=";

type Posts = Arc<Mutex<Vec<(String, String)>>>;

/// A management endpoint (`POST /{stage}/@connections/{id}`) that records every frame it
/// accepts, takes `delay` per post, and first answers the scripted statuses for a frame
/// (by its `id`) before accepting it.
#[derive(Clone, Default)]
struct Management {
    posts: Posts,
    attempts: Arc<Mutex<Vec<String>>>,
    delay: Duration,
    failures: Arc<Mutex<HashMap<String, Vec<StatusCode>>>>,
}

impl Management {
    fn slow(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::default()
        }
    }

    /// The next posts of frame `id` answer `statuses`, in order.
    fn fail(self, id: &str, statuses: &[StatusCode]) -> Self {
        self.failures
            .lock()
            .unwrap()
            .insert(id.to_string(), statuses.to_vec());
        self
    }

    fn posted_ids(&self) -> Vec<String> {
        self.posts
            .lock()
            .unwrap()
            .iter()
            .map(|(connection, frame)| {
                assert_eq!(connection, CONNECTION, "posted to the caller only");
                frame_id(frame)
            })
            .collect()
    }

    async fn serve(self) -> SocketAddr {
        let app = Router::new()
            .route(
                "/{stage}/@connections/{id}",
                post(
                    |State(fake): State<Management>,
                     Path((_, id)): Path<(String, String)>,
                     body: String| async move {
                        tokio::time::sleep(fake.delay).await;
                        let frame = frame_id(&body);
                        fake.attempts.lock().unwrap().push(frame.clone());
                        let failure = fake
                            .failures
                            .lock()
                            .unwrap()
                            .get_mut(&frame)
                            .filter(|statuses| !statuses.is_empty())
                            .map(|statuses| statuses.remove(0));
                        match failure {
                            // How API Gateway answers a throttled PostToConnection.
                            Some(StatusCode::TOO_MANY_REQUESTS) => (
                                StatusCode::TOO_MANY_REQUESTS,
                                [("x-amzn-ErrorType", "LimitExceededException")],
                                r#"{"message":"Rate exceeded"}"#,
                            )
                                .into_response(),
                            Some(status) => (status, "").into_response(),
                            None => {
                                fake.posts.lock().unwrap().push((id, body));
                                "".into_response()
                            }
                        }
                    },
                ),
            )
            .with_state(self);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }
}

fn frame_id(frame: &str) -> String {
    serde_json::from_str::<Value>(frame).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
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
        frame: json!({"id": id, "cursor": cursor.as_str(), "data": id})
            .to_string()
            .into(),
        cursor: cursor.clone(),
        id: id.into(),
        expires_at: at.unix_timestamp() + 300,
    };
    store.append(&entry, &[stream]).await.unwrap();
    cursor
}

/// A fresh history table in DynamoDB Local, and the future that deletes it.
async fn history_table() -> (DynamoHistoryStore, impl std::future::Future<Output = ()>) {
    let client = dynamodb_client(&DynamoConfig {
        roster_table: "unused".into(),
        history_table: "unused".into(),
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
    let cleanup = async move { delete_table(&client, &table).await.unwrap() };
    (store, cleanup)
}

/// The `default` function's dependencies with `store` as history and the management
/// endpoint at `addr` (posts time out after `limits.attempt_timeout`).
fn deps(store: DynamoHistoryStore, addr: SocketAddr, limits: ResumeLimits) -> DefaultDeps {
    let sdk = sdk_config(None);
    DefaultDeps {
        actions: ActionDeps {
            roster: Arc::new(switchboard_core::roster::MemoryRosterStore::new()),
            history: Arc::new(store),
            history_config: HistoryConfig::default(),
            verifier: None,
            push: None,
        },
        poster: Arc::new(ApiGatewayPoster::with_timeout(
            &sdk,
            &format!("http://{addr}/main"),
            limits.attempt_timeout,
        )),
        resume: limits,
    }
}

/// The route response's body as JSON (asserting a 200).
fn body_of(response: switchboard_lambdas::websocket::WebsocketResponse) -> Value {
    let response = serde_json::to_value(response).unwrap();
    assert_eq!(response["statusCode"], 200);
    serde_json::from_str(response["body"].as_str().unwrap()).unwrap()
}

/// Records `n` global messages `m000`, `m001`, … after a `seen` one; returns `seen`'s
/// cursor and the ids in their order.
async fn record_missed(store: &DynamoHistoryStore, n: usize) -> (Cursor, Vec<String>) {
    let now = OffsetDateTime::now_utc();
    let since = record(store, "seen", now, Stream::Global).await;
    let ids: Vec<String> = (0..n).map(|i| format!("m{i:03}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let at = now + time::Duration::milliseconds(1 + i as i64);
        record(store, id, at, Stream::Global).await;
    }
    (since, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_posts_the_missed_frames_in_order_then_answers_resumed() {
    let (store, cleanup) = history_table().await;
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

    let management = Management::default();
    let deps = deps(
        store,
        management.clone().serve().await,
        ResumeLimits::default(),
    );
    let response = default::handle(&deps, &resume_event(since.as_str()))
        .await
        .unwrap();
    assert_eq!(
        body_of(response),
        json!({"type": "resumed", "count": 3, "complete": true})
    );
    assert_eq!(
        management.posted_ids(),
        ["to-acme", "to-all", "to-alice"],
        "oldest first, own streams only"
    );

    let response = default::handle(&deps, &resume_event("garbage"))
        .await
        .unwrap();
    assert_eq!(
        body_of(response),
        json!({"type": "error", "error": "invalid_cursor"})
    );
    cleanup.await;
}

/// Done-when of issue 20: a management endpoint slow enough that 500 frames would take
/// 40 s (80 ms a post) ends with `resumed` `complete: false` before API Gateway's 29 s
/// integration timeout, with the default budget (25 s, no post started with less than the
/// poster's 5 s attempt timeout left). What was posted is a prefix, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_management_api_ends_the_resume_incomplete_before_29_s() {
    let (store, cleanup) = history_table().await;
    let (since, ids) = record_missed(&store, 500).await;
    let management = Management::slow(Duration::from_millis(80));
    let limits = ResumeLimits::default();
    assert_eq!(limits.budget, Duration::from_secs(25));
    let deps = deps(store, management.clone().serve().await, limits);
    let started = tokio::time::Instant::now();
    let body = body_of(
        default::handle(&deps, &resume_event(since.as_str()))
            .await
            .unwrap(),
    );
    let elapsed = started.elapsed();
    let posted = management.posted_ids();
    println!(
        "slow management API: {} of 500 frames posted, answered after {elapsed:?}",
        posted.len()
    );
    assert!(
        elapsed < WEBSOCKET_INTEGRATION_TIMEOUT,
        "answered after {elapsed:?}"
    );
    assert_eq!(
        body,
        json!({"type": "resumed", "count": posted.len(), "complete": false})
    );
    assert!(
        (100..500).contains(&posted.len()),
        "{} posted",
        posted.len()
    );
    assert_eq!(posted, ids[..posted.len()], "a prefix, in order");
    cleanup.await;
}

/// The same with a small budget and a nearer invocation deadline: the deadline (less one
/// attempt) ends the posts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invocation_deadline_bounds_the_resume_too() {
    let (store, cleanup) = history_table().await;
    let (since, ids) = record_missed(&store, 100).await;
    let management = Management::slow(Duration::from_millis(40));
    let limits = ResumeLimits {
        budget: Duration::from_secs(10),
        attempt_timeout: Duration::from_millis(500),
        ..ResumeLimits::default()
    };
    let deps = deps(store, management.clone().serve().await, limits);
    let started = tokio::time::Instant::now();
    let deadline = started + Duration::from_millis(2_000);
    let body = body_of(
        default::handle_until(&deps, &resume_event(since.as_str()), Some(deadline))
            .await
            .unwrap(),
    );
    let elapsed = started.elapsed();
    let posted = management.posted_ids();
    assert!(
        elapsed < Duration::from_millis(2_000),
        "answered after {elapsed:?}"
    );
    assert_eq!(
        body,
        json!({"type": "resumed", "count": posted.len(), "complete": false})
    );
    assert!((1..100).contains(&posted.len()), "{} posted", posted.len());
    assert_eq!(posted, ids[..posted.len()], "a prefix, in order");
    cleanup.await;
}

/// A 429 (`LimitExceededException`) for one frame and a 502 for the next, mid-resume:
/// both are retried, every frame arrives once, in order, and the resume is complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_post_mid_resume_is_retried() {
    let (store, cleanup) = history_table().await;
    let (since, ids) = record_missed(&store, 6).await;
    let management = Management::default()
        .fail("m002", &[StatusCode::TOO_MANY_REQUESTS])
        .fail("m003", &[StatusCode::BAD_GATEWAY]);
    let deps = deps(
        store,
        management.clone().serve().await,
        ResumeLimits::default(),
    );
    let body = body_of(
        default::handle(&deps, &resume_event(since.as_str()))
            .await
            .unwrap(),
    );
    assert_eq!(
        body,
        json!({"type": "resumed", "count": 6, "complete": true})
    );
    assert_eq!(management.posted_ids(), ids, "each frame once, in order");
    assert_eq!(
        management.attempts.lock().unwrap().clone(),
        ["m000", "m001", "m002", "m002", "m003", "m003", "m004", "m005"],
        "the throttled and the failed post retried"
    );
    cleanup.await;
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
