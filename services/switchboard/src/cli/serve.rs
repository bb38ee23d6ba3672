//! `switchboard serve`: its flags, the settings they and the environment make, start-up.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser};
use switchboard_core::auth::{AuthConfig, DevMint, KeySource, ShortSecret, DEV_ISSUER};
use switchboard_core::connection::ConnectConfig;
use switchboard_core::history::HistoryConfig;
use switchboard_core::publisher::PublisherConfig;
use switchboard_core::receipts::ReceiptConfig;
use switchboard_core::tenants::{share_of, Tenants};
use switchboard_core::usage::UsageConfig;

mod events;
mod management;
mod push;
mod stores;

use super::refusal::{self, Refusal};
use super::{CliError, Env};
use crate::serve::ListenerLimits;
use crate::serve::{
    self, ActionAllowance, ConnectionLimits, EventSettings, QueueConfig, RosterKind, ServeSettings,
    Server, SocketLimits,
};

#[derive(Args)]
pub struct ServeArgs {
    /// Dev mode: serve the demo page and /dev/token (loopback only), whose tokens only this
    /// process accepts: without a JWT key source, signed with a random secret that is also
    /// the key source; beside one, with a random key under the issuer urn:switchboard:dev.
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
    /// Run the management API without credentials on a --management-listen that is not
    /// loopback (refused otherwise): whoever reaches it can post to, read and close every
    /// connection. Logged as a warning at start.
    #[arg(
        long,
        env = "SWITCHBOARD_MANAGEMENT_INSECURE",
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value_t = false,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    management_insecure: bool,
    /// With management credentials: a `host` or `host:port` clients sign management
    /// requests for, besides the listener's own address (a name without a port gets the
    /// listener's). Repeat the flag, or separate with commas.
    #[arg(
        long = "management-host",
        env = "SWITCHBOARD_MANAGEMENT_HOSTS",
        value_delimiter = ','
    )]
    management_hosts: Vec<String>,
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
    /// Client frames (actions) a socket may send per second on average; a socket beyond
    /// its allowance (this rate, ACTION_BURST at once) is closed (1008).
    #[arg(long, env = "ACTIONS_PER_SECOND", default_value_t = serve::DEFAULT_ACTIONS_PER_SECOND, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    actions_per_second: u32,
    /// Client frames a socket may send at once (the token bucket's size).
    #[arg(long, env = "ACTION_BURST", default_value_t = serve::DEFAULT_ACTION_BURST, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    action_burst: u32,
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
    /// Serve tenants in turns from the in-process queue (false: in accepted order, one
    /// tenant's backlog delaying every other tenant's messages).
    #[arg(
        long,
        env = "QUEUE_FAIRNESS",
        action = clap::ArgAction::Set,
        default_value_t = true,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    queue_fairness: bool,
    /// Percent of each shared bound (QUEUE_CAPACITY, DEAD_LETTER_CAPACITY, ...) one tenant
    /// (or `*`, broadcasts) may hold, at least 1 entry.
    #[arg(long = "tenant-share-percent", env = "TENANT_SHARE_PERCENT", default_value_t = 25, value_parser = clap::value_parser!(u8).range(1..=100))]
    share_percent: u8,
    /// Tenant settings: a JSON file `{"defaults":{…},"tenants":{"<tenant>":{…}}}` of
    /// per-tenant limits (docs/design.md: Tenants), validated at start and re-read when it
    /// changes. Unset: no tenant limits beyond the process-wide ones.
    #[arg(long, env = "TENANTS_FILE")]
    tenants_file: Option<String>,
    /// Seconds a client may take to send a request's headers, from connecting or from the
    /// previous answer (a connection that sends nothing or too little is closed).
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_read_timeout_secs: u64,
    /// Seconds from a request's headers to its answer, reading its body included (408 beyond).
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    request_timeout_secs: u64,
    /// Open HTTP connections per listener (a WebSocket leaves the count once upgraded);
    /// beyond, a new connection is closed at once.
    #[arg(long, env = "LISTENER_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    listener_max_connections: u64,
    /// Open HTTP connections per listener from one peer address; beyond, closed at once.
    #[arg(long, env = "LISTENER_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    listener_max_connections_per_address: u64,
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

