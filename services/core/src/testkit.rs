#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failed expectation is the test failing
//! Test doubles for the ports, shared by this crate's tests and (with the `testkit`
//! feature) by other crates' tests: a scripted poster that records deliveries and measures
//! concurrency, a scripted push sender ([`ScriptedSender`]), and recording queue /
//! dead-letter sinks. [`push_service`] is a fake Web Push service over HTTPS.

pub mod push_service;
mod scripted_sender;

pub use scripted_sender::ScriptedSender;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use switchboard_model::ConnectionId;

use crate::poster::{ConnectionPoster, Frame, PostError};
use crate::publisher::{MessageReport, Publisher};
use crate::queue::{DeadLetter, DeadLetterSink, InboundMessage, MessageQueue, QueueError};

/// A poster whose answers are scripted per connection (default: success), which records
/// every delivered frame and the highest number of posts in flight.
#[derive(Default)]
pub struct ScriptedPoster {
    scripts: Mutex<HashMap<String, VecDeque<Result<(), PostError>>>>,
    always: Mutex<HashMap<String, PostError>>,
    delivered: Mutex<Vec<(String, String)>>,
    closed: Mutex<Vec<String>>,
    attempts: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    latency: Duration,
}

impl ScriptedPoster {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every post takes `latency` (to make concurrency observable).
    pub fn with_latency(latency: Duration) -> Self {
        Self {
            latency,
            ..Self::default()
        }
    }

    /// The next posts to `connection` answer these results, in order, then succeed.
    pub fn script(&self, connection: &str, results: Vec<Result<(), PostError>>) {
        if let Ok(mut scripts) = self.scripts.lock() {
            scripts.insert(connection.to_string(), results.into());
        }
    }

    /// Every post to `connection` answers `error`.
    pub fn always_fail(&self, connection: &str, error: PostError) {
        if let Ok(mut always) = self.always.lock() {
            always.insert(connection.to_string(), error);
        }
    }

