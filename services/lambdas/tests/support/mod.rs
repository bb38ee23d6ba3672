//! The rig of the Lambda publisher tests: the real `publisher::handle` with real-shaped SQS
//! events (the fixture's record shape), the real `ApiGatewayPoster` against a fake
//! management endpoint ([`Gateway`]) and the real `SqsQueue` against a fake SQS endpoint
//! ([`Sqs`]) that keeps what the publisher sends (continuations, retry and remainder items,
//! dead letters). Each "invocation" hands the publisher what the previous ones sent to its
//! queue, as the SQS trigger would (delays are ignored).
//!
//! Scripts: a connection named `fail-*` answers 500, `big-*` 413, `gone-*` 410, `flaky-*`
//! 500 for its first [`Gateway::flaky_failures`] posts and then 200; every post takes
//! [`Gateway::latency`]. The fake SQS refuses (500) every attempt of the next
//! [`Sqs::refuse_delayed_calls`] SDK calls that send with `DelaySeconds > 0`. Every
//! `SendMessage` it accepts must carry the body's tenant (`*`: broadcast or unreadable) as
//! its `MessageGroupId` (SQS fair queues); one that does not fails the test.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub mod eventbridge;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use switchboard_aws::testkit::sdk_config;
use switchboard_aws::{ApiGatewayPoster, SqsQueue};
use switchboard_core::publisher::{
    Publisher, PublisherConfig, PublisherPorts, RetryPolicy, WorkItem,
};
use switchboard_core::receipts::{
    MemoryReceiptStore, Receipt, ReceiptConfig, ReceiptKey, ReceiptStore, Receipts,
};
use switchboard_core::roster::{ConnectionRecord, MemoryRosterStore, RosterStore};
use switchboard_core::webpush::WebPush;
use switchboard_lambdas::emf::testkit::{parse_document, MemorySink};
use switchboard_lambdas::emf::Metrics;
use switchboard_lambdas::publisher;
use switchboard_model::TenantId;
use time::OffsetDateTime;
use tokio::time::Instant;

/// The fake API Gateway management endpoint.
#[derive(Clone)]
pub struct Gateway {
    /// Posts received per connection, every attempt counted.
    posts: Arc<Mutex<BTreeMap<String, usize>>>,
    /// Posts answered 200 per connection.
    delivered: Arc<Mutex<BTreeMap<String, usize>>>,
    /// How long every post takes.
    pub latency: Arc<Mutex<Duration>>,
    /// How many first posts to a `flaky-*` connection answer 500.
    pub flaky_failures: Arc<Mutex<usize>>,
}

impl Default for Gateway {
    fn default() -> Self {
        Self {
            posts: Arc::default(),
            delivered: Arc::default(),
            latency: Arc::default(),
            flaky_failures: Arc::new(Mutex::new(3)),
        }
    }
}

impl Gateway {
    pub fn posts(&self) -> BTreeMap<String, usize> {
        self.posts.lock().unwrap().clone()
    }

    #[allow(dead_code)]
    pub fn delivered(&self) -> BTreeMap<String, usize> {
        self.delivered.lock().unwrap().clone()
    }

    pub fn total(&self) -> usize {
        self.posts().values().sum()
    }

    #[allow(dead_code)]
    pub fn clear(&self) {
        self.posts.lock().unwrap().clear();
        self.delivered.lock().unwrap().clear();
    }

    #[allow(dead_code)]
    pub fn set_latency(&self, latency: Duration) {
        *self.latency.lock().unwrap() = latency;
    }
}

