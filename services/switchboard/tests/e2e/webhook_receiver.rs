//! A webhook receiver for the events e2e tests (docs/design.md: Events): an HTTP server on
//! 127.0.0.1:0 that verifies **every** request with the Standard Webhooks authors' crate
//! (`standardwebhooks`, a library nobody here wrote) and records what it got.
//!
//! A request it cannot verify (a bad or missing signature, a timestamp outside the 5-minute
//! tolerance, a body that is not the event JSON, a `webhook-id` that is not the event's id,
//! a wrong method or content type) is answered 400 and recorded as a failure; every read
//! of the events, and the receiver's drop, fails the test if there is one. Its answer is
//! scriptable (e.g. 500 until an instant, then 200), and the `wait_*` helpers poll the
//! events accepted so far with a timeout.
//!
//! Each receiver listens at a path of its own (`/hooks/<random>`): a request to any other
//! path is answered 404 and not judged. Tests run in parallel and a port is reused once a
//! receiver stops, so a server of a finished test still retrying its events (signed with
//! that test's secret) may reach a newer test's receiver; it must not fail that test.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use serde_json::Value;
use standardwebhooks::Webhook;

/// One verified request.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The body: the event JSON `{"id","type","timestamp","data"}`.
    pub event: Value,
    /// `webhook-id` (the event's id: a retry of one event carries the same).
    pub id: String,
    /// `webhook-timestamp`, epoch seconds of this attempt.
    pub timestamp: i64,
    pub headers: HeaderMap,
    /// When it arrived.
    pub at: Instant,
    /// What the receiver answered.
    pub answered: u16,
}

impl Delivery {
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.answered)
    }
}

/// What the receiver answers a verified request.
#[derive(Debug, Clone)]
enum Answer {
    /// This status, always.
    Always(u16),
    /// This status until the instant, then 200.
    Until(u16, Instant),
    /// Holds each request this long, then answers 503 (a receiver that hangs).
    Stall(Duration),
    /// `307 Temporary Redirect` to this URL.
    Redirect(String),
}

struct Shared {
    /// This receiver's path; requests elsewhere are strays (404).
    path: String,
    webhook: Webhook,
    answer: Mutex<Answer>,
    deliveries: Mutex<Vec<Delivery>>,
    failures: Mutex<Vec<String>>,
}

/// A running receiver, stopped on drop (which also fails the test on an unverifiable
/// request).
pub struct Receiver {
    url: String,
    secret: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
        if !std::thread::panicking() {
            self.assert_verified();
        }
    }
}

/// A fresh `whsec_` secret: 32 random bytes, standard base64.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

impl Receiver {
    /// Listens on 127.0.0.1:0 with a fresh secret, answering 200.
    pub async fn start() -> Self {
        Self::start_with_secret(new_secret()).await
    }

