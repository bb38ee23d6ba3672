//! The event sink of `switchboard serve`: signed webhooks (Standard Webhooks; docs/design.md:
//! Events). Each event becomes one delivery — a POST of the event JSON with `webhook-id`,
//! `webhook-timestamp` and `webhook-signature` — to its tenant's endpoint (`WEBHOOK_FILE`)
//! or else the global one (`WEBHOOK_URL`); a broadcast's `message.settled` goes to the
//! global one. No endpoint for an event: it is counted in `switchboard_events_total` only.
//!
//! - [`config`]: the settings, validated at start ([`WebhookConfig::from_lookup`]).
//! - [`sign`]: the secret and the signature.
//! - [`queue`]: the bound (entries, bytes, tenant shares) every pending event holds a slot of.
//! - [`delivery`]: one task per endpoint (backoff, probes, 410, expiry).
//!
//! API for `serve`'s start-up:
//!
//! ```ignore
//! let config = WebhookConfig::from_lookup(lookup, dev, known_tenants)?; // None: events off
//! let sink = Arc::new(WebhookSink::spawn(config, share_percent, metrics.clone())?);
//! // hand `sink.clone()` (an `Arc<dyn EventSink>`) to PresenceEvents and Publisher::with_events
//! sink.shutdown(drain_timeout).await; // at shutdown, after the queue drained
//! ```
//!
//! `emit` never waits: each event takes a slot of the queue or is dropped at once
//! (`EventError::Full`, counted `dropped`, logged). `shutdown` stops taking events, lets
//! the endpoints deliver what they hold until the bound, then stops them (within one more
//! second) and logs the id of every event left, and their count.

pub mod config;
mod delivery;
mod queue;
pub mod sign;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Bytes;
use switchboard_core::events::{Event, EventError, EventSink};
use switchboard_core::publisher::RetryPolicy;
use switchboard_model::TenantId;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use config::{Endpoint, WebhookConfig};
pub use queue::MAX_QUEUE_BYTES;

use super::metrics::Metrics;
use delivery::{Pending, Phase, Target};
use queue::{Queue, ENTRY_OVERHEAD};

/// How long endpoints get to stop after the shutdown bound.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Why the sink could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The way into one endpoint's task.
struct Route {
    inbox: mpsc::UnboundedSender<Pending>,
    disabled: Arc<AtomicBool>,
}

/// The webhook [`EventSink`]: a bounded queue and one delivery task per endpoint.
pub struct WebhookSink {
    global: Option<Route>,
    tenants: HashMap<TenantId, Route>,
    queue: Arc<Queue>,
    metrics: Arc<Metrics>,
    retry_window: Duration,
    accepting: AtomicBool,
    phase: watch::Sender<Phase>,
    tasks: Mutex<Vec<JoinHandle<Vec<String>>>>,
}

impl WebhookSink {
    /// Starts one delivery task per endpoint of `config` (call inside the runtime).
    /// `share_percent`: `TENANT_SHARE_PERCENT`.
    pub fn spawn(
        config: WebhookConfig,
        share_percent: u8,
        metrics: Arc<Metrics>,
    ) -> Result<Self, WebhookError> {
        Self::spawn_with(
            config,
            share_percent,
            metrics,
            delivery::default_backoff(),
            MAX_QUEUE_BYTES,
        )
    }

