#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `ApiGatewayPoster` against a real HTTP endpoint on 127.0.0.1 that answers like API
//! Gateway's management API: each connection id scripts one answer, and every mapping to
//! `PostError` is checked, with the SDK's retries off (one request per push).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use switchboard_aws::testkit::sdk_config;
use switchboard_aws::ApiGatewayPoster;
use switchboard_core::poster::{ConnectionPoster, Frame, PostError};
use switchboard_model::ConnectionId;

/// (stage, connection id) → bodies received.
type Posts = HashMap<(String, String), Vec<Bytes>>;

#[derive(Clone, Default)]
struct Seen {
    posts: Arc<Mutex<Posts>>,
    /// (stage, connection id) of every `DeleteConnection`.
    deletes: Arc<Mutex<Vec<(String, String)>>>,
    headers: Arc<Mutex<Vec<HeaderMap>>>,
}

fn typed(status: StatusCode, error_type: &str) -> Response {
    (
        status,
        [
            ("x-amzn-ErrorType", error_type),
            ("content-type", "application/json"),
        ],
        format!(r#"{{"message":"{error_type}"}}"#),
    )
        .into_response()
}

async fn post_to_connection(
    State(seen): State<Seen>,
    Path((stage, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    seen.posts
        .lock()
        .unwrap()
        .entry((stage, id.clone()))
        .or_default()
        .push(body);
    seen.headers.lock().unwrap().push(headers);
    answer(&id).await
}

async fn delete_connection(
    State(seen): State<Seen>,
    Path((stage, id)): Path<(String, String)>,
) -> Response {
    seen.deletes.lock().unwrap().push((stage, id.clone()));
    answer(&id).await
}

/// The scripted answer for connection `id`.
async fn answer(id: &str) -> Response {
    match id {
        "gone" => typed(StatusCode::GONE, "GoneException"),
        "gone-bare" => StatusCode::GONE.into_response(),
        // The modelled error type decides before the status does.
        "gone-typed-400" => typed(StatusCode::BAD_REQUEST, "GoneException"),
        "limit" => typed(StatusCode::TOO_MANY_REQUESTS, "LimitExceededException"),
        "throttled-bare" => StatusCode::TOO_MANY_REQUESTS.into_response(),
        "too-big" => typed(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeException"),
        "too-big-bare" => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        "broken" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "bad-gateway" => StatusCode::BAD_GATEWAY.into_response(),
        "unavailable" => typed(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
        "forbidden" => typed(StatusCode::FORBIDDEN, "ForbiddenException"),
        "bad-request" => StatusCode::BAD_REQUEST.into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            StatusCode::OK.into_response()
        }
        _ => StatusCode::OK.into_response(),
    }
}

async fn spawn_gateway() -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route(
            "/{stage}/@connections/{id}",
            post(post_to_connection).delete(delete_connection),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, seen)
}

fn c(id: &str) -> ConnectionId {
    ConnectionId::parse(id).unwrap()
}

async fn poster() -> (ApiGatewayPoster, Seen) {
    let (addr, seen) = spawn_gateway().await;
    let poster = ApiGatewayPoster::with_timeout(
        &sdk_config(None),
        &format!("http://{addr}/main"),
        Duration::from_millis(500),
    );
    (poster, seen)
}

fn attempts(seen: &Seen, id: &str) -> usize {
    seen.posts
        .lock()
        .unwrap()
        .get(&("main".to_string(), id.to_string()))
        .map_or(0, Vec::len)
}

#[tokio::test]
async fn successful_post_sends_the_frame_to_the_stage_path() {
    let (poster, seen) = poster().await;
    poster
        .post(
            &c("L0SM9cOFvHcCIhw="),
            &Frame::from(r#"{"id":"m-1","data":{"n":1}}"#),
        )
        .await
        .unwrap();
    let posts = seen.posts.lock().unwrap();
    let bodies = &posts[&("main".to_string(), "L0SM9cOFvHcCIhw=".to_string())];
    assert_eq!(bodies.len(), 1);
    assert_eq!(&bodies[0][..], br#"{"id":"m-1","data":{"n":1}}"#);
    let headers = seen.headers.lock().unwrap();
    let auth = headers[0]
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        auth.contains("/eu-west-1/execute-api/aws4_request"),
        "signed for execute-api: {auth}"
    );
}

#[tokio::test]
async fn gone_maps_to_gone() {
    let (poster, seen) = poster().await;
    assert_eq!(
        poster.post(&c("gone"), &Frame::from("x")).await,
        Err(PostError::Gone)
    );
    assert_eq!(
        poster.post(&c("gone-bare"), &Frame::from("x")).await,
        Err(PostError::Gone)
    );
    assert_eq!(attempts(&seen, "gone"), 1);
}

#[tokio::test]
async fn throttling_maps_to_throttled_without_sdk_retries() {
    let (poster, seen) = poster().await;
    assert_eq!(
        poster.post(&c("limit"), &Frame::from("x")).await,
        Err(PostError::Throttled)
    );
    assert_eq!(
        poster.post(&c("throttled-bare"), &Frame::from("x")).await,
        Err(PostError::Throttled)
    );
    assert_eq!(attempts(&seen, "limit"), 1, "the SDK must not retry");
    assert_eq!(
        attempts(&seen, "throttled-bare"),
        1,
        "the SDK must not retry"
    );
}

#[tokio::test]
async fn payload_too_large_maps_to_payload_too_large() {
    let (poster, _) = poster().await;
    assert_eq!(
        poster.post(&c("too-big"), &Frame::from("x")).await,
        Err(PostError::PayloadTooLarge)
    );
    assert_eq!(
        poster.post(&c("too-big-bare"), &Frame::from("x")).await,
        Err(PostError::PayloadTooLarge)
    );
}

#[tokio::test]
async fn server_errors_map_to_transient_without_sdk_retries() {
    let (poster, seen) = poster().await;
    for id in ["broken", "bad-gateway", "unavailable"] {
        let result = poster.post(&c(id), &Frame::from("x")).await;
        assert!(
            matches!(result, Err(PostError::Transient(_))),
            "{id}: {result:?}"
        );
        assert_eq!(attempts(&seen, id), 1, "{id}: the SDK must not retry");
    }
}

#[tokio::test]
async fn forbidden_and_bad_requests_are_fatal() {
    let (poster, _) = poster().await;
    for id in ["forbidden", "bad-request"] {
        let result = poster.post(&c(id), &Frame::from("x")).await;
        assert!(
            matches!(result, Err(PostError::Fatal(_))),
            "{id}: {result:?}"
        );
    }
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout() {
    let (poster, seen) = poster().await;
    let started = std::time::Instant::now();
    assert_eq!(
        poster.post(&c("slow"), &Frame::from("x")).await,
        Err(PostError::Timeout)
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(attempts(&seen, "slow"), 1);
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let poster = ApiGatewayPoster::with_timeout(
        &sdk_config(None),
        &format!("http://{addr}/main"),
        Duration::from_millis(500),
    );
    let result = poster.post(&c("anyone"), &Frame::from("x")).await;
    assert!(matches!(result, Err(PostError::Transient(_))), "{result:?}");
}

#[tokio::test]
async fn default_poster_uses_a_five_second_attempt_timeout_and_no_retries() {
    let poster = ApiGatewayPoster::new(&sdk_config(None), "http://127.0.0.1:9/main");
    let config = poster.client().config();
    assert_eq!(
        config
            .timeout_config()
            .and_then(|t| t.operation_attempt_timeout()),
        Some(Duration::from_secs(5))
    );
    assert_eq!(config.retry_config().map(|r| r.max_attempts()), Some(1));
}

/// `close` is `DeleteConnection` on the same path; a connection already gone counts as
/// closed, the other failures map like a post's.
#[tokio::test]
async fn close_deletes_the_connection_and_maps_failures() {
    let (poster, seen) = poster().await;
    poster.close(&c("expired-1")).await.unwrap();
    poster.close(&c("gone")).await.unwrap();
    assert_eq!(
        poster.close(&c("limit")).await.unwrap_err(),
        PostError::Throttled
    );
    assert!(matches!(
        poster.close(&c("broken")).await.unwrap_err(),
        PostError::Transient(_)
    ));
    assert!(matches!(
        poster.close(&c("forbidden")).await.unwrap_err(),
        PostError::Fatal(_)
    ));
    let deletes = seen.deletes.lock().unwrap().clone();
    assert_eq!(
        deletes,
        ["expired-1", "gone", "limit", "broken", "forbidden"]
            .map(|id| ("main".to_string(), id.to_string()))
    );
    assert!(seen.posts.lock().unwrap().is_empty(), "close posts nothing");
}
