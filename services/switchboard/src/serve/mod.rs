//! `switchboard serve`: the whole service on one machine. The public listener holds the
//! WebSocket endpoint, the publish API (with presence, usage and the Web Push devices), the
//! dead-letter API and `/healthz`; a second listener (loopback by default) holds the
//! `@connections` management API (optionally SigV4-checked), `/metrics` (connection counts
//! and rates are for operators, not for every client) and `/healthz` too. An in-process
//! queue feeds the same publisher the SQS Lambda runs.

mod admission;
mod app;
mod client_js;
mod dead_letters;
mod demo;
mod events;
mod gateway;
pub(crate) mod host;
pub(crate) mod http_server;
mod leases;
mod local_queue;
mod management;
pub(crate) mod metrics;
mod offline;
mod open_files;
mod registry;
mod sigv4;
mod tenant_settings;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use switchboard_core::auth::{AuthConfig, DevMint, Verifier};
use switchboard_core::connection::{ActionDeps, ConnectConfig};
use switchboard_core::history::{HistoryConfig, HistoryStore};
use switchboard_core::http::no_such_endpoint;
use switchboard_core::overview::OverviewApi;
use switchboard_core::presence::PresenceApi;
use switchboard_core::publish_api::PublishApi;
use switchboard_core::publisher::{Publisher, PublisherConfig, PublisherPorts};
use switchboard_core::push_api::PushApi;
use switchboard_core::receipts::Receipts;
use switchboard_core::roster::{MemoryRosterStore, RosterStore};
use switchboard_core::tenants::{share_of, Tenants};
use switchboard_core::usage::{sample_connections, Usage, UsageApi};
use switchboard_core::webpush::WebPush;
use switchboard_core::worklog::{MemoryWorkLog, MAX_MEMORY_UNITS};
use switchboard_model::close::CLOSE_GOING_AWAY;
use tokio::sync::watch;

pub use app::{ActionAllowance, SocketLimits, DEFAULT_ACTIONS_PER_SECOND, DEFAULT_ACTION_BURST};
pub use events::EventSettings;
pub use http_server::ListenerLimits;
pub use local_queue::QueueConfig;
pub use open_files::raise_open_files_limit;
pub use registry::ConnectionLimits;
pub use sigv4::ManagementCredentials;

use app::App;
use local_queue::LocalQueue;
use metrics::Metrics;
use registry::{InstanceTag, LocalPoster, Registry};

/// Where the roster lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RosterKind {
    /// In this process (lost on restart; one machine only).
    Memory,
    /// The DynamoDB table `ROSTER_TABLE` (`DYNAMODB_ENDPOINT` for DynamoDB Local).
    Dynamodb,
}

/// Everything `serve` needs, resolved from flags and environment.
pub struct ServeSettings {
    pub listen: SocketAddr,
    /// The `@connections` listener.
    pub management_listen: SocketAddr,
    /// When set, `@connections` requests must be SigV4-signed with these.
    pub management_credentials: Option<ManagementCredentials>,
    pub stage: String,
    pub roster: Arc<dyn RosterStore>,
    /// Where messages are recorded for `resume`.
    pub history: Arc<dyn HistoryStore>,
    pub history_config: HistoryConfig,
    /// Delivery receipts and idempotent publish (`None`: `RECEIPT_TTL_SECS=0`).
    pub receipts: Option<Receipts>,
    pub auth: AuthConfig,
    /// Dev mode: what `/dev/token` signs with (a key made for this process); the demo page
    /// and `/dev/token` are served.
    pub dev: Option<DevMint>,
    pub connect: ConnectConfig,
    pub limits: SocketLimits,
    pub connection_limits: ConnectionLimits,
    pub publisher: PublisherConfig,
    pub queue: QueueConfig,
    /// Longest wait for in-flight work at shutdown.
    pub drain_timeout: Duration,
    /// Time and number bounds of each listener's connections.
    pub listener_limits: ListenerLimits,
    /// Tenant settings (`TENANTS_FILE`), re-read when the file changes.
    pub tenants: Tenants,
    /// Usage per tenant per minute (`USAGE_RETENTION_DAYS`).
    pub usage: Usage,
    /// Web Push (`VAPID_*`, `PUSH_*`); `None`: push is off.
    pub push: Option<WebPush>,
    /// Events (`WEBHOOK_*`, `EVENTS_OFFLINE_DELAY_SECS`); `None`: no endpoint, events off.
    pub events: Option<EventSettings>,
}

/// The memory roster, as `Arc<dyn RosterStore>`.
pub fn memory_roster() -> Arc<dyn RosterStore> {
    Arc::new(MemoryRosterStore::new())
}

