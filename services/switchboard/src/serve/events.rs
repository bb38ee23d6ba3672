//! Events on `serve` (docs/design.md: Events): the presence steps the gateway runs after
//! its roster writes, the offline timers, the lease task of `--roster dynamodb`, and the
//! webhook sink every event leaves through. On iff an endpoint is configured
//! (`WEBHOOK_URL` or `WEBHOOK_FILE`); otherwise nothing here runs and the online store is
//! never written.
//!
//! A presence step never refuses or delays a connection past [`STEP_TIMEOUT`]: a failure
//! is logged and counted (`switchboard_presence_errors_total{step}`), and the socket is
//! served as usual.

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::events::{EventSink, PresenceEvents};
use switchboard_core::leases::LeaseStore;
use switchboard_core::online::OnlineStore;
use switchboard_core::roster::RosterStore;
use switchboard_model::{ConnectionId, TenantId, UserId};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::leases::LeaseKeeper;
use super::metrics::Metrics;
use super::offline::OfflineTimers;
use super::registry::InstanceTag;
use super::webhooks::{WebhookConfig, WebhookError, WebhookSink};

/// Longest wait for one presence step (an online-store write and an enqueue): the
/// publisher's bound on one store operation.
pub const STEP_TIMEOUT: Duration = switchboard_core::publisher::STORE_OPERATION_TIMEOUT;

/// What `serve` runs events with (built by the CLI when an endpoint is configured).
pub struct EventSettings {
    /// `WEBHOOK_*`: the endpoints, retries and queue bounds.
    pub webhooks: WebhookConfig,
    /// `EVENTS_OFFLINE_DELAY_SECS`.
    pub offline_delay: Duration,
    /// Who is online, per user (memory, or the history table with `--roster dynamodb`).
    pub online: Arc<dyn OnlineStore>,
    /// This process's lease (`--roster dynamodb` only): a process that died without
    /// removing its connections has them removed by another.
    pub leases: Option<Arc<dyn LeaseStore>>,
    /// Users waiting for their offline check at most (`MAX_CONNECTIONS`).
    pub max_pending_checks: usize,
}

/// A presence step, as counted when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Connected,
    Disconnected,
    CheckOffline,
    /// Removing a dead process's connections (the lease sweep).
    Sweep,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Connected => "connected",
            Step::Disconnected => "disconnected",
            Step::CheckOffline => "check_offline",
            Step::Sweep => "sweep",
        }
    }
}

/// Events of a running server.
pub struct Events {
    presence: PresenceEvents,
    timers: Arc<OfflineTimers>,
    sink: Arc<WebhookSink>,
    metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    leases: Option<Arc<LeaseKeeper>>,
}

