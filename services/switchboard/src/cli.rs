//! Command-line interface: flags mirror the environment variables of docs/design.md: Configuration.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};
use switchboard_core::auth::{mint_hs256_with, AuthConfig, KeySource, MintOptions, ShortSecret};
use switchboard_core::config::ConnectConfig;
use switchboard_core::history::{HistoryConfig, HistoryStore, MemoryHistoryStore};
use switchboard_core::publisher::PublisherConfig;
use switchboard_core::queue::MessageQueue;
use switchboard_core::receipts::{
    MemoryReceiptStore, ReceiptConfig, ReceiptStore, Receipts, MAX_MEMORY_RECEIPTS,
};
use switchboard_core::roster::RosterStore;
use switchboard_model::{Envelope, TenantId, UserId};

use crate::serve::{
    self, ConnectionLimits, ManagementCredentials, QueueConfig, RosterKind, ServeSettings, Server,
    SocketLimits,
};

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Targeted, multi-tenant WebSocket notifications"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole service on this machine.
    Serve(ServeArgs),
    /// Print a signed HS256 token (needs JWT_HS256_SECRET).
    Token(TokenArgs),
    /// Send an envelope to a publish API URL or an SQS queue URL.
    Publish(PublishArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Dev mode: without a JWT key source, verify tokens with a random secret made for
    /// this process; serve the demo page and /dev/token (loopback only).
    #[arg(long)]
    dev: bool,
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Address of the @connections management API (port 0: any free port; printed).
    /// Keep it on loopback or a private network; see MANAGEMENT_ACCESS_KEY_ID.
    #[arg(
        long,
        env = "SWITCHBOARD_MANAGEMENT_LISTEN",
        default_value = "127.0.0.1:8081"
    )]
    management_listen: SocketAddr,
    /// Stage name: the WebSocket is ws://HOST/<stage>, management at /<stage>/@connections.
    #[arg(long, env = "SWITCHBOARD_STAGE", default_value = "main")]
    stage: String,
    /// Roster backend.
    #[arg(long, value_enum, env = "SWITCHBOARD_ROSTER", default_value = "memory")]
    roster: RosterKind,
    /// With --roster dynamodb: create the table (and its index and TTL) if it is missing.
    /// Always done when DYNAMODB_ENDPOINT points at a local DynamoDB.
    #[arg(long)]
    create_table: bool,
    /// Posts in flight per message (FANOUT_CONCURRENCY).
    #[arg(long, env = "FANOUT_CONCURRENCY")]
    fanout_concurrency: Option<String>,
    /// Send non-envelope bodies verbatim to everyone (LEGACY_BROADCAST).
    #[arg(long, env = "LEGACY_BROADCAST")]
    legacy_broadcast: Option<String>,
    /// Roster item lifetime in seconds (CONNECTION_TTL_SECS).
    #[arg(long, env = "CONNECTION_TTL_SECS")]
    connection_ttl_secs: Option<String>,
    /// Seconds a write to a client may take; a client that does not read is closed (1008).
    #[arg(long, env = "SEND_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    send_timeout_secs: u64,
    /// Seconds without a client frame after which a socket is closed (1001), as API
    /// Gateway does after 10 minutes.
    #[arg(long, env = "IDLE_TIMEOUT_SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    idle_timeout_secs: u64,
    /// Live WebSocket connections accepted; beyond, handshakes get 503.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    max_connections: u64,
    /// Live connections per user (tenant + user); beyond, handshakes get 429.
    #[arg(long, env = "MAX_CONNECTIONS_PER_USER", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections_per_user: u64,
    /// Messages the in-process queue holds; beyond, publishes get 503 + Retry-After.
    #[arg(long, env = "QUEUE_CAPACITY", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    queue_capacity: u64,
    /// Dead letters kept; beyond, the oldest is dropped (and counted in /metrics).
    #[arg(long, env = "DEAD_LETTER_CAPACITY", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    dead_letter_capacity: u64,
    /// Seconds a client may take to send a request's headers (slow clients are dropped).
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_read_timeout_secs: u64,
    /// Delay before a failed message is redelivered (the queue's visibility timeout).
    /// At most 12h, as SQS.
    #[arg(long, default_value = "5s", value_parser = visibility_timeout)]
    visibility_timeout: Duration,
    /// Receives after which a failing message moves to the dead letters.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    max_receives: u32,
    /// Longest wait for in-flight work at shutdown.
    /// At most 1h.
    #[arg(long, default_value = "10s", value_parser = drain_timeout)]
    drain_timeout: Duration,
}

