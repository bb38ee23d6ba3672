#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failed expectation is the test failing
//! Test doubles for the ports, shared by this crate's tests and (with the `testkit`
//! feature) by other crates' tests: a scripted pusher that records deliveries and measures
//! concurrency, and recording queue / dead-letter sinks.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use switchboard_model::ConnectionId;

use crate::pusher::{ConnectionPusher, Frame, PushError};
use crate::queue::{DeadLetter, DeadLetterSink, MessageQueue, QueueError};

/// A pusher whose answers are scripted per connection (default: success), which records
/// every delivered frame and the highest number of posts in flight.
#[derive(Default)]
pub struct ScriptedPusher {
    scripts: Mutex<HashMap<String, VecDeque<Result<(), PushError>>>>,
    always: Mutex<HashMap<String, PushError>>,
    delivered: Mutex<Vec<(String, String)>>,
    attempts: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    latency: Duration,
}

impl ScriptedPusher {
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
    pub fn script(&self, connection: &str, results: Vec<Result<(), PushError>>) {
        if let Ok(mut scripts) = self.scripts.lock() {
            scripts.insert(connection.to_string(), results.into());
        }
    }

    /// Every post to `connection` answers `error`.
    pub fn always_fail(&self, connection: &str, error: PushError) {
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
impl ConnectionPusher for ScriptedPusher {
    async fn push(&self, connection: &ConnectionId, frame: &Frame) -> Result<(), PushError> {
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
}

/// A dead-letter sink and queue that keep what they are given (and can be told to fail).
#[derive(Default)]
pub struct RecordingQueue {
    pub letters: Mutex<Vec<DeadLetter>>,
    pub enqueued: Mutex<Vec<(String, String)>>,
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
}