async fn post_to_connection(
    State(gateway): State<Gateway>,
    Path((_stage, id)): Path<(String, String)>,
) -> Response {
    let nth = {
        let mut posts = gateway.posts.lock().unwrap();
        let count = posts.entry(id.clone()).or_default();
        *count += 1;
        *count
    };
    let latency = *gateway.latency.lock().unwrap();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let typed = |status: StatusCode, error_type: &'static str| {
        (
            status,
            [
                ("x-amzn-ErrorType", error_type),
                ("content-type", "application/json"),
            ],
            format!(r#"{{"message":"{error_type}"}}"#),
        )
            .into_response()
    };
    let flaky_failures = *gateway.flaky_failures.lock().unwrap();
    if id.starts_with("fail-") || (id.starts_with("flaky-") && nth <= flaky_failures) {
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    } else if id.starts_with("big-") {
        typed(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeException")
    } else if id.starts_with("gone-") {
        typed(StatusCode::GONE, "GoneException")
    } else {
        *gateway.delivered.lock().unwrap().entry(id).or_default() += 1;
        StatusCode::OK.into_response()
    }
}

/// One message the fake SQS endpoint received.
#[derive(Debug, Clone)]
pub struct Sent {
    pub queue: String,
    pub body: String,
    pub delay_seconds: i64,
    /// The `error` message attribute (a dead letter's reason).
    #[allow(dead_code)]
    pub error: Option<String>,
    /// The `MessageGroupId` (checked on arrival to be the body's tenant or `*`).
    #[allow(dead_code)]
    pub group: String,
}

/// The `MessageGroupId` a body must carry: its tenant, `*` for a broadcast or a body that
/// addresses nothing (a malformed dead letter).
pub fn expected_group(body: &str) -> String {
    switchboard_core::queue::address(body)
        .map_or_else(|| "*".to_string(), |a| a.group().to_string())
}

/// What the fake SQS endpoint refuses.
#[derive(Debug, Default)]
struct Refusals {
    /// SDK calls with a delay still to refuse (`usize::MAX`: all of them).
    delayed_calls: usize,
    /// Invocation ids of the calls being refused: their SDK retries are refused too.
    refusing: HashSet<String>,
    /// Attempts answered 500.
    attempts: usize,
}

/// The fake SQS endpoint (JSON protocol): keeps every `SendMessage` it accepts.
#[derive(Clone, Default)]
pub struct Sqs {
    sent: Arc<Mutex<Vec<Sent>>>,
    refusals: Arc<Mutex<Refusals>>,
}

impl Sqs {
    /// Takes what was sent to `queue`.
    pub fn take(&self, queue: &str) -> Vec<Sent> {
        let mut sent = self.sent.lock().unwrap();
        let (taken, kept): (Vec<Sent>, Vec<Sent>) =
            sent.drain(..).partition(|s| s.queue.ends_with(queue));
        *sent = kept;
        taken
    }

    /// Puts `sent` back, as if the publisher had sent it.
    pub fn requeue(&self, sent: impl IntoIterator<Item = Sent>) {
        self.sent.lock().unwrap().extend(sent);
    }

    /// Refuses every attempt of the next `calls` SDK calls that send with a delay
    /// (`usize::MAX`: for ever). A call is told by its `amz-sdk-invocation-id`, which the
    /// SDK keeps across its own retries of that call.
    #[allow(dead_code)]
    pub fn refuse_delayed_calls(&self, calls: usize) {
        self.refusals.lock().unwrap().delayed_calls = calls;
    }

    /// (SDK calls refused, attempts refused) so far.
    #[allow(dead_code)]
    pub fn refused(&self) -> (usize, usize) {
        let refusals = self.refusals.lock().unwrap();
        (refusals.refusing.len(), refusals.attempts)
    }
}

async fn send_message(State(sqs): State<Sqs>, headers: HeaderMap, body: String) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("x-amz-target"), "AmazonSQS.SendMessage");
    let request: Value = serde_json::from_str(&body).unwrap();
    let delay_seconds = request["DelaySeconds"].as_i64().unwrap_or(0);
    if delay_seconds > 0 {
        let call = header("amz-sdk-invocation-id");
        assert!(!call.is_empty(), "the SDK names each call");
        let mut refusals = sqs.refusals.lock().unwrap();
        let refuse = refusals.refusing.contains(&call) || refusals.delayed_calls > 0;
        if refuse {
            if refusals.refusing.insert(call) && refusals.delayed_calls != usize::MAX {
                refusals.delayed_calls -= 1;
            }
            refusals.attempts += 1;
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
    let body = request["MessageBody"].as_str().unwrap().to_string();
    let group = request["MessageGroupId"].as_str().unwrap_or_default();
    assert_eq!(group, expected_group(&body), "MessageGroupId of {body}");
    sqs.sent.lock().unwrap().push(Sent {
        queue: request["QueueUrl"].as_str().unwrap().to_string(),
        group: group.to_string(),
        body,
        delay_seconds,
        error: request["MessageAttributes"]["error"]["StringValue"]
            .as_str()
            .map(str::to_string),
    });
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.0")],
        json!({"MessageId": uuid(), "MD5OfMessageBody": "00000000000000000000000000000000"})
            .to_string(),
    )
        .into_response()
}