#[derive(Args)]
struct TokenArgs {
    #[arg(long)]
    tenant: String,
    #[arg(long)]
    user: String,
    /// A role (repeat for several): publisher, admin, ...
    #[arg(long = "role")]
    roles: Vec<String>,
    /// Lifetime, e.g. 30m, 1h, 7d.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
}

#[derive(Args)]
struct PublishArgs {
    /// Publish API URL, e.g. http://127.0.0.1:8080/v1/messages.
    #[arg(
        long,
        conflicts_with = "queue_url",
        required_unless_present = "queue_url"
    )]
    url: Option<String>,
    /// SQS queue URL (AWS credentials from the usual chain).
    #[arg(long, env = "QUEUE_URL")]
    queue_url: Option<String>,
    /// Bearer token for the publish API.
    #[arg(long, env = "SWITCHBOARD_TOKEN")]
    token: Option<String>,
    /// A whole envelope as JSON (instead of the target flags below).
    #[arg(long, conflicts_with_all = ["tenant", "broadcast"])]
    envelope: Option<String>,
    /// Target tenant (with no --user/--connection: the whole tenant).
    #[arg(long)]
    tenant: Option<String>,
    /// Target user (repeat for several).
    #[arg(long = "user", requires = "tenant")]
    users: Vec<String>,
    /// Target connection id (repeat for several).
    #[arg(long = "connection", requires = "tenant", conflicts_with = "users")]
    connections: Vec<String>,
    /// Every connection of every tenant (admins only).
    #[arg(long, conflicts_with = "tenant")]
    broadcast: bool,
    /// The message data, as JSON.
    #[arg(long, default_value = "null")]
    data: String,
    /// Message id (generated when absent).
    #[arg(long)]
    id: Option<String>,
}

/// Why a command failed: a message for the operator.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Failed(String),
}

/// Human logs on stderr, filtered by RUST_LOG (default info).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Cli {
    pub async fn run(self) -> Result<(), CliError> {
        match self.command {
            Command::Serve(args) => serve_command(args).await,
            Command::Token(args) => token_command(args),
            Command::Publish(args) => publish_command(args).await,
        }
    }
}

/// A duration flag no longer than `max` (so `Instant + duration` cannot overflow).
fn bounded_duration(text: &str, max: Duration) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration > max {
        return Err(format!("at most {}", humantime::format_duration(max)));
    }
    Ok(duration)
}

fn visibility_timeout(text: &str) -> Result<Duration, String> {
    bounded_duration(text, Duration::from_secs(12 * 60 * 60))
}

fn drain_timeout(text: &str) -> Result<Duration, String> {
    bounded_duration(text, Duration::from_secs(60 * 60))
}