/// The binary's `serve`: starts, prints where it listens, runs until SIGTERM or Ctrl-C.
pub(super) async fn serve_command(args: ServeArgs) -> Result<(), CliError> {
    // Installed before the address is printed, so a signal right after start-up is handled.
    let signal = serve::ShutdownSignal::install();
    warn_if_few_open_files(&args, serve::raise_open_files_limit());
    let started = start(args, &Env::Process).await?;
    started.announce();
    started.server.run_until_signal(signal).await;
    Ok(())
}

/// Every WebSocket and every HTTP connection holds a descriptor: below
/// `MAX_CONNECTIONS + 2 × LISTENER_MAX_CONNECTIONS` (and a margin for files and clients),
/// new connections would wait in the kernel's backlog instead of being answered or refused.
fn warn_if_few_open_files(args: &ServeArgs, open_files: Option<u64>) {
    let wanted = args
        .max_connections
        .saturating_add(args.listener_max_connections.saturating_mul(2))
        .saturating_add(256);
    if let Some(limit) = open_files.filter(|limit| *limit < wanted) {
        tracing::warn!(
            open_files = limit,
            wanted,
            "the open-files limit is below MAX_CONNECTIONS + 2 × LISTENER_MAX_CONNECTIONS + 256: \
             raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower those settings"
        );
    }
}

/// `serve` flags parsed on their own (for [`start_in_process`]).
#[derive(Parser)]
#[command(name = "serve")]
struct ServeOnly {
    #[command(flatten)]
    args: ServeArgs,
}

/// Starts a server in this process as `switchboard serve <args>` would start with exactly the
/// variables `vars` (the process environment is not read; a flag's variable in `vars` applies
/// unless the flag is given). Tests run many such servers in one process.
pub async fn start_in_process(
    args: &[&str],
    vars: std::collections::HashMap<String, String>,
) -> Result<Server, CliError> {
    let env = Env::Map(Arc::new(vars));
    let mut argv: Vec<String> = vec!["serve".into()];
    argv.extend(args.iter().map(|a| a.to_string()));
    for arg in ServeOnly::command().get_arguments() {
        let (Some(long), Some(variable)) = (arg.get_long(), arg.get_env()) else {
            continue;
        };
        let flag = format!("--{long}");
        let given = args
            .iter()
            .any(|a| *a == flag || a.starts_with(&format!("{flag}=")));
        if let (false, Some(value)) = (given, variable.to_str().and_then(|v| env.get(v))) {
            argv.push(format!("{flag}={value}"));
        }
    }
    let parsed = ServeOnly::try_parse_from(&argv)
        .map_err(|e| super::refusal::from_clap(&e, &ServeOnly::command(), &argv))?;
    Ok(start(parsed.args, &env).await?.server)
}

/// A started server and what `serve` prints about it.
struct Started {
    server: Server,
    stage: String,
    roster: RosterKind,
    dev: Option<DevMint>,
    signed_management: bool,
}

impl Started {
    /// Prints the addresses (tests and scripts read them) and, in dev mode, the banner.
    fn announce(&self) {
        let addr = self.server.addr;
        println!(
            "switchboard listening on http://{addr} (WebSocket ws://{addr}/{})",
            self.stage
        );
        println!(
            "switchboard management API on http://{}/{}/@connections ({})",
            self.server.management_addr,
            self.stage,
            if self.signed_management {
                "SigV4 required"
            } else {
                "no authentication: keep it on loopback or a private network"
            }
        );
        if let Some(dev) = &self.dev {
            print_dev_banner(addr, &self.stage, dev);
        }
        tracing::info!(%addr, stage = %self.stage, roster = ?self.roster, "serving");
    }
}

