//! What stands in for the rest of AWS, on one listener (the "rig" address):
//! - SQS (JSON protocol, `POST /` with `X-Amz-Target: AmazonSQS.SendMessage`): keeps what
//!   the functions send, per queue URL, with `DelaySeconds` honoured; bounded.
//! - The WebSocket API's `@connections` (`POST /{stage}/@connections/{id}`): keeps every
//!   post, answers 200, or 410 for a connection the rig removed (as API Gateway does for a
//!   closed one).
//! - Control: `POST /_rig/connections {"tenant","user"}` → `{"connectionId"}` (a roster
//!   record, as `$connect` writes it), `DELETE /_rig/connections/{tenant}/{id}` (the record
//!   removed, as `$disconnect` does), `GET /_rig/posts` → `[{"connectionId","data"}]`,
//!   `GET /_rig/dead-letters` → the bodies sent to the dead-letter queue.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_core::roster::{ConnectionRecord, RosterStore};
use switchboard_model::{ConnectionId, TenantId};
use tokio::time::Instant;

use crate::runtime::lock;

/// The dead-letter queue's path, as SQS URLs end (account, then name).
pub const DLQ_PATH: &str = "/123456789012/switchboard-dead-letters";
/// Messages the fake SQS holds across its queues (more: refused).
const MAX_MESSAGES: usize = 10_000;
/// Posts kept for `GET /_rig/posts` (the oldest dropped past it).
const MAX_POSTS: usize = 10_000;
/// A roster record's lifetime, as `CONNECTION_TTL_SECS` gives it.
const CONNECTION_TTL_SECS: i64 = 7_200;

/// One message waiting in the fake SQS.
#[derive(Debug, Clone)]
pub struct Queued {
    pub queue_url: String,
    pub message_id: String,
    pub body: String,
    pub receive_count: u32,
    pub visible_at: Instant,
}

#[derive(Clone)]
pub struct Rig {
    pub roster: Arc<dyn RosterStore>,
    messages: Arc<Mutex<VecDeque<Queued>>>,
    posts: Arc<Mutex<VecDeque<Value>>>,
    removed: Arc<Mutex<HashSet<String>>>,
    next_id: Arc<AtomicU64>,
}

impl Rig {
    pub fn new(roster: Arc<dyn RosterStore>) -> Self {
        Self {
            roster,
            messages: Arc::default(),
            posts: Arc::default(),
            removed: Arc::default(),
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/", post(send_message))
            .route("/{stage}/@connections/{id}", post(post_to_connection))
            .route("/_rig/connections", post(add_connection))
            .route("/_rig/connections/{tenant}/{id}", delete(remove_connection))
            .route("/_rig/posts", get(posts))
            .route("/_rig/dead-letters", get(dead_letters))
            .with_state(self.clone())
    }

    fn next(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes up to `max` messages of `queue_url` visible now (receive count raised).
    pub fn receive(&self, queue_url: &str, max: usize) -> Vec<Queued> {
        let now = Instant::now();
        let mut messages = lock(&self.messages);
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(messages.len());
        for mut message in messages.drain(..) {
            if taken.len() < max && message.queue_url == queue_url && message.visible_at <= now {
                message.receive_count += 1;
                taken.push(message);
            } else {
                kept.push_back(message);
            }
        }
        *messages = kept;
        taken
    }

    /// Puts a received message back, visible again after `delay`.
    pub fn release(&self, mut message: Queued, delay: Duration) {
        message.visible_at = Instant::now() + delay;
        lock(&self.messages).push_back(message);
    }

    /// Moves a message to `queue_url` (a redrive policy's dead-letter queue).
    pub fn move_to(&self, mut message: Queued, queue_url: &str) {
        message.queue_url = queue_url.to_string();
        message.visible_at = Instant::now();
        lock(&self.messages).push_back(message);
    }

    fn bodies(&self, queue_suffix: &str) -> Vec<String> {
        lock(&self.messages)
            .iter()
            .filter(|m| m.queue_url.ends_with(queue_suffix))
            .map(|m| m.body.clone())
            .collect()
    }
}

fn sqs_error(kind: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/x-amz-json-1.0")],
        json!({"__type": kind, "message": message}).to_string(),
    )
        .into_response()
}

async fn send_message(State(rig): State<Rig>, headers: HeaderMap, body: String) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if target != "AmazonSQS.SendMessage" {
        return sqs_error("AWS.SimpleQueueService.UnsupportedOperation", target);
    }
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return sqs_error("InvalidParameterValue", "not JSON");
    };
    let (Some(queue_url), Some(message_body)) = (
        request["QueueUrl"].as_str(),
        request["MessageBody"].as_str(),
    ) else {
        return sqs_error("MissingParameter", "QueueUrl and MessageBody");
    };
    let delay = request["DelaySeconds"].as_u64().unwrap_or(0).min(900);
    let message_id = format!("{:032x}", rig.next());
    {
        let mut messages = lock(&rig.messages);
        if messages.len() >= MAX_MESSAGES {
            return sqs_error(
                "AWS.SimpleQueueService.TooManyMessages",
                "the rig's queue is full",
            );
        }
        messages.push_back(Queued {
            queue_url: queue_url.to_string(),
            message_id: message_id.clone(),
            body: message_body.to_string(),
            receive_count: 0,
            visible_at: Instant::now() + Duration::from_secs(delay),
        });
    }
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.0")],
        json!({"MessageId": message_id, "MD5OfMessageBody": "00000000000000000000000000000000"})
            .to_string(),
    )
        .into_response()
}