    /// `(connection, frame)` of every successful post.
    pub fn delivered(&self) -> Vec<(String, String)> {
        self.delivered.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// Connections that received a frame, sorted.
    pub fn delivered_to(&self) -> Vec<String> {
        let mut to: Vec<String> = self.delivered().into_iter().map(|(c, _)| c).collect();
        to.sort();
        to
    }

    /// Connections ended with `close`, in order.
    pub fn closed(&self) -> Vec<String> {
        self.closed.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Posts attempted, retries included.
    pub fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }

    /// The most posts that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ConnectionPoster for ScriptedPoster {
    async fn post(&self, connection: &ConnectionId, frame: &Frame) -> Result<(), PostError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let scripted = self
            .scripts
            .lock()
            .ok()
            .and_then(|mut s| s.get_mut(connection.as_str()).and_then(VecDeque::pop_front));
        let always = self
            .always
            .lock()
            .ok()
            .and_then(|a| a.get(connection.as_str()).cloned());
        let result = match (always, scripted) {
            (Some(error), _) => Err(error),
            (None, Some(result)) => result,
            (None, None) => Ok(()),
        };
        if result.is_ok() {
            if let Ok(mut delivered) = self.delivered.lock() {
                delivered.push((connection.to_string(), frame.as_str().to_string()));
            }
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }

    async fn close(&self, connection: &ConnectionId) -> Result<(), PostError> {
        if let Ok(mut closed) = self.closed.lock() {
            closed.push(connection.to_string());
        }
        Ok(())
    }
}

/// A dead-letter sink and queue that keep what they are given (and can be told to fail).
#[derive(Default)]
pub struct RecordingQueue {
    pub letters: Mutex<Vec<DeadLetter>>,
    pub enqueued: Mutex<Vec<(String, String)>>,
    /// The delay of each `enqueue_delayed` call, in order.
    pub delays: Mutex<Vec<Duration>>,
    pub fail: std::sync::atomic::AtomicBool,
}

impl RecordingQueue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn letters(&self) -> Vec<DeadLetter> {
        self.letters.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn enqueued(&self) -> Vec<(String, String)> {
        self.enqueued.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Takes every enqueued body out (the test then hands them to the publisher).
    pub fn drain(&self) -> Vec<(String, String)> {
        self.enqueued
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }

    fn check(&self) -> Result<(), QueueError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(QueueError::Unavailable("told to fail".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl DeadLetterSink for RecordingQueue {
    async fn dead_letter(&self, letter: DeadLetter) -> Result<(), QueueError> {
        self.check()?;
        if let Ok(mut letters) = self.letters.lock() {
            letters.push(letter);
        }
        Ok(())
    }
}

#[async_trait]
impl MessageQueue for RecordingQueue {
    async fn enqueue(&self, id: &str, body: &str) -> Result<(), QueueError> {
        self.check()?;
        if let Ok(mut enqueued) = self.enqueued.lock() {
            enqueued.push((id.to_string(), body.to_string()));
        }
        Ok(())
    }

    async fn enqueue_delayed(
        &self,
        id: &str,
        body: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        self.check()?;
        if let Ok(mut delays) = self.delays.lock() {
            delays.push(delay);
        }
        self.enqueue(id, body).await
    }
}

/// Runs `first` through `publisher`, then every work item it enqueued on `work` (and the
/// items those enqueue), batch by batch, until none is left: what the queue and its
/// consumers do, with delays skipped. Returns every report. Panics past `max_rounds`
/// (a chain that never ends is a bug).
pub async fn run_to_completion(
    publisher: &Publisher,
    work: &RecordingQueue,
    first: Vec<InboundMessage>,
    max_rounds: usize,
) -> Vec<MessageReport> {
    let mut reports = Vec::new();
    let mut pending = first;
    let mut counter = 0usize;
    for _ in 0..max_rounds {
        if pending.is_empty() {
            return reports;
        }
        for batch in pending.chunks(10) {
            let outcome = publisher.handle_batch(batch).await;
            assert!(
                outcome.failed_message_ids.is_empty(),
                "unexpected redelivery: {:?}",
                outcome.reports
            );
            reports.extend(outcome.reports);
        }
        pending = work
            .drain()
            .into_iter()
            .map(|(_, body)| {
                counter += 1;
                InboundMessage {
                    message_id: format!("work-{counter}"),
                    body,
                    receive_count: 1,
                }
            })
            .collect();
    }
    panic!("work items still pending after {max_rounds} rounds");
}

/// The claims of user `u` of `tenant` holding `roles`, with admin scope `scope`.
pub fn claims(
    tenant: &str,
    roles: &[&str],
    scope: switchboard_model::AdminScope,
) -> switchboard_model::Claims {
    switchboard_model::Claims {
        roles: roles.iter().map(|r| r.to_string()).collect(),
        admin_scope: scope,
        ..switchboard_model::Claims::new(
            switchboard_model::TenantId::parse(tenant).unwrap(),
            switchboard_model::UserId::parse("u").unwrap(),
        )
    }
}

/// An HS256 token signed with `secret` for user `user` of `tenant` holding `roles`, valid
/// for `ttl` (tests and benchmarks).
pub fn token(secret: &[u8], tenant: &str, user: &str, roles: &[&str], ttl: Duration) -> String {
    let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    crate::auth::mint_hs256(
        secret,
        &switchboard_model::TenantId::parse(tenant).unwrap(),
        &switchboard_model::UserId::parse(user).unwrap(),
        &roles,
        ttl,
    )
}

/// A live connection record connected now, without roles, with the default lifetime: what
/// most tests put in a roster.
pub fn record(tenant: &str, user: &str, connection: &str) -> crate::roster::ConnectionRecord {
    crate::roster::ConnectionRecord::from_raw(
        connection,
        tenant,
        user,
        vec![],
        time::OffsetDateTime::now_utc(),
        crate::roster::DEFAULT_CONNECTION_TTL_SECS,
    )
    .expect("test ids are valid")
}

/// Connection records for a paging check: `size` connections spread over `tenants`
/// tenants and a few users each.
pub fn spread_records(size: usize, tenants: usize) -> Vec<crate::roster::ConnectionRecord> {
    (0..size)
        .map(|i| {
            record(
                &format!("tenant-{}", i % tenants.max(1)),
                &format!("user-{}", i % 37),
                &format!("conn-{i:06}"),
            )
        })
        .collect()
}

/// The paging property, on a roster already holding exactly `records`: a tenant message
/// and a broadcast, run with every work item to completion, reach every matching
/// connection exactly once and nobody else, and no work item reads more than
/// `page_size` connections.
pub async fn check_paged_fanout(
    roster: std::sync::Arc<dyn crate::roster::RosterStore>,
    records: &[crate::roster::ConnectionRecord],
    page_size: usize,
    scan_segments: u32,
) {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use crate::publisher::{PublisherConfig, PublisherPorts};

    let tenant = records
        .first()
        .map_or_else(|| "tenant-0".to_string(), |r| r.tenant.to_string());
    let cases = [
        (
            serde_json::json!({"id":"to-tenant","target":{"type":"tenant","tenant":tenant},"data":1}),
            records
                .iter()
                .filter(|r| r.tenant.as_str() == tenant)
                .collect::<Vec<_>>(),
        ),
        (
            serde_json::json!({"id":"to-all","target":{"type":"broadcast"},"data":2}),
            records.iter().collect::<Vec<_>>(),
        ),
    ];
    for (envelope, expected) in cases {
        let poster = Arc::new(ScriptedPoster::new());
        let work = Arc::new(RecordingQueue::new());
        let publisher = Publisher::new(
            PublisherPorts {
                roster: roster.clone(),
                poster: poster.clone(),
                dead_letters: Arc::new(RecordingQueue::new()),
                work_queue: work.clone(),
            },
            PublisherConfig {
                page_size,
                scan_segments,
                ..PublisherConfig::default()
            },
        );
        let first = InboundMessage {
            message_id: "sqs-1".into(),
            body: envelope.to_string(),
            receive_count: 1,
        };
        let reports = run_to_completion(&publisher, &work, vec![first], 100_000).await;
        for report in &reports {
            assert!(
                report.matched <= page_size,
                "a work item read {} connections (page size {page_size})",
                report.matched
            );
        }
        let mut got: BTreeMap<String, usize> = BTreeMap::new();
        for (connection, _) in poster.delivered() {
            *got.entry(connection).or_default() += 1;
        }
        let want: BTreeMap<String, usize> = expected
            .iter()
            .map(|r| (r.connection_id.to_string(), 1))
            .collect();
        assert_eq!(
            got.len(),
            want.len(),
            "{envelope}: {} records, pages of {page_size}, {scan_segments} segments",
            records.len()
        );
        assert!(
            got == want,
            "{envelope}: someone missed, got it twice, or was not a target"
        );
    }
}