/// Validates the flags and variables, builds the stores and starts the server.
async fn start(args: ServeArgs, env: &Env) -> Result<Started, CliError> {
    if !valid_stage(&args.stage) {
        return Err(Refusal::new(
            "--stage (SWITCHBOARD_STAGE)",
            format!("{:?} is not a stage name", args.stage),
            "use 1 to 128 letters, digits, '-' and '_' (default: main)",
        )
        .into());
    }
    if args.listen == args.management_listen && args.listen.port() != 0 {
        return Err(Refusal::new(
            "--management-listen (SWITCHBOARD_MANAGEMENT_LISTEN)",
            format!("{} is also --listen", args.management_listen),
            "give the management API its own port, or 0 (any free port; the address is printed)",
        )
        .into());
    }
    let lookup = |name: &str| match name {
        "FANOUT_CONCURRENCY" => args.fanout_concurrency.clone(),
        "LEGACY_BROADCAST" => args.legacy_broadcast.clone(),
        "CONNECTION_TTL_SECS" => args.connection_ttl_secs.clone(),
        other => env.get(other),
    };
    let publisher = PublisherConfig::from_lookup(lookup).map_err(Refusal::from)?;
    let connect = ConnectConfig::from_lookup(lookup).map_err(Refusal::from)?;
    let (auth, dev) = auth_settings(&args, env)?;
    let history_config = HistoryConfig::from_lookup(lookup).map_err(Refusal::from)?;
    let receipt_config = ReceiptConfig::from_lookup(lookup).map_err(Refusal::from)?;
    let usage_config = UsageConfig::from_lookup(lookup).map_err(Refusal::from)?;
    let push_config = push::config(lookup, args.dev)?;
    let tenants = Tenants::from_lookup(|name| match name {
        "TENANTS_FILE" => args.tenants_file.clone(),
        _ => None,
    })
    .map_err(Refusal::from)?;
    let events = events::config(lookup, args.dev, &tenants)?;
    let stores = stores::build(
        &args,
        env,
        stores::StoreConfigs {
            history: &history_config,
            receipts: &receipt_config,
            usage: &usage_config,
            events: events.is_some(),
        },
    )
    .await?;
    let push = push::web_push(push_config, stores.devices.clone())?;
    let management_credentials = management::credentials(&args, env)?;
    let key_source = refusal::key_source_variable(&auth.keys);
    let events = match (events, stores.online) {
        (Some(events), Some(online)) => Some(EventSettings {
            webhooks: events.webhooks,
            offline_delay: events.offline_delay,
            online,
            leases: stores.leases,
            max_pending_checks: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        }),
        _ => None,
    };
    let settings = ServeSettings {
        listen: args.listen,
        management_listen: args.management_listen,
        management_credentials: management_credentials.clone(),
        stage: args.stage.clone(),
        roster: stores.roster,
        history: stores.history,
        history_config,
        receipts: stores.receipts,
        auth,
        dev: dev.clone(),
        connect,
        limits: SocketLimits {
            send_timeout: Duration::from_secs(args.send_timeout_secs),
            idle_timeout: Duration::from_secs(args.idle_timeout_secs),
            actions: ActionAllowance {
                per_second: NonZeroU32::new(args.actions_per_second)
                    .unwrap_or(ActionAllowance::default().per_second),
                burst: NonZeroU32::new(args.action_burst)
                    .unwrap_or(ActionAllowance::default().burst),
            },
        },
        connection_limits: ConnectionLimits {
            max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
            max_per_user: usize::try_from(args.max_connections_per_user).unwrap_or(usize::MAX),
            tenant_share: share_of(
                usize::try_from(args.max_connections).unwrap_or(usize::MAX),
                args.share_percent,
            ),
        },
        publisher,
        queue: QueueConfig {
            visibility_timeout: args.visibility_timeout,
            max_receives: args.max_receives,
            capacity: usize::try_from(args.queue_capacity).unwrap_or(usize::MAX),
            dead_letter_capacity: usize::try_from(args.dead_letter_capacity).unwrap_or(usize::MAX),
            share_percent: args.share_percent,
            fairness: args.queue_fairness,
            ..QueueConfig::default()
        },
        drain_timeout: args.drain_timeout,
        listener_limits: ListenerLimits {
            header_read_timeout: Duration::from_secs(args.header_read_timeout_secs),
            request_timeout: Duration::from_secs(args.request_timeout_secs),
            max_connections: usize::try_from(args.listener_max_connections).unwrap_or(usize::MAX),
            max_per_address: usize::try_from(args.listener_max_connections_per_address)
                .unwrap_or(usize::MAX),
        },
        tenants,
        usage: stores.usage,
        push,
        events,
    };
    let server = Server::start(settings)
        .await
        .map_err(|e| refusal::not_started(e, (args.listen, args.management_listen), key_source))?;
    Ok(Started {
        server,
        stage: args.stage,
        roster: args.roster,
        dev,
        signed_management: management_credentials.is_some(),
    })
}