pub fn uuid() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{:032x}", u128::from(NEXT.fetch_add(1, Ordering::Relaxed)))
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A fake SQS endpoint on 127.0.0.1 and its address.
pub async fn fake_sqs() -> (Sqs, SocketAddr) {
    let sqs = Sqs::default();
    let addr = serve(
        Router::new()
            .route("/", post(send_message))
            .with_state(sqs.clone()),
    )
    .await;
    (sqs, addr)
}

pub struct Rig {
    pub roster: Arc<MemoryRosterStore>,
    pub receipts: Arc<MemoryReceiptStore>,
    pub gateway: Gateway,
    pub sqs: Sqs,
    pub publisher: Publisher,
    pub metrics: Metrics,
    /// Where `metrics` writes its EMF documents.
    pub emf: Arc<MemorySink>,
    pub invocations: usize,
    /// Every body handed to the publisher so far, in order.
    pub handed: Vec<String>,
}

pub const QUEUE: &str = "/123456789012/envelopes";
pub const DLQ: &str = "/123456789012/dead-letters";

/// A rig whose poster gives each post attempt 2 s.
pub async fn rig(config: PublisherConfig) -> Rig {
    rig_with_post_timeout(config, Duration::from_secs(2)).await
}

/// A rig whose poster gives each post attempt `post_timeout`.
pub async fn rig_with_post_timeout(config: PublisherConfig, post_timeout: Duration) -> Rig {
    rig_with(config, post_timeout, None).await
}

/// A rig whose publisher sends Web Push with `push` (posts get 2 s each).
#[allow(dead_code)]
pub async fn rig_with_push(config: PublisherConfig, push: WebPush) -> Rig {
    rig_with(config, Duration::from_secs(2), Some(push)).await
}

async fn rig_with(config: PublisherConfig, post_timeout: Duration, push: Option<WebPush>) -> Rig {
    let gateway = Gateway::default();
    let gateway_addr = serve(
        Router::new()
            .route("/{stage}/@connections/{id}", post(post_to_connection))
            .with_state(gateway.clone()),
    )
    .await;
    let (sqs, sqs_addr) = fake_sqs().await;
    let sqs_sdk = sdk_config(Some(&format!("http://{sqs_addr}")));
    let roster = Arc::new(MemoryRosterStore::new());
    let receipts = Arc::new(MemoryReceiptStore::new(1_000));
    let publisher = Publisher::new(
        PublisherPorts {
            roster: roster.clone(),
            poster: Arc::new(ApiGatewayPoster::with_timeout(
                &sdk_config(None),
                &format!("http://{gateway_addr}/main"),
                post_timeout,
            )),
            dead_letters: Arc::new(SqsQueue::from_sdk_config(
                &sqs_sdk,
                format!("http://{sqs_addr}{DLQ}"),
            )),
            work_queue: Arc::new(SqsQueue::from_sdk_config(
                &sqs_sdk,
                format!("http://{sqs_addr}{QUEUE}"),
            )),
        },
        config,
    )
    .with_receipts(Receipts::new(receipts.clone(), &ReceiptConfig::default()))
    .with_push(push);
    let emf = Arc::new(MemorySink::new());
    Rig {
        roster,
        receipts,
        gateway,
        sqs,
        publisher,
        metrics: Metrics::new("Switchboard/Test", emf.clone()).unwrap(),
        emf,
        invocations: 0,
        handed: Vec::new(),
    }
}

pub fn config() -> PublisherConfig {
    PublisherConfig {
        page_size: 500,
        gone_grace: Duration::from_secs(30),
        retry_item_delay: Duration::from_secs(5),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        },
        ..PublisherConfig::default()
    }
}