impl Events {
    /// Starts the webhook sink, the offline timers and, with a lease store, renews this
    /// process's lease once (so its connections are never left without one) and starts
    /// the lease task. `share_percent`: `TENANT_SHARE_PERCENT` (of the webhook queue).
    pub async fn start(
        settings: EventSettings,
        share_percent: u8,
        metrics: &Arc<Metrics>,
        roster: Arc<dyn RosterStore>,
        instance: &InstanceTag,
    ) -> Result<Arc<Self>, WebhookError> {
        tracing::info!("{}", settings.webhooks.summary());
        let sink = Arc::new(WebhookSink::spawn(
            settings.webhooks,
            share_percent,
            metrics.clone(),
        )?);
        let presence = PresenceEvents::new(settings.online, sink.clone());
        let timers = OfflineTimers::new(
            presence.clone(),
            settings.offline_delay,
            settings.max_pending_checks,
            metrics.clone(),
        );
        let (stop, stopped) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(timers.clone().run_until(stopped.clone()))];
        let leases = match settings.leases {
            Some(store) => {
                let keeper = Arc::new(LeaseKeeper {
                    store,
                    tag: instance.clone(),
                    roster,
                    presence: presence.clone(),
                    timers: timers.clone(),
                    metrics: metrics.clone(),
                    held: Default::default(),
                });
                keeper.renew().await;
                tasks.push(tokio::spawn(keeper.clone().run_until(stopped)));
                Some(keeper)
            }
            None => None,
        };
        tracing::info!(
            offline_delay_secs = settings.offline_delay.as_secs(),
            leases = leases.is_some(),
            "events on: webhooks"
        );
        Ok(Arc::new(Self {
            presence,
            timers,
            sink,
            metrics: metrics.clone(),
            stop,
            tasks: std::sync::Mutex::new(tasks),
            leases,
        }))
    }

    /// Where events go, for the publisher's `message.settled`.
    pub fn sink(&self) -> Arc<dyn EventSink> {
        self.sink.clone()
    }

    /// After the roster write of a handshake: `user.online` (bounded; a failure is logged
    /// and counted).
    pub async fn connected(&self, tenant: &TenantId, user: &UserId, id: &ConnectionId) {
        let step = self
            .presence
            .connected(tenant, user, id, OffsetDateTime::now_utc());
        match tokio::time::timeout(STEP_TIMEOUT, step).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => self.failed(Step::Connected, id, &error.to_string()),
            Err(_) => self.failed(Step::Connected, id, "timed out"),
        }
    }

    /// After the roster delete of a connection that ended: the offline timer when the user
    /// has no connection left (bounded; a failure is logged and counted).
    pub async fn disconnected(&self, tenant: &TenantId, user: &UserId, id: &ConnectionId) {
        let step = self.presence.disconnected(tenant, user, id);
        match tokio::time::timeout(STEP_TIMEOUT, step).await {
            Ok(Ok(Some(check))) => self.timers.schedule(check).await,
            Ok(Ok(None)) => {}
            Ok(Err(error)) => self.failed(Step::Disconnected, id, &error.to_string()),
            Err(_) => self.failed(Step::Disconnected, id, "timed out"),
        }
    }

    fn failed(&self, step: Step, id: &ConnectionId, error: &str) {
        self.metrics.count_presence_error(step.as_str());
        tracing::warn!(step = step.as_str(), connection_id = %id, %error, "presence step failed");
    }

    /// At shutdown, once every socket ended (`connections_left` = 0 when all their roster
    /// items are removed): the timer and lease tasks stop, pending offline checks run at
    /// once, this process's lease is given up (kept to expire when connections are left,
    /// so another process removes them), and the webhook sink delivers what it holds —
    /// all within `drain`.
    pub async fn shutdown(&self, drain: Duration, connections_left: i64) {
        let deadline = tokio::time::Instant::now() + drain;
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            let _ = tokio::time::timeout_at(deadline, task).await;
        }
        self.timers
            .drain(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await;
        if let Some(leases) = &self.leases {
            if connections_left == 0 {
                leases.give_up().await;
            } else {
                tracing::warn!(
                    connections_left,
                    "shutdown: connections left; the lease is kept to expire"
                );
            }
        }
        self.sink
            .shutdown(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::BTreeMap;

    use async_trait::async_trait;
    use switchboard_core::online::{Added, Marked, OnlineError, Removed};
    use switchboard_core::roster::MemoryRosterStore;

    use super::*;
    use crate::serve::webhooks::sign::Secret;
    use crate::serve::webhooks::Endpoint;

    /// An online store that fails every step, or never answers.
    struct Broken {
        hangs: bool,
    }

    impl Broken {
        async fn fail<T>(&self) -> Result<T, OnlineError> {
            if self.hangs {
                std::future::pending::<()>().await;
            }
            Err(OnlineError::Unavailable("down".into()))
        }
    }

    #[async_trait]
    impl OnlineStore for Broken {
        async fn add(
            &self,
            _: &TenantId,
            _: &UserId,
            _: &ConnectionId,
        ) -> Result<Added, OnlineError> {
            self.fail().await
        }
        async fn remove(
            &self,
            _: &TenantId,
            _: &UserId,
            _: &ConnectionId,
        ) -> Result<Removed, OnlineError> {
            self.fail().await
        }
        async fn mark_offline(
            &self,
            _: &TenantId,
            _: &UserId,
            _: u64,
        ) -> Result<Marked, OnlineError> {
            self.fail().await
        }
    }

    async fn events(online: Broken, metrics: &Arc<Metrics>) -> Arc<Events> {
        let secret = format!("whsec_{}", "A".repeat(44));
        let settings = EventSettings {
            webhooks: WebhookConfig {
                global: Some(Endpoint {
                    url: "http://127.0.0.1:9/hooks".parse().unwrap(),
                    secret: Secret::parse(&secret).unwrap(),
                }),
                tenants: BTreeMap::new(),
                retry_window: Duration::from_secs(3600),
                capacity: 10,
                timeout: Duration::from_secs(1),
            },
            offline_delay: Duration::from_secs(3),
            online: Arc::new(online),
            leases: None,
            max_pending_checks: 10,
        };
        let roster = Arc::new(MemoryRosterStore::new());
        Events::start(settings, 25, metrics, roster, &InstanceTag::random())
            .await
            .unwrap()
    }

    fn ids() -> (TenantId, UserId, ConnectionId) {
        (
            TenantId::parse("acme").unwrap(),
            UserId::parse("alice").unwrap(),
            ConnectionId::parse("conn000000000001").unwrap(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_or_hanging_online_store_is_counted_and_bounded() {
        for hangs in [false, true] {
            let metrics = Arc::new(Metrics::new());
            let events = events(Broken { hangs }, &metrics).await;
            let (tenant, user, id) = ids();
            let started = tokio::time::Instant::now();
            events.connected(&tenant, &user, &id).await;
            events.disconnected(&tenant, &user, &id).await;
            assert!(started.elapsed() <= STEP_TIMEOUT * 2, "bounded: {hangs}");
            let text = metrics.render();
            for step in ["connected", "disconnected"] {
                let line = format!("switchboard_presence_errors_total{{step=\"{step}\"}} 1");
                assert!(text.contains(&line), "{line} in {text}");
            }
            assert!(text.ends_with("# EOF\n") && text.matches("# EOF").count() == 1);
            events.shutdown(Duration::from_secs(1), 0).await;
        }
    }
}