async fn post_to_connection(
    State(rig): State<Rig>,
    Path((_stage, id)): Path<(String, String)>,
    body: String,
) -> Response {
    if lock(&rig.removed).contains(&id) {
        return (
            StatusCode::GONE,
            [
                ("x-amzn-ErrorType", "GoneException"),
                ("content-type", "application/json"),
            ],
            r#"{"message":"GoneException"}"#,
        )
            .into_response();
    }
    let data = serde_json::from_str(&body).unwrap_or(Value::String(body));
    let mut posts = lock(&rig.posts);
    if posts.len() >= MAX_POSTS {
        posts.pop_front();
    }
    posts.push_back(json!({"connectionId": id, "data": data}));
    StatusCode::OK.into_response()
}

#[derive(Deserialize)]
struct NewConnection {
    tenant: String,
    user: String,
    #[serde(default)]
    roles: Vec<String>,
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_request", "message": message})),
    )
        .into_response()
}

async fn add_connection(State(rig): State<Rig>, Json(new): Json<NewConnection>) -> Response {
    let id = format!("Rig{:09}A=", rig.next());
    let record = match ConnectionRecord::from_raw(
        &id,
        &new.tenant,
        &new.user,
        new.roles,
        time::OffsetDateTime::now_utc(),
        CONNECTION_TTL_SECS,
    ) {
        Ok(record) => record,
        Err(e) => return bad_request(e.to_string()),
    };
    match rig.roster.put(&record).await {
        Ok(()) => (StatusCode::CREATED, Json(json!({"connectionId": id}))).into_response(),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": "roster", "message": e.to_string()})),
        )
            .into_response(),
    }
}

async fn remove_connection(
    State(rig): State<Rig>,
    Path((tenant, id)): Path<(String, String)>,
) -> Response {
    let (tenant, connection) = match (TenantId::parse(&tenant), ConnectionId::parse(&id)) {
        (Ok(t), Ok(c)) => (t, c),
        _ => return bad_request(format!("no such tenant/connection: {tenant}/{id}")),
    };
    lock(&rig.removed).insert(id);
    match rig.roster.remove(&tenant, &connection).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": "roster", "message": e.to_string()})),
        )
            .into_response(),
    }
}

async fn posts(State(rig): State<Rig>) -> Json<Vec<Value>> {
    Json(lock(&rig.posts).iter().cloned().collect())
}

async fn dead_letters(State(rig): State<Rig>) -> Json<Vec<String>> {
    Json(rig.bodies(DLQ_PATH))
}