/// An SQS event of the fixture's shape holding these bodies, each a new message received
/// for the first time.
pub fn event(bodies: &[String]) -> SqsEvent {
    let path = format!(
        "{}/tests/fixtures/sqs_batch.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let fixture: SqsEvent = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let template: SqsMessage = fixture.records[0].clone();
    let mut event = fixture;
    event.records = bodies
        .iter()
        .map(|body| {
            let mut record = template.clone();
            record.message_id = Some(uuid());
            record.body = Some(body.clone());
            record
                .attributes
                .insert("ApproximateReceiveCount".into(), "1".into());
            record
        })
        .collect();
    event
}

impl Rig {
    pub async fn connect(&self, tenant: &str, id: &str, age: time::Duration) {
        let record = ConnectionRecord::from_raw(
            id,
            tenant,
            "user",
            vec![],
            OffsetDateTime::now_utc() - age,
            7_500,
        )
        .unwrap();
        self.roster.put(&record).await.unwrap();
    }

    /// The receipt of message `id` of `tenant` (`None`: a broadcast).
    pub async fn receipt_of(&self, tenant: Option<&str>, id: &str) -> Receipt {
        let key = ReceiptKey::new(tenant.map(|t| TenantId::parse(t).unwrap()), id);
        self.receipts.get(&key).await.unwrap().expect("a receipt")
    }

    pub async fn receipt(&self, tenant: &str, id: &str) -> Receipt {
        self.receipt_of(Some(tenant), id).await
    }

    /// One invocation with this event; answers the batch response as JSON.
    pub async fn invoke_event(&mut self, event: &SqsEvent, deadline: Option<Instant>) -> Value {
        self.invocations += 1;
        self.handed
            .extend(event.records.iter().filter_map(|r| r.body.clone()));
        let response = publisher::handle(&self.publisher, &self.metrics, event, deadline).await;
        serde_json::to_value(response).unwrap()
    }

    /// One invocation with these bodies; answers the batch response as JSON.
    pub async fn invoke(&mut self, bodies: &[String], deadline: Option<Instant>) -> Value {
        self.invoke_event(&event(bodies), deadline).await
    }

    /// Invocations of at most 10 bodies each (the event source's batch size) until the
    /// queue is empty; answers the posts each invocation made.
    pub async fn drain_queue(&mut self) -> Vec<usize> {
        self.drain_queue_with(None).await
    }

    /// Like [`Rig::drain_queue`], each invocation given `budget` (if any) from its start
    /// and checked to return with at least a second of it left.
    pub async fn drain_queue_with(&mut self, budget: Option<Duration>) -> Vec<usize> {
        let mut posts_per_invocation = Vec::new();
        for _ in 0..1_000 {
            let pending: Vec<String> = self.sqs.take(QUEUE).into_iter().map(|s| s.body).collect();
            if pending.is_empty() {
                return posts_per_invocation;
            }
            for batch in pending.chunks(10) {
                let before = self.gateway.total();
                let deadline = budget.map(|budget| Instant::now() + budget);
                let response = self.invoke(batch, deadline).await;
                if let Some(deadline) = deadline {
                    let spare = deadline.saturating_duration_since(Instant::now());
                    assert!(spare >= Duration::from_secs(1), "{spare:?} to spare");
                }
                assert_eq!(response, json!({"batchItemFailures": []}));
                posts_per_invocation.push(self.gateway.total() - before);
            }
        }
        panic!("the queue never drained");
    }

    /// Every EMF document written so far.
    #[allow(dead_code)]
    pub fn emf_documents(&self) -> Vec<Value> {
        self.emf
            .lines()
            .iter()
            .map(|line| parse_document(line).unwrap())
            .collect()
    }
}

pub fn tenant_message(id: &str, tenant: &str) -> String {
    json!({"id": id, "target": {"type": "tenant", "tenant": tenant}, "data": {"n": 1}}).to_string()
}

pub fn work_items(sent: &[Sent]) -> Vec<WorkItem> {
    sent.iter()
        .map(|s| match WorkItem::from_body(&s.body) {
            Some(Ok(item)) => item,
            other => panic!("not a work item: {other:?}: {}", s.body),
        })
        .collect()
}
