//! The environment settings of `switchboard serve`: ONE table, the source of both README.md's
//! "Configuration" table (between `<!-- settings:begin -->` and `<!-- settings:end -->`) and
//! the list `switchboard serve --help` prints. To change a row, edit [`SETTINGS`] here, then
//! run `UPDATE_README=1 cargo test -p switchboard --lib cli::settings` to rewrite README's block;
//! without it that test fails while the two disagree. Cells are markdown, as README shows them.

use std::sync::OnceLock;

/// One row of the table: its three cells, verbatim markdown.
pub struct Setting {
    /// The variables and flags, e.g. `` `SWITCHBOARD_LISTEN` / `--listen` ``.
    pub names: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

/// Every setting, in README order.
pub const SETTINGS: &[Setting] = &[
    Setting {
        names: "`SWITCHBOARD_LISTEN` / `--listen`",
        default: "`127.0.0.1:8080`",
        meaning: "listen address (port 0: any free port, printed)",
    },
    Setting {
        names: "`SWITCHBOARD_STAGE` / `--stage`",
        default: "`main`",
        meaning: "WebSocket path and management API prefix",
    },
    Setting {
        names: "`SWITCHBOARD_MANAGEMENT_LISTEN` / `--management-listen`",
        default: "`127.0.0.1:8081`",
        meaning: "`@connections` listener (port 0: any free port, printed); keep it private",
    },
    Setting {
        names: "`MANAGEMENT_ACCESS_KEY_ID`, `MANAGEMENT_SECRET_ACCESS_KEY`",
        default: "unset: no authentication (loopback `--management-listen` only)",
        meaning: "both set: `@connections` requires SigV4 with these credentials; one alone, either set but empty, or a secret under 32 bytes is a start-up error naming the variable",
    },
    Setting {
        names: "`SWITCHBOARD_MANAGEMENT_HOSTS` / `--management-host`",
        default: "none",
        meaning: "with the credentials: `host[:port]` names (comma-separated) clients may sign requests for besides the listener's address (no port: the listener's); required when `--management-listen` is `0.0.0.0`/`[::]`",
    },
    Setting {
        names: "`SWITCHBOARD_MANAGEMENT_INSECURE` / `--management-insecure`",
        default: "`false`",
        meaning: "serve `@connections` without credentials on a non-loopback `--management-listen` (refused otherwise; logged as a warning): whoever reaches it can post to, read and close every connection",
    },
    Setting {
        names: "`SWITCHBOARD_ROSTER` / `--roster`",
        default: "`memory`",
        meaning: "`memory` or `dynamodb` (`--create-table` creates the roster and history tables if missing)",
    },
    Setting {
        names: "`ROSTER_TABLE`",
        default: "`SocketRoster`",
        meaning: "roster table name. Two `serve` processes may share one table without harm but are not a cluster: each delivers only to its own sockets (a message published to one never reaches the other's clients) and never removes the other's connections — connection ids start with a random 4-character tag per process, and only ids with its own tag are treated as gone (others are skipped and counted in `switchboard_foreign_connections_skipped_total`). Run one `serve` per table, or deploy to AWS for more",
    },
    Setting {
        names: "`DYNAMODB_ENDPOINT` / `AWS_ENDPOINT_URL_DYNAMODB`",
        default: "AWS default",
        meaning: "endpoint override (DynamoDB Local); `DYNAMODB_ENDPOINT` wins when both are set",
    },
    Setting {
        names: "`FANOUT_CONCURRENCY` / `--fanout-concurrency`",
        default: "`64`",
        meaning: "posts in flight per message",
    },
    Setting {
        names: "`SCAN_SEGMENTS`",
        default: "`4`",
        meaning: "broadcast chains: one per parallel scan segment (1–1,000)",
    },
    Setting {
        names: "`FANOUT_SHARD_SIZE`",
        default: "`1000`",
        meaning: "connections per roster page, so per work item, for `tenant` and `broadcast` targets (1–10,000)",
    },
    Setting {
        names: "`FANOUT_MAX_CONNECTIONS`",
        default: "`10000000`",
        meaning: "the most connections one tenant or broadcast is expected to reach (1–1,000,000,000): a chain of work items longer than `2 × ⌈FANOUT_MAX_CONNECTIONS / FANOUT_SHARD_SIZE⌉ + 20` hops is dead-lettered as a runaway (docs/design.md: Fan-out at any size)",
    },
    Setting {
        names: "`FANOUT_RATE`",
        default: "`0` (unlimited)",
        meaning: "posts per second of one publisher process, all messages together (token bucket)",
    },
    Setting {
        names: "`GONE_GRACE_SECS`",
        default: "`30`",
        meaning: "a `410` for a connection younger than this keeps its roster item (API Gateway answers 410 until the handshake completes)",
    },
    Setting {
        names: "`HISTORY_TTL_SECS`",
        default: "`300`",
        meaning: "how long messages are kept for `resume` (0–86,400; 0 turns history off)",
    },
    Setting {
        names: "`HISTORY_MAX_PER_STREAM`",
        default: "`1000`",
        meaning: "memory history: newest entries kept per stream (user, tenant, global)",
    },
    Setting {
        names: "`HISTORY_MAX_BYTES`",
        default: "`268435456` (256 MiB)",
        meaning: "memory history: bytes held at most (1 MiB–64 GiB), each frame counted once plus bookkeeping estimates; a tenant (or `*`, broadcasts) at its `TENANT_SHARE_PERCENT` of it evicts its own oldest entries, a full store the oldest of the tenant holding the most; resumes of that tenant from before them answer `complete:false`",
    },
    Setting {
        names: "`RESUME_MAX`",
        default: "`500`",
        meaning: "most messages one `resume` sends (1–10,000)",
    },
    Setting {
        names: "`RESUME_MAX_BYTES`",
        default: "`4194304` (4 MiB)",
        meaning: "most frame bytes one `resume` sends (128 KiB–256 MiB); beyond, `complete:false`",
    },
    Setting {
        names: "`HISTORY_TABLE`",
        default: "`SocketHistory`",
        meaning: "history table (DynamoDB roster and AWS); made on demand against DynamoDB Local or with `--create-table`; also holds the receipts",
    },
    Setting {
        names: "`RECEIPT_TTL_SECS`",
        default: "`86400`",
        meaning: "how long delivery receipts are kept, and so how long a repeated `id` is recognised (0–604,800; 0 turns receipts and idempotent publish off). Memory (at most `RECEIPT_CAPACITY`) or, with `--roster dynamodb` and on AWS, the history table",
    },
    Setting {
        names: "`RECEIPT_CAPACITY`",
        default: "`100000`",
        meaning: "`serve` with the memory roster: receipts held at most (1–10,000,000); a tenant (or `*`, broadcasts) at its `TENANT_SHARE_PERCENT` of them evicts its own oldest, a full store the oldest of the tenant holding the most (docs/design.md: Receipts)",
    },
    Setting {
        names: "`USAGE_RETENTION_DAYS`",
        default: "`35`",
        meaning: "how long usage per tenant per minute is kept, and the longest `from`–`to` range of `GET /v1/tenants/{t}/usage` (1–400). Memory (at most 200,000 minute buckets, a tenant's `TENANT_SHARE_PERCENT` of them) or, with `--roster dynamodb` and on AWS, the history table (docs/design.md: Usage)",
    },
    Setting {
        names: "`VAPID_PUBLIC_KEY`, `VAPID_PRIVATE_KEY`, `VAPID_SUBJECT`",
        default: "unset: Web Push off",
        meaning: "Web Push (docs/design.md: Web Push): the key pair as `switchboard vapid-keys` prints it (the 65-byte uncompressed P-256 public point and the 32-byte private scalar, base64url) and a `mailto:` or `https:` contact for push services. All three or none: one or two set, a public key that is not the private key's, or another subject is a start-up error naming the variable. Off: a publish with `push` is refused (400) and `/v1/push/*` answers 404",
    },
    Setting {
        names: "`PUSH_MAX_DEVICES_PER_USER`",
        default: "`10`",
        meaning: "devices (browser push subscriptions) one user may register (1–100); one more replaces the user's oldest",
    },
    Setting {
        names: "`PUSH_DEVICE_TTL_DAYS`",
        default: "`60`",
        meaning: "a device not registered again for this long is gone (1–365). Memory or, with `--roster dynamodb` and on AWS, the history table",
    },
    Setting {
        names: "`PUSH_CONCURRENCY_PER_SERVICE`",
        default: "`50`",
        meaning: "pushes in flight to one push service (endpoint origin) (1–1,000)",
    },
    Setting {
        names: "`PUSH_TIMEOUT_SECS`",
        default: "`10`",
        meaning: "longest push request, connect to last byte (1–60); a timeout is retried",
    },
    Setting {
        names: "`SSL_CERT_FILE`",
        default: "unset: the system roots",
        meaning: "PEM certificates the push client trusts besides the system roots",
    },
    Setting {
        names: "`WEBHOOK_URL`",
        default: "unset: no global endpoint",
        meaning: "events (`user.online`, `user.offline`, `message.settled`; docs/design.md: Events) are POSTed here as signed webhooks (Standard Webhooks); `https` only (with `--dev`, `http` to a loopback host too). With `WEBHOOK_SECRET`: both or neither. Events are on iff this or `WEBHOOK_FILE` is set",
    },
    Setting {
        names: "`WEBHOOK_SECRET`",
        default: "unset: no global endpoint",
        meaning: "the key deliveries to `WEBHOOK_URL` are signed with: `whsec_` + standard base64 of 24–64 random bytes; a short or malformed secret is a start-up error",
    },
    Setting {
        names: "`WEBHOOK_FILE`",
        default: "unset: no tenant endpoints",
        meaning: "a JSON file `{\"tenants\":{\"<tenant>\":{\"url\",\"secret\"}}}`: a tenant's own endpoint, over `WEBHOOK_URL`; validated whole at start (an unknown key, a bad tenant id, a tenant `TENANTS_FILE` does not list when it is set, a bad URL or secret is refused naming the entry, e.g. `tenants.acme.secret`)",
    },
    Setting {
        names: "`WEBHOOK_RETRY_HOURS`",
        default: "`24`",
        meaning: "a delivery failing (not 2xx, a timeout) is retried with backoff and jitter until this long after its event was created (1–72), then dropped and counted; `410` disables the endpoint until restart",
    },
    Setting {
        names: "`WEBHOOK_QUEUE_CAPACITY`",
        default: "`100000`",
        meaning: "events waiting or in flight, all endpoints together (1–1,000,000; also bounded in bytes), a tenant at most its `TENANT_SHARE_PERCENT`; beyond, events are dropped and counted, never delaying delivery of messages",
    },
    Setting {
        names: "`WEBHOOK_TIMEOUT_SECS`",
        default: "`10`",
        meaning: "longest delivery, connect to answer (1–60); a timeout is retried",
    },
    Setting {
        names: "`EVENTS_OFFLINE_DELAY_SECS`",
        default: "`3`",
        meaning: "`user.offline` only after a user has had no connection this long, and only if none came back meanwhile (0–900); also the AWS events function's SQS delay. With `--roster dynamodb` the connections of a `serve` that died are removed by another within about 20 s (leases), ending in `user.offline` as usual",
    },
    Setting {
        names: "`LEGACY_BROADCAST` / `--legacy-broadcast`",
        default: "`false`",
        meaning: "SQS bodies that are not JSON objects (plain text, arrays, numbers) go verbatim to every connection; a JSON object that is not a valid envelope is dead-lettered",
    },
    Setting {
        names: "`CONNECTION_TTL_SECS` / `--connection-ttl-secs`",
        default: "`7500`",
        meaning: "roster item lifetime (`expiresAt`), 1 s to 1 year; locally a socket is closed (1001) at 2 h, as API Gateway does, or at this lifetime if shorter",
    },
    Setting {
        names: "`--dev`",
        default: "off",
        meaning: "dev mode: demo page and `/dev/token` (loopback only), whose tokens only this process accepts (random HS256 secret when no key source is set; beside one, a random key under the issuer `urn:switchboard:dev`)",
    },
    Setting {
        names: "`JWT_HS256_SECRET` / `JWT_JWKS_FILE` / `JWT_JWKS_URL` / `JWT_ISSUERS_FILE`",
        default: "none: start-up error (unless `--dev`)",
        meaning: "exactly one key source; HS256 secret ≥ 32 bytes (shorter: refused, a warning with `--dev`); set-but-empty is an error; JWKS keys RS256/ES256",
    },
    Setting {
        names: "`JWT_ISSUERS_FILE`",
        default: "—",
        meaning: "one identity provider per entry: keys, audience, tenants, claim names, admin scope ([below](#identity-per-issuer)); replaces `JWT_ISSUER`/`JWT_AUDIENCE` (setting those too is a start-up error)",
    },
    Setting {
        names: "`JWT_ISSUER`, `JWT_AUDIENCE`",
        default: "unset: not checked",
        meaning: "required `iss` / `aud` when set (single key source)",
    },
    Setting {
        names: "`JWT_LEEWAY_SECS`",
        default: "`30`",
        meaning: "clock skew allowed on `exp`/`nbf`; also how long past its token's `exp` the publisher still serves a connection (0–3600)",
    },
    Setting {
        names: "`TENANT_CLAIM`, `ROLES_CLAIM`",
        default: "`tenant`, `roles`",
        meaning: "claim names (e.g. `custom:tenant_id`); roles as array or space-separated; the default for issuers without `tenantClaim`/`rolesClaim`",
    },
    Setting {
        names: "`CALLBACK_URL`, `QUEUE_URL`, `DLQ_URL`",
        default: "—",
        meaning: "Lambdas: management API base URL, SQS queue, dead-letter queue",
    },
    Setting {
        names: "`EVENT_BUS_NAME`, `EVENTS_QUEUE_URL`",
        default: "unset: no events on AWS",
        meaning: "Lambdas: the EventBridge bus (name or ARN) the events function and the publisher put `user.online`, `user.offline` and `message.settled` on (docs/design.md: Events), and the queue of the events function's delayed offline checks; the events function needs both, and `ROSTER_TABLE` and `HISTORY_TABLE` set (no default there); it also reads `EVENTS_OFFLINE_DELAY_SECS`",
    },
    Setting {
        names: "`SWITCHBOARD_TOKEN` / `switchboard publish --token`",
        default: "—",
        meaning: "bearer token `switchboard publish` sends to a publish API URL (`--url`); with `QUEUE_URL` it sends to SQS instead",
    },
    Setting {
        names: "`RUST_LOG`",
        default: "`info`",
        meaning: "log filter",
    },
    Setting {
        names: "`METRICS_NAMESPACE`",
        default: "`Switchboard`",
        meaning: "Lambdas (publisher, publish-api): CloudWatch namespace of their EMF metric lines (`infra/README.md`, Metrics)",
    },
    Setting {
        names: "`METRICS_TENANTS`",
        default: "empty",
        meaning: "Lambdas (publisher, publish-api): at most 20 comma-separated ASCII tenant ids whose EMF documents add the dimension set `[Target, Tenant]`; each listed tenant is billed as up to 90 custom metrics (`infra/README.md`, Metrics)",
    },
    Setting {
        names: "`QUEUE_CAPACITY` / `--queue-capacity`",
        default: "`100000`",
        meaning: "messages the in-process queue holds (waiting, delayed, in flight); beyond, publishes get 503 + `Retry-After`; a tenant (or `*`, broadcasts) holding its `TENANT_SHARE_PERCENT` of it gets 503 while others are accepted",
    },
    Setting {
        names: "`DEAD_LETTER_CAPACITY` / `--dead-letter-capacity`",
        default: "`10000`",
        meaning: "dead letters kept; a tenant at its `TENANT_SHARE_PERCENT` of them drops its own oldest, a full list the oldest of the tenant holding the most (counted)",
    },
    Setting {
        names: "`TENANT_SHARE_PERCENT` / `--tenant-share-percent`",
        default: "`25`",
        meaning: "percent (1–100) of each shared bound of `serve` one tenant (or `*`) may hold, at least one entry: `QUEUE_CAPACITY`, `DEAD_LETTER_CAPACITY`, `MAX_CONNECTIONS`, the memory receipt store, `HISTORY_MAX_BYTES` (docs/design.md: Tenants, \"Shares of shared bounds\")",
    },
    Setting {
        names: "`QUEUE_FAIRNESS` / `--queue-fairness`",
        default: "`true`",
        meaning: "the in-process queue serves tenants in turns, one message each (a tenant's backlog delays only that tenant); `false`: accepted order across tenants (for comparison runs)",
    },
    Setting {
        names: "`MAX_CONNECTIONS` / `--max-connections`",
        default: "`100000`",
        meaning: "live sockets; beyond, handshakes get 503; a tenant holding its `TENANT_SHARE_PERCENT` of them gets 429 while others connect",
    },
    Setting {
        names: "`MAX_CONNECTIONS_PER_USER` / `--max-connections-per-user`",
        default: "`100`",
        meaning: "live sockets of one tenant's user; beyond, handshakes get 429",
    },
    Setting {
        names: "`TENANTS_FILE` / `--tenants-file`",
        default: "unset: no tenant limits",
        meaning: "per-tenant limits ([below](#tenant-settings)); `serve` re-reads it when it changes (every 2 s)",
    },
    Setting {
        names: "`HEADER_READ_TIMEOUT_SECS` / `--header-read-timeout-secs`",
        default: "`30`",
        meaning: "time a connection has, on either listener, to send a request's complete headers after connecting or after its previous answer (1–3600); one that sends nothing, too little or an HTTP/2 preface is closed",
    },
    Setting {
        names: "`REQUEST_TIMEOUT_SECS` / `--request-timeout-secs`",
        default: "`30`",
        meaning: "time from a request's headers to its answer, reading its body included (1–3600); beyond, 408 and the connection is closed",
    },
    Setting {
        names: "`LISTENER_MAX_CONNECTIONS` / `--listener-max-connections`",
        default: "`10000`",
        meaning: "open HTTP connections per listener (a WebSocket leaves this count once upgraded: `MAX_CONNECTIONS` bounds those); beyond, a new connection is closed at once",
    },
    Setting {
        names: "`LISTENER_MAX_CONNECTIONS_PER_ADDRESS` / `--listener-max-connections-per-address`",
        default: "`1000`",
        meaning: "the same per peer address; behind a proxy every client has the proxy's address: raise it up to `LISTENER_MAX_CONNECTIONS`",
    },
    Setting {
        names: "`SEND_TIMEOUT_SECS` / `--send-timeout-secs`",
        default: "`10`",
        meaning: "longest write to one client; a client that does not read is closed (1008) and treated as gone",
    },
    Setting {
        names: "`IDLE_TIMEOUT_SECS` / `--idle-timeout-secs`",
        default: "`600`",
        meaning: "a socket without a client message this long is closed (1001), as API Gateway does; WebSocket control ping/pong frames do not count (API Gateway does not see them); the client library sends a `ping` action every 9 minutes",
    },
    Setting {
        names: "`ACTIONS_PER_SECOND` / `--actions-per-second`, `ACTION_BURST` / `--action-burst`",
        default: "`10`, `20`",
        meaning: "each socket's allowance of client frames (a token bucket: this rate on average, the burst at once; WebSocket pings and pongs are free); a socket past it is closed with 1008 and counted in `switchboard_connections_closed_total{reason=\"action_rate\"}`",
    },
    Setting {
        names: "`--visibility-timeout` (≤ 12h), `--max-receives`, `--drain-timeout` (≤ 1h)",
        default: "`5s`, `5`, `10s`",
        meaning: "local queue redelivery delay, receives before dead-lettering, shutdown drain bound",
    },
];

/// README.md's configuration table, exactly: a header row and one row per setting.
pub fn markdown_table() -> String {
    let mut table = String::from("| variable | default | meaning |\n|---|---|---|\n");
    for setting in SETTINGS {
        table.push_str(&format!(
            "| {} | {} | {} |\n",
            setting.names, setting.default, setting.meaning
        ));
    }
    table
}

/// Width of [`help`]'s lines (the meanings are wrapped to it).
const HELP_WIDTH: usize = 80;
/// Indent of a meaning under its names.
const HELP_INDENT: &str = "      ";

/// The settings as plain text, for `switchboard serve --help`: per setting its names and
/// default on one line, its meaning wrapped below.
pub fn help() -> String {
    let mut text = String::from(
        "Environment settings (README.md: Configuration); a flag given overrides its variable:\n",
    );
    for setting in SETTINGS {
        text.push_str(&format!(
            "\n  {}  (default: {})\n",
            plain(setting.names),
            plain(setting.default)
        ));
        let mut line = String::new();
        for word in plain(setting.meaning).split_whitespace() {
            let width = HELP_INDENT.len() + line.chars().count() + 1 + word.chars().count();
            if !line.is_empty() && width > HELP_WIDTH {
                text.push_str(&format!("{HELP_INDENT}{line}\n"));
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        text.push_str(&format!("{HELP_INDENT}{line}\n"));
    }
    text
}

/// The code spans of a cell: `` `A` / `--a`, `B` `` → `["A", "--a", "B"]`.
fn code_spans(cell: &str) -> impl Iterator<Item = &str> {
    cell.split('`').skip(1).step_by(2)
}

/// A cell's top-level parts separated by `, ` (outside code spans and parentheses).
fn parts(cell: &str) -> Vec<&str> {
    let (mut parts, mut start, mut code, mut depth) = (Vec::new(), 0, false, 0usize);
    for (at, c) in cell.char_indices() {
        match c {
            '`' => code = !code,
            '(' if !code => depth += 1,
            ')' if !code => depth = depth.saturating_sub(1),
            ',' if !code && depth == 0 && cell[at..].starts_with(", ") => {
                parts.push(&cell[start..at]);
                start = at + 2;
            }
            _ => {}
        }
    }
    parts.push(&cell[start..]);
    parts
}

/// Markdown to plain text: code spans lose their backticks, links keep their text.
fn plain(markdown: &str) -> String {
    let mut text = String::with_capacity(markdown.len());
    let mut rest = markdown;
    while let Some(open) = rest.find('[') {
        let link = rest[open..].find("](").and_then(|close| {
            let target = open + close + 2;
            rest[target..]
                .find(')')
                .map(|end| (open + close, target + end))
        });
        match link {
            Some((close, end)) => {
                text.push_str(&rest[..open]);
                text.push_str(&rest[open + 1..close]);
                rest = &rest[end + 1..];
            }
            None => {
                text.push_str(&rest[..=open]);
                rest = &rest[open + 1..];
            }
        }
    }
    text.push_str(rest);
    text.replace('`', "")
}

/// The default of the setting named `variable` (a variable or a flag, e.g.
/// `RECEIPT_TTL_SECS` or `--listen`) as plain text, e.g. `86400`; for a row naming several
/// settings with as many defaults (`TENANT_CLAIM`, `ROLES_CLAIM` | `tenant`, `roles`), its own.
pub fn default_of(variable: &str) -> Option<&'static str> {
    /// Per group of names (`A` / `--a`), its names and plain default.
    static DEFAULTS: OnceLock<Vec<(Vec<&'static str>, String)>> = OnceLock::new();
    DEFAULTS
        .get_or_init(|| {
            SETTINGS
                .iter()
                .flat_map(|setting| {
                    let groups = parts(setting.names);
                    let defaults = parts(setting.default);
                    let own = defaults.len() == groups.len();
                    groups.into_iter().enumerate().map(move |(i, group)| {
                        let default = match defaults.get(i) {
                            Some(default) if own => default,
                            _ => setting.default,
                        };
                        (code_spans(group).collect(), plain(default))
                    })
                })
                .collect()
        })
        .iter()
        .find(|(names, _)| names.contains(&variable))
        .map(|(_, default)| default.as_str())
}

#[cfg(test)]
mod tests;