fn valid_stage(stage: &str) -> bool {
    !stage.is_empty()
        && stage.len() <= 128
        && stage
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

async fn serve_command(args: ServeArgs) -> Result<(), CliError> {
    if !valid_stage(&args.stage) {
        return Err(CliError::Config(format!(
            "--stage {:?}: letters, digits, '-' and '_' only",
            args.stage
        )));
    }
    let lookup = |name: &str| match name {
        "FANOUT_CONCURRENCY" => args.fanout_concurrency.clone(),
        "LEGACY_BROADCAST" => args.legacy_broadcast.clone(),
        "CONNECTION_TTL_SECS" => args.connection_ttl_secs.clone(),
        other => env(other),
    };
    let publisher =
        PublisherConfig::from_lookup(lookup).map_err(|e| CliError::Config(e.to_string()))?;
    let connect =
        ConnectConfig::from_lookup(lookup).map_err(|e| CliError::Config(e.to_string()))?;
    let (auth, dev_secret) = auth_settings(&args)?;
    let roster = build_roster(&args).await?;
    let history_config =
        HistoryConfig::from_lookup(lookup).map_err(|e| CliError::Config(e.to_string()))?;
    let history = build_history(&args, &history_config).await?;
    let receipt_config =
        ReceiptConfig::from_lookup(lookup).map_err(|e| CliError::Config(e.to_string()))?;
    let receipts = build_receipts(&args, &receipt_config, &history_config).await?;
    let management_credentials = management_credentials()?;
    let settings = ServeSettings {
        listen: args.listen,
        management_listen: args.management_listen,
        management_credentials: management_credentials.clone(),
        stage: args.stage.clone(),
        roster,
        history,
        history_config,
        receipts,
        auth,
        dev_secret: dev_secret.clone(),
        connect,
        limits: SocketLimits {
            send_timeout: Duration::from_secs(args.send_timeout_secs),
            idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        },
        connection_limits: ConnectionLimits {
            max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
            max_per_user: usize::try_from(args.max_connections_per_user).unwrap_or(usize::MAX),
        },
        publisher,
        queue: QueueConfig {
            visibility_timeout: args.visibility_timeout,
            max_receives: args.max_receives,
            capacity: usize::try_from(args.queue_capacity).unwrap_or(usize::MAX),
            dead_letter_capacity: usize::try_from(args.dead_letter_capacity).unwrap_or(usize::MAX),
            ..QueueConfig::default()
        },
        drain_timeout: args.drain_timeout,
        header_read_timeout: Duration::from_secs(args.header_read_timeout_secs),
    };
    let signal = serve::ShutdownSignal::install();
    let server = Server::start(settings)
        .await
        .map_err(|e| CliError::Config(e.to_string()))?;
    let addr = server.addr;
    println!(
        "switchboard listening on http://{addr} (WebSocket ws://{addr}/{})",
        args.stage
    );
    println!(
        "switchboard management API on http://{}/{}/@connections ({})",
        server.management_addr,
        args.stage,
        if management_credentials.is_some() {
            "SigV4 required"
        } else {
            "no authentication: keep it on loopback or a private network"
        }
    );
    if let Some(secret) = dev_secret {
        print_dev_banner(addr, &args.stage, &String::from_utf8_lossy(&secret));
    }
    tracing::info!(%addr, stage = %args.stage, roster = ?args.roster, "serving");
    server.run_until_signal(signal).await;
    Ok(())
}

/// `MANAGEMENT_ACCESS_KEY_ID` + `MANAGEMENT_SECRET_ACCESS_KEY`: both or neither.
fn management_credentials() -> Result<Option<ManagementCredentials>, CliError> {
    let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    match (
        get("MANAGEMENT_ACCESS_KEY_ID"),
        get("MANAGEMENT_SECRET_ACCESS_KEY"),
    ) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Some(ManagementCredentials {
            access_key_id: access_key_id.trim().to_string(),
            secret_access_key,
        })),
        (None, None) => Ok(None),
        _ => Err(CliError::Config(
            "set both MANAGEMENT_ACCESS_KEY_ID and MANAGEMENT_SECRET_ACCESS_KEY, or neither".into(),
        )),
    }
}

/// The identity settings of `serve` and, in dev mode, the secret `/dev/token` signs with.
/// Dev mode is only ever explicit (`--dev`) and only on a loopback `--listen`.
fn auth_settings(args: &ServeArgs) -> Result<(AuthConfig, Option<Vec<u8>>), CliError> {
    let short_secret = if args.dev {
        ShortSecret::Warn
    } else {
        ShortSecret::Refuse
    };
    let auth = AuthConfig::from_lookup_with(env, short_secret)
        .map_err(|e| CliError::Config(e.to_string()))?;
    if !args.dev {
        if !auth.has_key_source() {
            return Err(CliError::Config(
                "no JWT key source: set JWT_HS256_SECRET (32+ random bytes), JWT_JWKS_FILE or JWT_JWKS_URL; \
                 or run `switchboard serve --dev` for a local trial with a random secret"
                    .into(),
            ));
        }
        return Ok((auth, None));
    }
    if !args.listen.ip().is_loopback() {
        return Err(CliError::Config(format!(
            "--dev mints admin tokens for anyone who asks: it only runs on a loopback --listen \
             (127.0.0.1 or [::1]), not {}",
            args.listen
        )));
    }
    match &auth.keys {
        KeySource::None => {
            let secret: [u8; 32] = rand::random();
            let secret = hex(&secret).into_bytes();
            Ok((auth.hs256_secret_replaced(secret.clone()), Some(secret)))
        }
        KeySource::Hs256(secret) => {
            let secret = secret.as_bytes().to_vec();
            Ok((auth, Some(secret)))
        }
        KeySource::JwksFile(_) | KeySource::JwksUrl(_) | KeySource::Issuers(_) => {
            Err(CliError::Config(
                "--dev signs tokens with an HS256 secret: unset JWT_JWKS_FILE / JWT_JWKS_URL / \
                 JWT_ISSUERS_FILE, or drop --dev"
                    .into(),
            ))
        }
    }
}