fn router(app: Arc<App>, publish: Router) -> Router {
    let stage = app.stage.clone();
    let mut router = Router::new()
        .route(&format!("/{stage}"), get(gateway::handshake))
        .route("/v1/dead-letters", get(dead_letters::list))
        .route("/v1/dead-letters/redrive", post(dead_letters::redrive))
        .route("/healthz", get(healthz));
    if app.dev.is_some() {
        router = router
            .route("/", get(demo::page))
            .route("/switchboard-client.js", get(client_js::get))
            .route("/service-worker.js", get(demo::service_worker))
            .route("/dev/token", post(demo::token));
    }
    let console = crate::console::router(crate::console::ConsoleConfig::serve(
        &stage,
        app.dev.is_some(),
    ));
    router
        .with_state(app)
        .merge(publish)
        .merge(console)
        .fallback(no_such_endpoint)
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// The management listener's routes besides `@connections`: `/metrics` and `/healthz`, open
/// (a Prometheus scraper or a probe signs nothing; the listener is private).
fn operations_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(render_metrics))
        .with_state(app)
}

async fn render_metrics(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
) -> impl IntoResponse {
    app.metrics.catch_up_usage_errors(app.usage.errors());
    let text = app.metrics.render();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}

/// A running server (tests hold one; `serve` waits on it).
pub struct Server {
    pub addr: SocketAddr,
    pub management_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    queue: Arc<LocalQueue>,
    drain: Duration,
}