    /// [`WebhookSink::spawn`] with the probes' `backoff` and the queue's byte bound given
    /// (tests).
    pub(crate) fn spawn_with(
        config: WebhookConfig,
        share_percent: u8,
        metrics: Arc<Metrics>,
        backoff: RetryPolicy,
        max_bytes: usize,
    ) -> Result<Self, WebhookError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(config.timeout)
            .pool_max_idle_per_host(delivery::IN_FLIGHT)
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let queue = Queue::new(
            config.capacity,
            max_bytes,
            share_percent,
            metrics.webhook_queue_events.clone(),
        );
        let (phase, phase_rx) = watch::channel(Phase::Running);
        let mut tasks = Vec::new();
        let mut start = |label: String, endpoint: Endpoint| {
            let (inbox, inbox_rx) = mpsc::unbounded_channel();
            let disabled = Arc::new(AtomicBool::new(false));
            let target = Target {
                label: label.into(),
                endpoint,
                client: client.clone(),
                metrics: metrics.clone(),
                disabled: disabled.clone(),
                backoff: backoff.clone(),
            };
            tasks.push(tokio::spawn(delivery::run(
                target,
                inbox_rx,
                phase_rx.clone(),
            )));
            Route { inbox, disabled }
        };
        let global = config
            .global
            .map(|endpoint| start(config::URL_VAR.to_string(), endpoint));
        let tenants = config
            .tenants
            .into_iter()
            .map(|(tenant, endpoint)| {
                let route = start(format!("{} tenants.{tenant}", config::FILE_VAR), endpoint);
                (tenant, route)
            })
            .collect();
        Ok(Self {
            global,
            tenants,
            queue,
            metrics,
            retry_window: config.retry_window,
            accepting: AtomicBool::new(true),
            phase,
            tasks: Mutex::new(tasks),
        })
    }

    /// Events waiting or in flight.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    fn route(&self, tenant: Option<&TenantId>) -> Option<&Route> {
        tenant
            .and_then(|tenant| self.tenants.get(tenant))
            .or(self.global.as_ref())
    }

    /// Stops taking events; the endpoints deliver what they hold until `bound`, then stop
    /// (within [`STOP_GRACE`] more). Every event left is logged by id, then their count.
    pub async fn shutdown(&self, bound: Duration) {
        self.accepting.store(false, Ordering::SeqCst);
        let handles = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        let _ = self.phase.send(Phase::Draining);
        let mut left = Vec::new();
        let mut running = Vec::new();
        let deadline = Instant::now() + bound;
        for mut handle in handles {
            match tokio::time::timeout_at(deadline, &mut handle).await {
                Ok(ids) => left.extend(ids.unwrap_or_default()),
                Err(_) => running.push(handle),
            }
        }
        if !running.is_empty() {
            let _ = self.phase.send(Phase::Stopping);
            let deadline = Instant::now() + STOP_GRACE;
            for mut handle in running {
                match tokio::time::timeout_at(deadline, &mut handle).await {
                    Ok(ids) => left.extend(ids.unwrap_or_default()),
                    Err(_) => handle.abort(),
                }
            }
        }
        for id in &left {
            tracing::warn!(%id, "webhook event undelivered at shutdown");
        }
        if !left.is_empty() {
            tracing::warn!(
                count = left.len(),
                "shutdown: webhook events left undelivered"
            );
        }
    }
}

#[async_trait]
impl EventSink for WebhookSink {
    async fn emit(&self, events: Vec<Event>) -> Result<(), EventError> {
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(EventError::Unavailable {
                failed: events.len(),
                reason: "webhooks shutting down".into(),
            });
        }
        let mut dropped = Vec::new();
        let mut reason = "";
        for event in events {
            self.metrics.count_event(event.kind.as_str());
            let Some(route) = self.route(event.tenant.as_ref()) else {
                tracing::debug!(id = %event.id, "no webhook endpoint for the event's tenant");
                continue;
            };
            if route.disabled.load(Ordering::SeqCst) {
                self.metrics.count_webhook_delivery("disabled", 1);
                continue;
            }
            let body = Bytes::from(event.to_json().to_string());
            let cost = body.len() + event.id.len() + ENTRY_OVERHEAD;
            let slot = match self.queue.take(event.tenant.as_ref(), cost) {
                Ok(slot) => slot,
                Err(full) => {
                    reason = full.as_str();
                    dropped.push(event.id);
                    continue;
                }
            };
            let age = OffsetDateTime::now_utc() - event.timestamp;
            let age = Duration::from_millis(
                u64::try_from(age.whole_milliseconds().max(0)).unwrap_or(u64::MAX),
            );
            let pending = Pending {
                id: event.id,
                body,
                deadline: Instant::now() + self.retry_window.saturating_sub(age),
                _slot: slot,
            };
            if let Err(refused) = route.inbox.send(pending) {
                reason = "endpoint stopped";
                dropped.push(refused.0.id);
            }
        }
        if dropped.is_empty() {
            return Ok(());
        }
        let count = u64::try_from(dropped.len()).unwrap_or(u64::MAX);
        self.metrics.count_webhook_delivery("dropped", count);
        tracing::warn!(
            dropped = dropped.len(),
            first = %dropped[0],
            reason,
            "webhook events dropped"
        );
        Err(EventError::Full {
            dropped: dropped.len(),
        })
    }
}

#[cfg(test)]
mod tests;