/// The history store: in memory, or the `HISTORY_TABLE` table beside a DynamoDB roster
/// (made on demand against DynamoDB Local, or with `--create-table`).
async fn build_history(
    args: &ServeArgs,
    config: &HistoryConfig,
) -> Result<Arc<dyn HistoryStore>, CliError> {
    match args.roster {
        RosterKind::Memory => Ok(Arc::new(MemoryHistoryStore::new(config.max_per_stream))),
        RosterKind::Dynamodb => {
            let dynamo = switchboard_aws::DynamoConfig::from_lookup(env)
                .map_err(|e| CliError::Config(e.to_string()))?;
            let client = switchboard_aws::dynamodb_client(&dynamo).await;
            if config.enabled() && (args.create_table || dynamo.endpoint.is_some()) {
                if let Err(e) = switchboard_aws::create_history_table(&client, &config.table).await
                {
                    if args.create_table {
                        return Err(CliError::Failed(format!(
                            "creating table {}: {e}",
                            config.table
                        )));
                    }
                    tracing::warn!(table = %config.table, error = %e, "could not ensure the history table exists");
                }
            }
            Ok(Arc::new(switchboard_aws::DynamoHistoryStore::new(
                client,
                config.table.clone(),
            )))
        }
    }
}

/// The receipt store (`None` with `RECEIPT_TTL_SECS=0`): in memory (bounded), or the
/// history table beside a DynamoDB roster, like history (docs/design.md: Receipts).
async fn build_receipts(
    args: &ServeArgs,
    config: &ReceiptConfig,
    history: &HistoryConfig,
) -> Result<Option<Receipts>, CliError> {
    if !config.enabled() {
        return Ok(None);
    }
    let store: Arc<dyn ReceiptStore> = match args.roster {
        RosterKind::Memory => Arc::new(MemoryReceiptStore::new(MAX_MEMORY_RECEIPTS)),
        RosterKind::Dynamodb => {
            let dynamo = switchboard_aws::DynamoConfig::from_lookup(env)
                .map_err(|e| CliError::Config(e.to_string()))?;
            let client = switchboard_aws::dynamodb_client(&dynamo).await;
            // With history on, `build_history` made the table already.
            if !history.enabled() && (args.create_table || dynamo.endpoint.is_some()) {
                if let Err(e) = switchboard_aws::create_history_table(&client, &history.table).await
                {
                    if args.create_table {
                        return Err(CliError::Failed(format!(
                            "creating table {}: {e}",
                            history.table
                        )));
                    }
                    tracing::warn!(table = %history.table, error = %e, "could not ensure the history table exists for receipts");
                }
            }
            Arc::new(switchboard_aws::DynamoReceiptStore::new(
                client,
                history.table.clone(),
            ))
        }
    };
    Ok(Receipts::new(store, config))
}

