//! The sink against real receivers on 127.0.0.1 (axum), each verifying every request with
//! the Standard Webhooks authors' crate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicUsize;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use standardwebhooks::Webhook;
use switchboard_core::events::EventKind;
use switchboard_model::UserId;

use super::sign::Secret;
use super::*;
use crate::serve::metrics::ResultLabel;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// How a receiver answers a request: a status after a pause.
type Answer = Arc<dyn Fn() -> (StatusCode, Duration) + Send + Sync>;

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Hit {
    id: String,
    status: StatusCode,
    verified: bool,
    headers: HeaderMap,
    body: Value,
}

struct ReceiverState {
    verifier: Webhook,
    answer: Answer,
    hits: Mutex<Vec<Hit>>,
    /// Requests being answered now, and the most there were at once.
    active: AtomicUsize,
    most_active: AtomicUsize,
}

/// A webhook receiver on 127.0.0.1.
struct Receiver {
    url: reqwest::Url,
    state: Arc<ReceiverState>,
}

impl Receiver {
    async fn start(answer: Answer) -> Self {
        let state = Arc::new(ReceiverState {
            verifier: Webhook::new(SECRET).unwrap(),
            answer,
            hits: Mutex::default(),
            active: AtomicUsize::new(0),
            most_active: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{addr}/hook").parse().unwrap(),
            state,
        }
    }

    fn answering(status: StatusCode) -> Answer {
        Arc::new(move || (status, Duration::ZERO))
    }

    fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    /// Ids answered 2xx, with how often each was.
    fn accepted(&self) -> HashMap<String, usize> {
        let mut accepted = HashMap::new();
        for hit in self.hits() {
            if hit.status.is_success() {
                *accepted.entry(hit.id).or_default() += 1;
            }
        }
        accepted
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            url: self.url.clone(),
            secret: Secret::parse(SECRET).unwrap(),
        }
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let verified = state.verifier.verify(&body, &headers).is_ok();
    let active = state.active.fetch_add(1, Ordering::SeqCst) + 1;
    state.most_active.fetch_max(active, Ordering::SeqCst);
    let (status, pause) = (state.answer)();
    let hit = Hit {
        id: headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        status,
        verified,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    state.hits.lock().unwrap().push(hit);
    tokio::time::sleep(pause).await;
    state.active.fetch_sub(1, Ordering::SeqCst);
    status
}

fn config(global: Option<Endpoint>, tenants: Vec<(&str, Endpoint)>) -> WebhookConfig {
    WebhookConfig {
        global,
        tenants: tenants
            .into_iter()
            .map(|(tenant, endpoint)| (TenantId::parse(tenant).unwrap(), endpoint))
            .collect::<BTreeMap<_, _>>(),
        retry_window: Duration::from_secs(3600),
        capacity: 1_000,
        timeout: Duration::from_secs(5),
    }
}

/// Probes of a failing endpoint within 200 ms, 400 ms, then every 500 ms at most.
fn quick_backoff() -> RetryPolicy {
    RetryPolicy {
        max_attempts: u32::MAX,
        base_delay: Duration::from_millis(200),
        max_delay: Duration::from_millis(500),
    }
}

fn sink(config: WebhookConfig, metrics: &Arc<Metrics>) -> WebhookSink {
    WebhookSink::spawn_with(
        config,
        50,
        metrics.clone(),
        quick_backoff(),
        MAX_QUEUE_BYTES,
    )
    .unwrap()
}

/// `user.online` of `user` of `tenant` at `version`, created now.
fn online(tenant: &str, user: &str, version: u64) -> Event {
    Event::user(
        EventKind::UserOnline,
        &TenantId::parse(tenant).unwrap(),
        &UserId::parse(user).unwrap(),
        1,
        version,
        OffsetDateTime::now_utc(),
    )
}

fn counted(metrics: &Metrics, result: &'static str) -> u64 {
    metrics
        .webhook_deliveries
        .get_or_create(&ResultLabel { result })
        .get()
}

/// Waits (20 ms steps) until `done`, at most `limit`; answers whether it came.
async fn until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

#[tokio::test]
async fn delivers_an_event_once_with_every_header() {
    let receiver = Receiver::start(Receiver::answering(StatusCode::NO_CONTENT)).await;
    let metrics = Arc::new(Metrics::new());
    let sink = sink(config(Some(receiver.endpoint()), vec![]), &metrics);
    let event = online("acme", "alice", 1);
    sink.emit(vec![event.clone()]).await.unwrap();
    assert!(
        until(Duration::from_secs(5), || counted(&metrics, "delivered")
            == 1)
        .await
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let hits = receiver.hits();
    assert_eq!(hits.len(), 1, "{hits:?}");
    let hit = &hits[0];
    assert!(hit.verified, "{hit:?}");
    assert_eq!(hit.id, event.id);
    assert_eq!(hit.body, event.to_json());
    assert_eq!(hit.headers["content-type"], "application/json");
    assert_eq!(
        hit.headers["user-agent"],
        concat!("switchboard/", env!("CARGO_PKG_VERSION"))
    );
    let timestamp: i64 = hit.headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((OffsetDateTime::now_utc().unix_timestamp() - timestamp).abs() < 5);
    assert!(hit.headers["webhook-signature"]
        .to_str()
        .unwrap()
        .starts_with("v1,"));
    let text = metrics.render();
    assert!(
        text.contains(r#"switchboard_events_total{type="user.online"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("switchboard_webhook_queue_events 0"),
        "{text}"
    );
    assert_eq!(sink.pending(), 0);
    sink.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn every_event_arrives_once_after_a_failing_receiver_recovers() {
    let recovers = Instant::now() + Duration::from_secs(3);
    let receiver = Receiver::start(Arc::new(move || {
        if Instant::now() < recovers {
            (StatusCode::INTERNAL_SERVER_ERROR, Duration::ZERO)
        } else {
            (StatusCode::OK, Duration::ZERO)
        }
    }))
    .await;
    let metrics = Arc::new(Metrics::new());
    let sink = sink(config(Some(receiver.endpoint()), vec![]), &metrics);
    let mut ids = Vec::new();
    for round in 0..5u64 {
        let events: Vec<Event> = (0..10)
            .map(|n| online("acme", &format!("user{n}"), round + 1))
            .collect();
        ids.extend(events.iter().map(|event| event.id.clone()));
        sink.emit(events).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        until(Duration::from_secs(20), || counted(&metrics, "delivered")
            == 50)
        .await,
        "delivered {}",
        counted(&metrics, "delivered")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hits = receiver.hits();
    assert!(
        hits.iter().all(|hit| hit.verified),
        "every request verifies"
    );
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 50, "none lost");
    assert!(
        ids.iter().all(|id| accepted.get(id) == Some(&1)),
        "each once: {accepted:?}"
    );
    // While failing, one probe at a time: the first burst of 16, then a probe per backoff
    // (at least 200 ms ceiling, 3 s): far fewer than the 50 events times their retries.
    let failed = hits.iter().filter(|hit| !hit.status.is_success()).count();
    assert!(failed <= 16 + 40, "{failed} failed attempts");
    assert!(counted(&metrics, "retried") >= 1);
    assert_eq!(sink.pending(), 0);
    sink.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_hanging_tenant_endpoint_does_not_delay_another_tenants() {
    let hanging = Receiver::start(Arc::new(|| (StatusCode::OK, Duration::from_secs(60)))).await;
    let healthy = Receiver::start(Receiver::answering(StatusCode::OK)).await;
    let metrics = Arc::new(Metrics::new());
    let sink = sink(
        config(
            None,
            vec![("acme", hanging.endpoint()), ("globex", healthy.endpoint())],
        ),
        &metrics,
    );
    let stuck: Vec<Event> = (0..40).map(|n| online("acme", "alice", n + 1)).collect();
    sink.emit(stuck).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let flowing: Vec<Event> = (0..10).map(|n| online("globex", "bob", n + 1)).collect();
    sink.emit(flowing).await.unwrap();
    assert!(until(Duration::from_secs(3), || healthy.accepted().len() == 10).await);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "globex waited {:?} behind acme's 5 s timeouts",
        started.elapsed()
    );
    assert!(
        hanging.hits().len() <= delivery::IN_FLIGHT,
        "at most 16 in flight"
    );
    assert!(healthy.hits().iter().all(|hit| hit.verified));
    sink.shutdown(Duration::from_millis(100)).await;
    assert_eq!(sink.pending(), 0, "what acme held was let go");
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_drops_its_events() {
    let receiver =
        Receiver::start(Arc::new(|| (StatusCode::GONE, Duration::from_millis(300)))).await;
    let metrics = Arc::new(Metrics::new());
    let sink = sink(config(Some(receiver.endpoint()), vec![]), &metrics);
    let events: Vec<Event> = (0..30).map(|n| online("acme", "alice", n + 1)).collect();
    sink.emit(events).await.unwrap();
    assert!(
        until(Duration::from_secs(5), || counted(&metrics, "disabled")
            == 30)
        .await
    );
    assert_eq!(
        receiver.hits().len(),
        delivery::IN_FLIGHT,
        "the 14 waiting never went"
    );
    sink.emit(vec![online("acme", "bob", 1)]).await.unwrap();
    assert_eq!(counted(&metrics, "disabled"), 31);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.hits().len(), delivery::IN_FLIGHT);
    assert!(receiver.hits().iter().all(|hit| hit.verified));
    assert_eq!(counted(&metrics, "retried"), 0);
    assert_eq!(sink.pending(), 0);
    sink.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_and_a_tenant_at_its_share_leaves_room_for_others() {
    let hanging = Receiver::start(Arc::new(|| (StatusCode::OK, Duration::from_secs(60)))).await;
    let metrics = Arc::new(Metrics::new());
    let mut settings = config(Some(hanging.endpoint()), vec![]);
    settings.capacity = 4;
    let sink = sink(settings, &metrics); // each tenant: 50 %, 2 events
    let acme: Vec<Event> = (0..3).map(|n| online("acme", "alice", n + 1)).collect();
    let refused = sink.emit(acme).await.unwrap_err();
    assert!(
        matches!(refused, EventError::Full { dropped: 1 }),
        "{refused}"
    );
    sink.emit(vec![online("globex", "bob", 1), online("globex", "bob", 2)])
        .await
        .expect("another tenant still enqueues");
    let refused = sink
        .emit(vec![online("initech", "carol", 1)])
        .await
        .unwrap_err();
    assert!(
        matches!(refused, EventError::Full { dropped: 1 }),
        "the queue is full"
    );
    assert_eq!(counted(&metrics, "dropped"), 2);
    assert_eq!(sink.pending(), 4);
    assert!(metrics
        .render()
        .contains("switchboard_webhook_queue_events 4"));
    // Shutdown stops within its bound (+1 s) although every delivery hangs.
    let started = Instant::now();
    sink.shutdown(Duration::from_millis(200)).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(sink.pending(), 0);
    let after = sink
        .emit(vec![online("globex", "bob", 3)])
        .await
        .unwrap_err();
    assert!(
        matches!(after, EventError::Unavailable { failed: 1, .. }),
        "{after}"
    );
}

#[tokio::test]
async fn events_not_delivered_within_the_retry_window_expire() {
    let receiver = Receiver::start(Receiver::answering(StatusCode::SERVICE_UNAVAILABLE)).await;
    let metrics = Arc::new(Metrics::new());
    let mut settings = config(Some(receiver.endpoint()), vec![]);
    settings.retry_window = Duration::from_secs(1);
    let sink = sink(settings, &metrics);
    let events: Vec<Event> = (0..20).map(|n| online("acme", "alice", n + 1)).collect();
    sink.emit(events).await.unwrap();
    // One created before the window: it expires on its first failure.
    let mut old = online("acme", "bob", 1);
    old.timestamp -= time::Duration::hours(2);
    sink.emit(vec![old]).await.unwrap();
    assert!(
        until(Duration::from_secs(6), || counted(&metrics, "expired")
            == 21)
        .await,
        "expired {}",
        counted(&metrics, "expired")
    );
    assert_eq!(counted(&metrics, "delivered"), 0);
    assert!(counted(&metrics, "retried") >= 1);
    assert_eq!(sink.pending(), 0);
    assert!(receiver.hits().iter().all(|hit| hit.verified));
    sink.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn shutdown_lets_a_healthy_endpoint_deliver_what_it_holds() {
    let slow = Receiver::start(Arc::new(|| (StatusCode::OK, Duration::from_millis(100)))).await;
    let metrics = Arc::new(Metrics::new());
    let sink = sink(config(Some(slow.endpoint()), vec![]), &metrics);
    let events: Vec<Event> = (0..40).map(|n| online("acme", "alice", n + 1)).collect();
    sink.emit(events).await.unwrap();
    let started = Instant::now();
    sink.shutdown(Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(slow.accepted().len(), 40);
    assert_eq!(counted(&metrics, "delivered"), 40);
    let most = slow.state.most_active.load(Ordering::SeqCst);
    assert!((2..=delivery::IN_FLIGHT).contains(&most), "{most} at once");
}