/// The identity settings of `serve` and, in dev mode, what `/dev/token` signs with: a
/// random key of this process, so its tokens are valid here only (docs/design.md: The
/// one-machine binary). Dev mode is only ever explicit (`--dev`) and only on a loopback
/// `--listen`.
fn auth_settings(args: &ServeArgs, env: &Env) -> Result<(AuthConfig, Option<DevMint>), CliError> {
    let short_secret = if args.dev {
        ShortSecret::Warn
    } else {
        ShortSecret::Refuse
    };
    let auth = AuthConfig::from_lookup_with(|name: &str| env.get(name), short_secret)
        .map_err(Refusal::from)?;
    if !args.dev {
        if !auth.has_key_source() {
            return Err(Refusal::no_key_source().into());
        }
        return Ok((auth, None));
    }
    if !args.listen.ip().is_loopback() {
        return Err(Refusal::new(
            "--dev",
            format!(
                "mints admin tokens for anyone who asks: it only runs on a loopback --listen, \
                 not {}",
                args.listen
            ),
            "listen on 127.0.0.1 or [::1] (e.g. --listen 127.0.0.1:8080), or drop --dev and \
             set a JWT key source",
        )
        .into());
    }
    let secret: [u8; 32] = rand::random();
    let secret = hex::encode(secret).into_bytes();
    // Beside a configured key source, dev tokens never use it: a secret shared with other
    // instances would make `/dev/token` a global-admin mint for all of them.
    let (auth, dev) = match &auth.keys {
        KeySource::None => DevMint::sole_key(auth, secret),
        _ => DevMint::beside(auth, secret).map_err(Refusal::from)?,
    };
    Ok((auth, Some(dev)))
}

fn print_dev_banner(addr: SocketAddr, stage: &str, dev: &DevMint) {
    let rule = "=".repeat(78);
    if dev.is_beside_a_key_source() {
        println!(
            "{rule}
DEV MODE (--dev): tokens of the configured key source are verified as usual. The demo
page http://{addr}/ and POST /dev/token (from this machine only) mint tokens signed with
a key made for this process (issuer {DEV_ISSUER}): no other process accepts them.
Never use dev mode in production: drop --dev.
{rule}"
        );
        return;
    }
    let secret = String::from_utf8_lossy(dev.secret.as_bytes());
    let exe = std::env::current_exe()
        .ok()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "switchboard".into());
    println!(
        "{rule}
DEV MODE (--dev): tokens are verified with this HS256 secret (random for this process):
  export JWT_HS256_SECRET={secret}
Mint a token (same shell):
  export TOKEN=$({exe} token --tenant demo --user alice --role publisher)
Connect:   npx --yes wscat -c \"ws://{addr}/{stage}?token=$TOKEN\"
Publish:   curl -i http://{addr}/v1/messages -H \"authorization: Bearer $TOKEN\" \\
             -H 'content-type: application/json' \\
             -d '{{\"target\":{{\"type\":\"users\",\"tenant\":\"demo\",\"users\":[\"alice\"]}},\"data\":{{\"hello\":\"world\"}}}}'
Demo page: http://{addr}/ (and POST /dev/token), from this machine only.
Walkthrough: README.md, \"Try it\".
Never use dev mode in production: configure a key source and drop --dev.
{rule}"
    );
}