impl Server {
    /// Starts listening and processing; returns once the socket is bound.
    pub async fn start(settings: ServeSettings) -> Result<Self, StartError> {
        let verifier = Arc::new(
            Verifier::new(settings.auth.clone())
                .await
                .map_err(StartError::Auth)?,
        );
        // Bound first: a process that cannot listen starts nothing (no sink, no lease).
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: settings.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: settings.listen,
            source,
        })?;
        let management_listener = tokio::net::TcpListener::bind(settings.management_listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: settings.management_listen,
                source,
            })?;
        let management_addr =
            management_listener
                .local_addr()
                .map_err(|source| StartError::Listen {
                    addr: settings.management_listen,
                    source,
                })?;
        let metrics = Arc::new(Metrics::new());
        let instance = InstanceTag::random();
        let registry = Arc::new(Registry::new(settings.connection_limits));
        let queue = Arc::new(LocalQueue::new(settings.queue.clone(), metrics.clone()));
        let events = match settings.events {
            Some(events) => Some(
                events::Events::start(
                    events,
                    settings.queue.share_percent,
                    &metrics,
                    settings.roster.clone(),
                    &instance,
                )
                .await?,
            ),
            None => None,
        };
        let publisher = Publisher::new(
            PublisherPorts {
                roster: settings.roster.clone(),
                poster: Arc::new(LocalPoster::new(
                    registry.clone(),
                    instance.clone(),
                    metrics.foreign_skipped.clone(),
                )),
                dead_letters: queue.clone(),
                work_queue: queue.clone(),
            },
            settings.publisher.clone(),
        )
        .with_history(settings.history.clone(), &settings.history_config)
        .with_history_ttls(settings.tenants.clone())
        .with_receipts(settings.receipts.clone())
        .with_usage(Some(settings.usage.clone()))
        .with_push(settings.push.clone())
        .with_work_log(Arc::new(MemoryWorkLog::with_share(
            MAX_MEMORY_UNITS,
            share_of(MAX_MEMORY_UNITS, settings.queue.share_percent),
        )));
        let publisher = match &events {
            Some(events) => publisher.with_events(events.sink()),
            None => publisher,
        };
        let app = Arc::new(App {
            stage: settings.stage.clone(),
            registry: registry.clone(),
            roster: settings.roster.clone(),
            verifier: verifier.clone(),
            connect_config: settings.connect.clone(),
            limits: settings.limits,
            metrics: metrics.clone(),
            queue: queue.clone(),
            dev: settings.dev.clone(),
            instance,
            actions: ActionDeps {
                roster: settings.roster.clone(),
                history: settings.history.clone(),
                history_config: settings.history_config.clone(),
                verifier: Some(verifier.clone()),
                push: settings.push.clone(),
            },
            tenants: settings.tenants.clone(),
            usage: settings.usage.clone(),
            events: events.clone(),
        });
        let usage_api = UsageApi {
            verifier: verifier.clone(),
            usage: settings.usage.clone(),
        };
        let publish = PublishApi {
            verifier: verifier.clone(),
            queue: queue.clone(),
            receipts: settings.receipts.clone(),
            tenants: settings.tenants.clone(),
            usage: Some(settings.usage.clone()),
            push_enabled: settings.push.is_some(),
        }
        .router()
        .merge(
            PresenceApi {
                verifier: verifier.clone(),
                roster: settings.roster.clone(),
            }
            .router(),
        )
        .merge(
            OverviewApi {
                verifier: verifier.clone(),
                roster: settings.roster.clone(),
                tenants: settings.tenants.clone(),
            }
            .router(),
        );
        let push_api = PushApi {
            verifier: verifier.clone(),
            push: settings.push.clone(),
        };
        let publish = publish.merge(usage_api.router()).merge(push_api.router());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let drain = settings.drain_timeout;
        let worker = tokio::spawn(queue.clone().run(publisher, shutdown_rx.clone(), drain));
        let sampled = registry.clone();
        tokio::spawn(sample_connections(
            settings.usage.clone(),
            move || sampled.tenant_counts(),
            shutdown_rx.clone(),
        ));
        tokio::spawn(tenant_settings::watch(
            settings.tenants.clone(),
            registry.clone(),
            metrics.clone(),
            shutdown_rx.clone(),
        ));
        let management = operations_router(app.clone()).merge(management::router(
            app.clone(),
            settings.management_credentials.clone(),
            management_addr,
        ));
        let limits = settings.listener_limits;
        let management_task = tokio::spawn(http_server::serve(
            management_listener,
            management,
            http_server::Listener {
                name: "management",
                limits,
                metrics: metrics.clone(),
            },
            shutdown_rx.clone(),
            drain,
        ));
        let public = router(app, publish);
        let mut close_signal = shutdown_rx.clone();
        let task = tokio::spawn(async move {
            let serving = tokio::spawn(http_server::serve(
                listener,
                public,
                http_server::Listener {
                    name: "public",
                    limits,
                    metrics: metrics.clone(),
                },
                shutdown_rx,
                drain,
            ));
            // Going away: every socket gets a 1001 close frame, then its task ends.
            let _ = close_signal.wait_for(|stop| *stop).await;
            registry.close_all(CLOSE_GOING_AWAY, "server shutting down");
            // Each socket completes its close handshake and `$disconnect` (bounded).
            let closing = async {
                while metrics.connections.get() > 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            if tokio::time::timeout(drain, closing).await.is_err() {
                tracing::warn!("shutdown: sockets still closing after the drain bound");
            }
            let _ = worker.await;
            // Offline checks of the closed sockets, the lease, then the webhook deliveries.
            if let Some(events) = &events {
                events.shutdown(drain, metrics.connections.get()).await;
            }
            if let Err(error) = serving.await {
                tracing::error!(%error, "server task failed");
            }
            if let Err(error) = management_task.await {
                tracing::error!(%error, "management server task failed");
            }
        });
        Ok(Self {
            addr,
            management_addr,
            shutdown,
            task,
            queue,
            drain,
        })
    }

    /// Graceful stop (docs/design.md: The one-machine binary): publishes are refused (503) at once;
    /// the queue is drained — delivered, or given up on — within the drain timeout; then the
    /// sockets are closed with 1001 and the listeners stop. The id of every message still queued
    /// at the end is logged.
    pub async fn shutdown(self) {
        self.queue.stop_accepting();
        let started = tokio::time::Instant::now();
        let deadline = started + self.drain;
        if !self.queue.drained(deadline).await {
            tracing::warn!(
                left = self.queue.depth(),
                "shutdown: queue not empty at the drain bound"
            );
        }
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        self.queue.log_undelivered();
    }

    /// Stops without draining (a test dropping its in-process server): publishes are
    /// refused, the listeners stop, sockets get 1001.
    pub fn stop_now(&self) {
        self.queue.stop_accepting();
        let _ = self.shutdown.send(true);
    }

    /// Runs until `signal` fires (SIGTERM or Ctrl-C), then shuts down gracefully.
    pub async fn run_until_signal(self, signal: ShutdownSignal) {
        signal.wait().await;
        tracing::info!("shutdown signal received; draining");
        self.shutdown().await;
        tracing::info!("stopped");
    }
}

/// SIGTERM and SIGINT handlers, installed before the server announces its address so a
/// signal sent right after start-up is never fatal.
pub struct ShutdownSignal {
    #[cfg(unix)]
    handlers: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl ShutdownSignal {
    pub fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let handlers = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(term), Ok(int)) => Some((term, int)),
                _ => None,
            };
            Self { handlers }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    pub(crate) async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut term, mut int)) = self.handlers {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("JWT configuration: {0}")]
    Auth(#[from] switchboard_core::auth::AuthError),
    /// The webhook sink's HTTP client could not be built.
    #[error("{0}")]
    Webhooks(#[from] webhooks::WebhookError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}
