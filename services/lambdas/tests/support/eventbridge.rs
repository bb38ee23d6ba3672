//! A fake Amazon EventBridge endpoint for the events tests: it speaks `AWSEvents.PutEvents`
//! in the JSON 1.1 protocol the SDK uses (`x-amz-target`, `application/x-amz-json-1.1`),
//! checks each request against the service's limits (at most 10 entries, less than 256 KB
//! as `switchboard_aws::eventbridge::entry_size` counts), keeps every entry it takes, and
//! refuses the next [`EventBridge::refuse_entries`] entries with an `ErrorCode`, as the
//! service does for an entry it could not take (`FailedEntryCount` > 0); every answer takes
//! [`EventBridge::set_latency`].
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

/// The fake endpoint's state.
#[derive(Clone, Default)]
pub struct EventBridge {
    /// Entries taken, in order (the request's JSON entries).
    taken: Arc<Mutex<Vec<Value>>>,
    /// Entries still to refuse.
    refuse: Arc<Mutex<usize>>,
    /// Entries refused so far.
    refused: Arc<Mutex<usize>>,
    /// Requests received.
    requests: Arc<Mutex<usize>>,
    /// How long each answer takes.
    latency: Arc<Mutex<Duration>>,
    /// Entries whose `Detail` holds this text are refused, every time.
    refuse_matching: Arc<Mutex<Option<String>>>,
}

impl EventBridge {
    /// Every entry taken so far.
    pub fn taken(&self) -> Vec<Value> {
        self.taken.lock().unwrap().clone()
    }

    /// The `Detail` of every entry taken so far, parsed.
    pub fn details(&self) -> Vec<Value> {
        self.taken()
            .iter()
            .map(|entry| serde_json::from_str(entry["Detail"].as_str().unwrap()).unwrap())
            .collect()
    }

    /// Refuses the next `entries` entries (each with `ErrorCode` `InternalFailure`).
    pub fn refuse_entries(&self, entries: usize) {
        *self.refuse.lock().unwrap() = entries;
    }

    /// Refuses every entry whose `Detail` holds `text` (`None`: none).
    pub fn refuse_matching(&self, text: Option<&str>) {
        *self.refuse_matching.lock().unwrap() = text.map(str::to_string);
    }

    pub fn refused(&self) -> usize {
        *self.refused.lock().unwrap()
    }

    pub fn requests(&self) -> usize {
        *self.requests.lock().unwrap()
    }

    /// Every answer takes `latency` from now on.
    pub fn set_latency(&self, latency: Duration) {
        *self.latency.lock().unwrap() = latency;
    }

    pub fn clear(&self) {
        self.taken.lock().unwrap().clear();
    }
}

async fn put_events(State(bus): State<EventBridge>, headers: HeaderMap, body: String) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert_eq!(target, "AWSEvents.PutEvents");
    let request: Value = serde_json::from_str(&body).unwrap();
    let entries = request["Entries"].as_array().unwrap();
    assert!(
        (1..=10).contains(&entries.len()),
        "{} entries",
        entries.len()
    );
    let size: usize = entries
        .iter()
        .map(|e| {
            let text = |name: &str| e[name].as_str().map_or(0, str::len);
            usize::from(e.get("Time").is_some()) * 14
                + text("Source")
                + text("DetailType")
                + text("Detail")
        })
        .sum();
    assert!(size < 256 * 1024, "{size} bytes of entries");
    *bus.requests.lock().unwrap() += 1;
    let latency = *bus.latency.lock().unwrap();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut failed = 0;
    let results: Vec<Value> = entries
        .iter()
        .map(|entry| {
            let mut refuse = bus.refuse.lock().unwrap();
            let matching = bus
                .refuse_matching
                .lock()
                .unwrap()
                .as_ref()
                .is_some_and(|text| {
                    entry["Detail"]
                        .as_str()
                        .unwrap_or_default()
                        .contains(text.as_str())
                });
            if matching || *refuse > 0 {
                if !matching {
                    *refuse -= 1;
                }
                *bus.refused.lock().unwrap() += 1;
                failed += 1;
                json!({"ErrorCode": "InternalFailure", "ErrorMessage": "scripted refusal"})
            } else {
                bus.taken.lock().unwrap().push(entry.clone());
                json!({"EventId": super::uuid()})
            }
        })
        .collect();
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.1")],
        json!({"FailedEntryCount": failed, "Entries": results}).to_string(),
    )
        .into_response()
}

/// A fake EventBridge endpoint on 127.0.0.1 and its address.
pub async fn fake_eventbridge() -> (EventBridge, SocketAddr) {
    let bus = EventBridge::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/", post(put_events))
        .with_state(bus.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (bus, addr)
}