async fn build_roster(args: &ServeArgs) -> Result<Arc<dyn RosterStore>, CliError> {
    match args.roster {
        RosterKind::Memory => Ok(serve::memory_roster()),
        RosterKind::Dynamodb => {
            let config = switchboard_aws::DynamoConfig::from_lookup(env)
                .map_err(|e| CliError::Config(e.to_string()))?;
            let store = switchboard_aws::DynamoRosterStore::from_config(&config).await;
            // Against an endpoint override (DynamoDB Local) the table is made on demand;
            // against AWS it is infra/'s job unless asked for.
            if args.create_table || config.endpoint.is_some() {
                match switchboard_aws::create_table(store.client(), &config.table).await {
                    Ok(()) => {}
                    Err(e) if args.create_table => {
                        return Err(CliError::Failed(format!(
                            "creating table {}: {e}",
                            config.table
                        )))
                    }
                    // Not asked for: serve anyway; lookups fail (and messages are retried,
                    // then dead-lettered) until the table can be reached.
                    Err(e) => {
                        tracing::warn!(table = %config.table, error = %e, "could not ensure the roster table exists")
                    }
                }
            }
            Ok(Arc::new(store))
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn print_dev_banner(addr: SocketAddr, stage: &str, secret: &str) {
    let exe = std::env::current_exe()
        .ok()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "switchboard".into());
    let rule = "=".repeat(78);
    println!(
        "{rule}
DEV MODE (--dev): tokens are verified with this HS256 secret (random for this process
unless JWT_HS256_SECRET was set):
  export JWT_HS256_SECRET={secret}
Mint a token (same shell):
  export TOKEN=$({exe} token --tenant demo --user alice --role publisher)
Connect:   wscat -c \"ws://{addr}/{stage}?token=$TOKEN\"
Publish:   curl -i http://{addr}/v1/messages -H \"authorization: Bearer $TOKEN\" \\
             -H 'content-type: application/json' \\
             -d '{{\"target\":{{\"type\":\"users\",\"tenant\":\"demo\",\"users\":[\"alice\"]}},\"data\":{{\"hello\":\"world\"}}}}'
Demo page: http://{addr}/ (and POST /dev/token), from this machine only.
Never use dev mode in production: configure a key source and drop --dev.
{rule}"
    );
}

fn token_command(args: TokenArgs) -> Result<(), CliError> {
    // Minting with a short secret is allowed (a dev-mode server accepts it); a server
    // without --dev refuses such a secret at start-up.
    let config = AuthConfig::from_lookup_with(env, ShortSecret::Warn)
        .map_err(|e| CliError::Config(e.to_string()))?;
    let secret = config.hs256_secret().ok_or_else(|| {
        CliError::Config(
            "JWT_HS256_SECRET is not set: `switchboard token` signs with it (dev mode prints it at start-up)"
                .into(),
        )
    })?;
    let tenant =
        TenantId::parse(args.tenant).map_err(|e| CliError::Input(format!("--tenant: {e}")))?;
    let user = UserId::parse(args.user).map_err(|e| CliError::Input(format!("--user: {e}")))?;
    let token = mint_hs256_with(
        secret,
        &MintOptions::from_config(&config),
        &tenant,
        &user,
        &args.roles,
        args.ttl,
    );
    println!("{token}");
    Ok(())
}

fn build_envelope(args: &PublishArgs) -> Result<Envelope, CliError> {
    let value: Value = if let Some(text) = &args.envelope {
        serde_json::from_str(text)
            .map_err(|e| CliError::Input(format!("--envelope: not JSON ({e})")))?
    } else {
        let data: Value = serde_json::from_str(&args.data)
            .map_err(|e| CliError::Input(format!("--data: not JSON ({e})")))?;
        let target = match (&args.tenant, args.broadcast) {
            (_, true) => json!({"type": "broadcast"}),
            (Some(tenant), false) if !args.users.is_empty() => {
                json!({"type": "users", "tenant": tenant, "users": args.users})
            }
            (Some(tenant), false) if !args.connections.is_empty() => {
                json!({"type": "connections", "tenant": tenant, "connectionIds": args.connections})
            }
            (Some(tenant), false) => json!({"type": "tenant", "tenant": tenant}),
            (None, false) => return Err(CliError::Input(
                "give a target: --tenant [--user U | --connection C]..., --broadcast or --envelope"
                    .into(),
            )),
        };
        let mut envelope = json!({"target": target, "data": data});
        if let Some(id) = &args.id {
            envelope["id"] = json!(id);
        }
        envelope
    };
    Envelope::from_value(value).map_err(|e| CliError::Input(format!("invalid envelope: {e}")))
}

async fn publish_command(args: PublishArgs) -> Result<(), CliError> {
    let mut envelope = build_envelope(&args)?;
    if let Some(url) = &args.url {
        let token = args.token.as_deref().ok_or_else(|| {
            CliError::Input("--token (or SWITCHBOARD_TOKEN) is required with --url".into())
        })?;
        let response = reqwest::Client::new()
            .post(url)
            .bearer_auth(token)
            .json(&envelope)
            .send()
            .await
            .map_err(|e| CliError::Failed(format!("POST {url}: {e}")))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(CliError::Failed(format!("POST {url}: {status}: {body}")));
        }
        println!("{body}");
        return Ok(());
    }
    let queue_url = args
        .queue_url
        .clone()
        .ok_or_else(|| CliError::Input("give --url or --queue-url".into()))?;
    let id = envelope
        .id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    envelope.id = Some(id.clone());
    let body = serde_json::to_string(&envelope).map_err(|e| CliError::Failed(e.to_string()))?;
    let sdk = switchboard_aws::load_sdk_config(switchboard_aws::LocalDefaults::NONE).await;
    let queue = switchboard_aws::SqsQueue::from_sdk_config(&sdk, queue_url);
    queue
        .enqueue(&id, &body)
        .await
        .map_err(|e| CliError::Failed(format!("SQS send: {e}")))?;
    println!("{}", json!({ "id": id }));
    Ok(())
}
