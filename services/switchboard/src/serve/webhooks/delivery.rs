//! One endpoint's deliveries: a task per endpoint (the global one, and each tenant's of
//! `WEBHOOK_FILE`), so a failing endpoint never holds another's events.
//!
//! - Healthy: up to [`IN_FLIGHT`] deliveries at once, oldest waiting first.
//! - A failure (an answer other than 2xx or 410, a timeout, a connection error) makes the
//!   endpoint failing: the event waits again, and from then on one probe at a time goes,
//!   after a backoff with full jitter (ceiling from 1 s, doubling, at most 5 min; the one
//!   policy, `RetryPolicy`). The first success makes it healthy: everything waiting goes
//!   at once (16 at a time).
//! - `410 Gone` disables the endpoint until restart: its waiting events, and every later
//!   one, are dropped (counted `disabled`, logged).
//! - An event still undelivered `WEBHOOK_RETRY_HOURS` after it was created is dropped
//!   (counted `expired`, logged with its id) when its attempt fails or when the failing
//!   endpoint's next probe comes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use switchboard_core::publisher::RetryPolicy;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::config::Endpoint;
use super::queue::Slot;
use crate::serve::metrics::Metrics;

/// Deliveries in flight at most per endpoint.
pub const IN_FLIGHT: usize = 16;

/// The backoff between probes of a failing endpoint.
pub fn default_backoff() -> RetryPolicy {
    RetryPolicy {
        max_attempts: u32::MAX,
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(5 * 60),
    }
}

/// An event waiting for (or in) a delivery, holding its place in the queue.
pub struct Pending {
    pub id: String,
    /// The event JSON, the same bytes every attempt.
    pub body: Bytes,
    /// `WEBHOOK_RETRY_HOURS` after the event was created.
    pub deadline: Instant,
    /// Held for its drop: the event's place in the queue goes with it.
    pub _slot: Slot,
}

/// Where the sink's shutdown is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// Deliver what is held, then end.
    Draining,
    /// End now, answering the ids still held.
    Stopping,
}

/// An endpoint and what its task needs.
pub struct Target {
    /// How logs name it: `WEBHOOK_URL` or `WEBHOOK_FILE tenants.<tenant>` (never its URL:
    /// a path or query may carry a token).
    pub label: Arc<str>,
    pub endpoint: Endpoint,
    pub client: reqwest::Client,
    pub metrics: Arc<Metrics>,
    /// Set on a `410`: the sink drops the endpoint's events before queueing them.
    pub disabled: Arc<AtomicBool>,
    pub backoff: RetryPolicy,
}

/// What one attempt got.
enum Answer {
    Delivered,
    Gone,
    Failed(String),
}

#[derive(Debug, Clone, Copy)]
enum Health {
    Healthy,
    Failing { failures: u32, probe_at: Instant },
    Disabled,
}

type Flight = std::pin::Pin<Box<dyn std::future::Future<Output = (Pending, Answer, bool)> + Send>>;

/// The endpoint's task: delivers what arrives on `inbox` until `phase` says stop (or the
/// sink is gone); answers the ids of the events it still held.
pub async fn run(
    target: Target,
    mut inbox: mpsc::UnboundedReceiver<Pending>,
    mut phase: watch::Receiver<Phase>,
) -> Vec<String> {
    let mut waiting: VecDeque<Pending> = VecDeque::new();
    let mut flying: FuturesUnordered<Flight> = FuturesUnordered::new();
    let mut flying_ids: Vec<String> = Vec::new();
    let mut health = Health::Healthy;
    loop {
        while let Ok(pending) = inbox.try_recv() {
            target.accept(pending, health, &mut waiting);
        }
        let current = *phase.borrow_and_update();
        if current == Phase::Stopping {
            break;
        }
        match health {
            Health::Healthy => {
                while flying.len() < IN_FLIGHT {
                    let Some(pending) = waiting.pop_front() else {
                        break;
                    };
                    flying_ids.push(pending.id.clone());
                    flying.push(target.attempt(pending, false));
                }
            }
            Health::Failing { probe_at, .. } if flying.is_empty() && Instant::now() >= probe_at => {
                target.expire(&mut waiting);
                if let Some(pending) = waiting.pop_front() {
                    flying_ids.push(pending.id.clone());
                    flying.push(target.attempt(pending, true));
                }
            }
            Health::Failing { .. } | Health::Disabled => {}
        }
        if current == Phase::Draining && waiting.is_empty() && flying.is_empty() {
            break;
        }
        let wake = match health {
            Health::Failing { probe_at, .. } if flying.is_empty() && !waiting.is_empty() => {
                Some(probe_at)
            }
            _ => None,
        };
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() {
                    // The sink is gone: nobody is left to log or deliver.
                    return Vec::new();
                }
            }
            Some((pending, answer, probe)) = flying.next(), if !flying.is_empty() => {
                if let Some(at) = flying_ids.iter().position(|id| *id == pending.id) {
                    flying_ids.swap_remove(at);
                }
                health = target.settle(pending, answer, probe, health, &mut waiting);
            }
            received = inbox.recv() => match received {
                Some(pending) => target.accept(pending, health, &mut waiting),
                None => return Vec::new(),
            },
            () = tokio::time::sleep_until(wake.unwrap_or_else(far_future)), if wake.is_some() => {}
        }
    }
    let mut left: Vec<String> = waiting.into_iter().map(|pending| pending.id).collect();
    left.extend(flying_ids);
    while let Ok(pending) = inbox.try_recv() {
        left.push(pending.id);
    }
    left
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