    pub async fn start_with_secret(secret: String) -> Self {
        let path = format!("/hooks/{:016x}", rand::random::<u64>());
        let shared = Arc::new(Shared {
            path: path.clone(),
            webhook: Webhook::new(&secret).expect("a whsec_ secret"),
            answer: Mutex::new(Answer::Always(200)),
            deliveries: Mutex::default(),
            failures: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url: format!("http://{addr}{path}"),
            secret,
            shared,
            task,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// `WEBHOOK_URL` and `WEBHOOK_SECRET` naming this receiver.
    pub fn envs(&self) -> [(&'static str, &str); 2] {
        [
            ("WEBHOOK_URL", self.url.as_str()),
            ("WEBHOOK_SECRET", self.secret.as_str()),
        ]
    }

    /// `{"url","secret"}` of this receiver, for a `WEBHOOK_FILE` entry.
    pub fn endpoint_json(&self) -> Value {
        serde_json::json!({ "url": self.url, "secret": self.secret })
    }

    /// Answers `status` to every verified request until `until`, then 200.
    pub fn fail_until(&self, status: u16, until: Instant) {
        *self.shared.answer.lock().unwrap() = Answer::Until(status, until);
    }

    /// Answers `status` to every verified request from now on.
    pub fn answer(&self, status: u16) {
        *self.shared.answer.lock().unwrap() = Answer::Always(status);
    }

    /// Holds every verified request for `time`, then answers 503; recorded (as 503) when
    /// it arrives.
    pub fn stall(&self, time: Duration) {
        *self.shared.answer.lock().unwrap() = Answer::Stall(time);
    }

    /// Answers every verified request `307` with `location: url`.
    pub fn redirect(&self, url: &str) {
        *self.shared.answer.lock().unwrap() = Answer::Redirect(url.to_string());
    }

    /// Panics if any request failed verification.
    #[track_caller]
    pub fn assert_verified(&self) {
        let failures = self.shared.failures.lock().unwrap().clone();
        assert!(
            failures.is_empty(),
            "{} unverifiable webhook request(s) at {}: {failures:#?}",
            failures.len(),
            self.url
        );
    }

    /// Takes the failures recorded so far (a test of the receiver itself).
    pub fn take_failures(&self) -> Vec<String> {
        std::mem::take(&mut *self.shared.failures.lock().unwrap())
    }

    /// Every verified request so far (each attempt, whatever it was answered).
    #[track_caller]
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.assert_verified();
        self.shared.deliveries.lock().unwrap().clone()
    }

    /// The events accepted (answered 2xx), each once (deduplicated by `webhook-id`, as a
    /// receiver does), in arrival order.
    #[track_caller]
    pub fn events(&self) -> Vec<Value> {
        let mut seen = BTreeSet::new();
        self.deliveries()
            .into_iter()
            .filter(|d| d.accepted() && seen.insert(d.id.clone()))
            .map(|d| d.event)
            .collect()
    }

    /// Polls the accepted events until `done` holds for them (or panics after `within`,
    /// showing them); answers them.
    pub async fn wait_until(
        &self,
        within: Duration,
        what: &str,
        mut done: impl FnMut(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let events = self.events();
            if done(&events) {
                return events;
            }
            if Instant::now() > deadline {
                panic!(
                    "not true within {within:?}: {what}; events at {}: {events:#?}",
                    self.url
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The first accepted event that `matches` (waiting up to `within`).
    pub async fn wait_event(
        &self,
        within: Duration,
        what: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        let events = self
            .wait_until(within, what, |events| events.iter().any(&matches))
            .await;
        events.into_iter().find(|e| matches(e)).unwrap()
    }

    /// Waits until `count` accepted events match, answering those.
    pub async fn wait_count(
        &self,
        within: Duration,
        what: &str,
        count: usize,
        matches: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let events = self
            .wait_until(within, what, |events| {
                events.iter().filter(|e| matches(e)).count() >= count
            })
            .await;
        events.into_iter().filter(|e| matches(e)).collect()
    }
}

/// Whether `event` is a `kind` event (`user.online`, `user.offline`) of `tenant`/`user`.
pub fn is_user_event(event: &Value, kind: &str, tenant: &str, user: &str) -> bool {
    event["type"] == kind && event["data"]["tenant"] == tenant && event["data"]["user"] == user
}

/// The `message.settled` event of message `id`, if `event` is it.
pub fn is_settled(event: &Value, id: &str) -> bool {
    event["type"] == "message.settled" && event["data"]["id"] == id
}

/// The presence events among `events` per (tenant, user), each list ordered by `version`.
/// Panics if two different events of one user carry the same version (versions are unique
/// per change) or a version is missing.
pub fn presence_by_user(events: &[Value]) -> BTreeMap<(String, String), Vec<Value>> {
    let mut by_user: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for event in events
        .iter()
        .filter(|e| e["type"] == "user.online" || e["type"] == "user.offline")
    {
        let data = &event["data"];
        let key = (
            data["tenant"].as_str().unwrap().to_string(),
            data["user"].as_str().unwrap().to_string(),
        );
        by_user.entry(key).or_default().push(event.clone());
    }
    for (user, events) in &mut by_user {
        events.sort_by_key(|e| e["data"]["version"].as_u64().expect("a version"));
        for pair in events.windows(2) {
            assert!(
                pair[0]["data"]["version"].as_u64() < pair[1]["data"]["version"].as_u64(),
                "two events of {user:?} with one version: {pair:#?}"
            );
        }
    }
    by_user
}

/// Checks one request: method, content type, user agent, the signature (the crate also
/// checks the timestamp's tolerance), and that the body is an event whose id is
/// `webhook-id`. Answers the delivery or why it is not one.
fn verify(
    shared: &Shared,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Delivery, String> {
    if method != Method::POST {
        return Err(format!("method {method}, not POST"));
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    if header("content-type") != "application/json" {
        return Err(format!("content-type {:?}", header("content-type")));
    }
    if !header("user-agent").starts_with("switchboard/") {
        return Err(format!("user-agent {:?}", header("user-agent")));
    }
    shared
        .webhook
        .verify(body, headers)
        .map_err(|e| format!("standardwebhooks refused it: {e}"))?;
    let event: Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let id = header("webhook-id").to_string();
    if event["id"] != id.as_str() {
        return Err(format!("webhook-id {id} is not the event's id: {event}"));
    }
    let shape = event.as_object().map(|o| {
        let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
        keys.sort_unstable();
        keys
    });
    if shape != Some(vec!["data", "id", "timestamp", "type"]) {
        return Err(format!("not the event shape: {event}"));
    }
    Ok(Delivery {
        event,
        id,
        timestamp: header("webhook-timestamp").parse().unwrap_or_default(),
        headers: headers.clone(),
        at: Instant::now(),
        answered: 0,
    })
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    if uri.path() != shared.path {
        return StatusCode::NOT_FOUND.into_response();
    }
    match verify(&shared, &method, &headers, &body) {
        Ok(mut delivery) => {
            let answer = shared.answer.lock().unwrap().clone();
            let (status, stall, location) = match answer {
                Answer::Always(status) => (status, None, None),
                Answer::Until(status, until) if delivery.at < until => (status, None, None),
                Answer::Until(..) => (200, None, None),
                Answer::Stall(time) => (503, Some(time), None),
                Answer::Redirect(url) => (307, None, Some(url)),
            };
            delivery.answered = status;
            shared.deliveries.lock().unwrap().push(delivery);
            if let Some(time) = stall {
                tokio::time::sleep(time).await;
            }
            let status = StatusCode::from_u16(status).unwrap();
            match location {
                Some(url) => (status, [(axum::http::header::LOCATION, url)]).into_response(),
                None => status.into_response(),
            }
        }
        Err(problem) => {
            shared.failures.lock().unwrap().push(format!(
                "{problem}; headers {headers:?}; body {}",
                String::from_utf8_lossy(&body)
            ));
            StatusCode::BAD_REQUEST.into_response()
        }
    }
}

/// The receiver itself: a request signed with its secret is accepted; one signed with
/// another secret, one without a signature and a replay older than the tolerance are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_accepts_only_what_it_can_verify() {
    let receiver = Receiver::start().await;
    let event = serde_json::json!({"id":"evt_test","type":"user.online","timestamp":"2026-01-01T00:00:00Z","data":{}});
    let body = event.to_string();
    let post = |secret: &str, timestamp: i64| {
        let signature = Webhook::new(secret)
            .unwrap()
            .sign("evt_test", timestamp, body.as_bytes())
            .unwrap();
        reqwest::Client::new()
            .post(receiver.url())
            .header("content-type", "application/json")
            .header("user-agent", "switchboard/test")
            .header("webhook-id", "evt_test")
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.clone())
            .send()
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert_eq!(post(receiver.secret(), now).await.unwrap().status(), 200);
    assert_eq!(receiver.events(), vec![event]);
    assert_eq!(post(&new_secret(), now).await.unwrap().status(), 400);
    assert_eq!(
        post(receiver.secret(), now - 301).await.unwrap().status(),
        400
    );
    let unsigned = reqwest::Client::new()
        .post(receiver.url())
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 400);
    let failures = receiver.take_failures();
    assert_eq!(failures.len(), 3, "{failures:#?}");
    assert!(failures[0].contains("signature invalid"), "{}", failures[0]);
    assert!(failures[1].contains("too old"), "{}", failures[1]);
    assert_eq!(receiver.deliveries().len(), 1);
}