impl Target {
    fn count(&self, result: &'static str) {
        self.metrics.count_webhook_delivery(result, 1);
    }

    /// An event arriving from the sink.
    fn accept(&self, pending: Pending, health: Health, waiting: &mut VecDeque<Pending>) {
        if matches!(health, Health::Disabled) {
            self.count("disabled");
            tracing::debug!(id = %pending.id, endpoint = %self.label, "webhook event dropped: endpoint disabled (410)");
        } else {
            waiting.push_back(pending);
        }
    }

    /// One delivery of `pending` (`probe`: the one attempt of a failing endpoint).
    fn attempt(&self, pending: Pending, probe: bool) -> Flight {
        let request = self
            .client
            .post(self.endpoint.url.clone())
            .header(CONTENT_TYPE, "application/json");
        let secret = self.endpoint.secret.clone();
        Box::pin(async move {
            let timestamp = OffsetDateTime::now_utc().unix_timestamp();
            let signature = secret.sign(&pending.id, timestamp, &pending.body);
            let sent = request
                .header("webhook-id", pending.id.as_str())
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .body(pending.body.clone())
                .send()
                .await;
            let answer = match sent {
                Ok(response) if response.status().is_success() => Answer::Delivered,
                Ok(response) if response.status() == StatusCode::GONE => Answer::Gone,
                Ok(response) => Answer::Failed(format!("answered {}", response.status())),
                Err(error) => Answer::Failed(describe(&error)),
            };
            (pending, answer, probe)
        })
    }

    /// What an attempt's answer does to the event and to the endpoint's health.
    fn settle(
        &self,
        pending: Pending,
        answer: Answer,
        probe: bool,
        health: Health,
        waiting: &mut VecDeque<Pending>,
    ) -> Health {
        match answer {
            Answer::Delivered => {
                self.count("delivered");
                match health {
                    Health::Failing { failures, .. } => {
                        tracing::info!(endpoint = %self.label, failures, waiting = waiting.len(), "webhook endpoint recovered");
                        Health::Healthy
                    }
                    other => other,
                }
            }
            Answer::Gone => {
                self.count("disabled");
                if !matches!(health, Health::Disabled) {
                    self.disable(waiting);
                }
                Health::Disabled
            }
            Answer::Failed(reason) => {
                if matches!(health, Health::Disabled) {
                    self.count("disabled");
                    return health;
                }
                let now = Instant::now();
                if now >= pending.deadline {
                    self.count("expired");
                    tracing::warn!(id = %pending.id, endpoint = %self.label, %reason, "webhook event expired: not delivered within WEBHOOK_RETRY_HOURS");
                } else {
                    self.count("retried");
                    waiting.push_front(pending);
                }
                match health {
                    Health::Healthy => {
                        tracing::warn!(endpoint = %self.label, %reason, "webhook endpoint failing; probing with backoff");
                        Health::Failing {
                            failures: 1,
                            probe_at: now + self.backoff.delay(1),
                        }
                    }
                    Health::Failing { failures, .. } if probe => {
                        let failures = failures.saturating_add(1);
                        tracing::debug!(endpoint = %self.label, %reason, failures, "webhook probe failed");
                        Health::Failing {
                            failures,
                            probe_at: now + self.backoff.delay(failures),
                        }
                    }
                    other => other,
                }
            }
        }
    }

    /// A `410`: the endpoint is off until restart; what waits is dropped.
    fn disable(&self, waiting: &mut VecDeque<Pending>) {
        self.disabled.store(true, Ordering::SeqCst);
        let dropped = waiting.len();
        self.metrics
            .count_webhook_delivery("disabled", u64::try_from(dropped).unwrap_or(u64::MAX));
        waiting.clear();
        tracing::warn!(endpoint = %self.label, dropped, "webhook endpoint answered 410 Gone: disabled until restart, its waiting events dropped");
    }

    /// Drops the waiting events past their deadline: each id at debug, one warning with
    /// their count (an endpoint down for hours may expire a whole queue at once).
    fn expire(&self, waiting: &mut VecDeque<Pending>) {
        let now = Instant::now();
        let before = waiting.len();
        waiting.retain(|pending| {
            let live = now < pending.deadline;
            if !live {
                tracing::debug!(id = %pending.id, endpoint = %self.label, "webhook event expired");
            }
            live
        });
        let expired = before - waiting.len();
        if expired > 0 {
            self.metrics
                .count_webhook_delivery("expired", u64::try_from(expired).unwrap_or(u64::MAX));
            tracing::warn!(expired, endpoint = %self.label, "webhook events expired: not delivered within WEBHOOK_RETRY_HOURS");
        }
    }
}

/// A failed request, without its URL (its path or query may carry a token).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out (WEBHOOK_TIMEOUT_SECS)".into();
    }
    let mut text = String::from(if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    });
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
