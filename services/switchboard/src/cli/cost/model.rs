//! The cost model: what one month of a deployment does (requests, invocations, write and
//! read units, bytes), counted as the code does it today, then priced with `prices.json`.
//!
//! Every count names where it comes from. Figures the code does not fix (how long an
//! invocation runs, how many bytes a log line has, how full an SQS batch is) are constants
//! here, marked *assumed*. One connection is one user (each user holds one socket).

use super::prices::Prices;

/// Days in the month the model prices (365 / 12, rounded as AWS's calculator does).
pub const MONTH_DAYS: f64 = 30.4;
/// The target per always-on connection-month, about 1.2 × the floor.
pub const GOAL_PER_CONNECTION: f64 = 0.025;
/// The previous design's keep-alive: the client pinged every 4 minutes (`keepAliveMs`
/// 240,000 in clients/js/src/client.ts before issue 21) and each ping invoked `default`.
pub const PREVIOUS_PING_MINUTES: f64 = 4.0;

/// X-Ray's default sampling rule: the first request each second, then 5 % of the rest.
const XRAY_RESERVOIR_PER_SECOND: f64 = 1.0;
const XRAY_RATE: f64 = 0.05;

/// WebSocket messages are metered in 32 KB units (API Gateway pricing).
const WEBSOCKET_UNIT_BYTES: f64 = 32.0 * 1024.0;
/// SQS bills each 64 KB chunk of a payload as one request; EventBridge each 64 KB of an event.
const CHUNK_64K: f64 = 64.0 * 1024.0;
/// A DynamoDB write unit covers 1 KB of the item written.
const WRITE_UNIT_BYTES: f64 = 1024.0;

/// A frame's bytes beyond the caller's data: `{"id","cursor","data"}` (model/src: the frame).
const FRAME_OVERHEAD_BYTES: f64 = 120.0;
/// A history item beyond its frame: keys, cursor, id, `expiresAt` (aws/src/dynamo/history.rs).
const HISTORY_ITEM_OVERHEAD_BYTES: f64 = 150.0;
/// A receipt item (aws/src/dynamo/receipts.rs): its counts, status, target; ~40 bytes a user named.
const RECEIPT_ITEM_BYTES: f64 = 400.0;
const RECEIPT_BYTES_PER_USER: f64 = 40.0;
/// A roster item (aws/src/dynamo/item.rs), stored twice: table and the `byUser` index (ALL).
const ROSTER_ITEM_BYTES: f64 = 500.0;
/// A work-log item (aws/src/dynamo/worklog.rs), kept a day after it is done (`DONE_RETENTION`).
const WORKLOG_ITEM_BYTES: f64 = 150.0;
/// An event on the bus (core/src/events/event.rs): envelope plus `detail`, assumed.
const EVENT_BYTES: f64 = 1_000.0;

/// Lambda's own lines per invocation (START, END, REPORT, with CloudWatch's 26 bytes per
/// event metered on top), assumed; with active tracing REPORT adds an `XRAY TraceId` line.
const PLATFORM_LOG_BYTES: f64 = 340.0;
const XRAY_LOG_BYTES: f64 = 90.0;
/// One of our JSON log lines (lambdas/src/telemetry.rs), assumed.
const LOG_LINE_BYTES: f64 = 220.0;
/// The publisher's summary line per message (core/src/publisher/report.rs), assumed.
const PUBLISHER_LINE_BYTES: f64 = 600.0;
/// EMF documents (lambdas/src/emf.rs), sizes counted from their shape (a header of ~130
/// bytes, ~40 bytes to declare a metric and ~15 for its value, `Target`, `id`, `outcome`):
/// the publisher's per message (20 metrics), publish-api's per request (5), the events
/// function's per invocation (6).
const EMF_PUBLISHER_BYTES: f64 = 1_300.0;
const EMF_PUBLISH_API_BYTES: f64 = 450.0;
const EMF_EVENTS_BYTES: f64 = 500.0;
/// The HTTP API stage's access log line per request (infra/lib/switchboard-stack.ts).
const ACCESS_LOG_BYTES: f64 = 250.0;

/// Stream records per `events` invocation: Lambda polls each shard about 4 times a second
/// and hands over what arrived (up to 100), assumed.
const STREAM_RECORDS_PER_INVOCATION: f64 = 4.0;
/// Messages per publisher invocation: the SQS event source hands over what one receive got
/// (up to 10) without a batching window; at tens of messages a second most receives get
/// one, assumed.
const SQS_MESSAGES_PER_BATCH: f64 = 1.0;
/// Lambda's SQS pollers when idle: 5 long polls of 20 s on each of 2 queues (the publisher's
/// and the events function's), billed as empty receives.
const IDLE_POLLS_PER_MINUTE: f64 = 2.0 * 5.0 * 3.0;

/// Fixed CloudWatch items: custom metrics (infra/README.md, Metrics: publisher 20 and
/// publish-api 5 metrics, each per `Target` = `users` and in total; events 6 metrics per
/// `stream`, `offline` and in total; 10 metric filters), alarms and the dashboard
/// (infra/README.md, resources table: 21 alarms, 1 dashboard).
const CUSTOM_METRICS: f64 = 20.0 * 2.0 + 5.0 * 2.0 + 6.0 * 3.0 + 10.0;
const ALARMS: f64 = 21.0;
const DASHBOARDS: f64 = 1.0;

/// The log level of every function (`LogLevel`, RUST_LOG).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    /// Our info lines (connected, allowed, message enqueued, the publisher's summary).
    Info,
    /// Warnings and errors only: EMF documents, Lambda's own lines and access logs remain.
    Warn,
}

/// X-Ray tracing of the functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Tracing {
    /// Active: Lambda samples with the default rule (1/s, then 5 %).
    Active,
    /// PassThrough: recorded only when the caller sampled; neither API Gateway WebSocket
    /// nor the HTTP API traces, so nothing is recorded.
    Passthrough,
    /// No tracing.
    Off,
}

/// What the deployment does: the command's flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub connections: f64,
    pub hours_per_day: f64,
    pub messages_per_user_per_day: f64,
    pub users_per_publish: f64,
    pub message_bytes: f64,
    pub log_level: LogLevel,
    pub tracing: Tracing,
    pub ping_minutes: f64,
    pub lifetime_minutes: f64,
    pub token_minutes: f64,
}

/// Which keep-alive the deployment has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Design {
    /// `ping` answered by a MOCK route (no Lambda), every `ping_minutes`.
    Current,
    /// `ping` through `$default` (one `default` invocation each), every 4 minutes.
    Previous,
}

/// One function's share: invocations, milliseconds each (assumed), memory
/// (infra/lib/functions.ts), extra log bytes each at info level, and whether it starts a
/// trace (the publisher continues publish-api's: SQS carries the trace header).
#[derive(Debug, Clone, Copy)]
struct Invocations {
    count: f64,
    millis: f64,
    memory_mb: f64,
    info_bytes: f64,
    always_bytes: f64,
    starts_trace: bool,
}

/// A month of activity, summed over what happens.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    pub connection_minutes: f64,
    pub websocket_messages: f64,
    pub http_requests: f64,
    pub lambda_requests: f64,
    pub lambda_gb_seconds: f64,
    pub write_units: f64,
    pub read_units: f64,
    pub stored_gb: f64,
    pub sqs_requests: f64,
    pub events: f64,
    pub log_bytes: f64,
    /// Invocations that start a trace (sampled by X-Ray's rule when tracing is active).
    pub trace_starts: f64,
}

impl Activity {
    fn invoke(&mut self, scenario: &Scenario, i: Invocations) {
        self.lambda_requests += i.count;
        self.lambda_gb_seconds += i.count * i.millis / 1000.0 * i.memory_mb / 1024.0;
        let mut bytes = PLATFORM_LOG_BYTES + i.always_bytes;
        if scenario.tracing == Tracing::Active {
            bytes += XRAY_LOG_BYTES;
        }
        if scenario.log_level == LogLevel::Info {
            bytes += i.info_bytes;
        }
        self.log_bytes += i.count * bytes;
        if i.starts_trace {
            self.trace_starts += i.count;
        }
    }
}

/// The socket life of one user for a day: sockets opened, pings sent, token refreshes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Day {
    pub sockets: f64,
    pub pings: f64,
    pub refreshes: f64,
    /// Sessions that end (the user goes offline): one a day unless always connected.
    pub sessions_ended: f64,
}

/// The client (clients/js/src/client.ts): a new socket every `lifetimeMs` (115 min), pings
/// on a timer started with each socket (`keepAlive`: one every `keepAliveMs` while it is
/// open), a token refresh 1 minute before each token's expiry (`REFRESH_BEFORE_MS`) when the
/// socket outlives it. Connected all day: sockets follow one another; otherwise one session
/// a day of `hours_per_day`.
pub fn day(scenario: &Scenario, ping_minutes: f64) -> Day {
    let life = scenario.lifetime_minutes;
    let per_socket = |minutes: f64| {
        let pings = (minutes / ping_minutes).floor();
        let refreshes = if scenario.token_minutes > 1.0 {
            (minutes / (scenario.token_minutes - 1.0)).ceil() - 1.0
        } else {
            0.0
        };
        (pings, refreshes.max(0.0))
    };
    let (pings, refreshes) = per_socket(life);
    if scenario.hours_per_day >= 24.0 {
        let sockets = 24.0 * 60.0 / life;
        return Day {
            sockets,
            pings: sockets * pings,
            refreshes: sockets * refreshes,
            sessions_ended: 0.0,
        };
    }
    let session = scenario.hours_per_day * 60.0;
    let full = (session / life).floor();
    let rest = session - full * life;
    let (rest_pings, rest_refreshes) = per_socket(rest);
    let partial = if rest > 0.0 { 1.0 } else { 0.0 };
    Day {
        sockets: full + partial,
        pings: full * pings + rest_pings,
        refreshes: full * refreshes + rest_refreshes,
        sessions_ended: 1.0,
    }
}

/// What `scenario` does in a month with `design`'s keep-alive (`with_pings` false: none,
/// to tell keep-alive's share).
pub fn activity(scenario: &Scenario, design: Design, with_pings: bool) -> Activity {
    let ping_minutes = match design {
        Design::Current => scenario.ping_minutes,
        Design::Previous => PREVIOUS_PING_MINUTES,
    };
    let users = scenario.connections;
    let month = |per_user_day: f64| per_user_day * users * MONTH_DAYS;
    let day = day(scenario, ping_minutes);
    let mut a = Activity {
        connection_minutes: month(scenario.hours_per_day * 60.0),
        ..Activity::default()
    };
    let small = |count: f64, millis: f64, info_bytes: f64| Invocations {
        count,
        millis,
        memory_mb: 256.0,
        info_bytes,
        always_bytes: 0.0,
        starts_trace: true,
    };

    // Keep-alive: `{"action":"ping"}` in, `{"type":"pong"}` out. Current: the MOCK `ping`
    // route answers (no Lambda). Previous: `$default` → `default` (lambdas/src/default.rs),
    // which logs nothing for a ping.
    if with_pings {
        let pings = month(day.pings);
        a.websocket_messages += 2.0 * pings;
        if design == Design::Previous {
            a.invoke(scenario, small(pings, 2.0, 0.0));
        }
    }

    // Every socket: `$connect` runs the authorizer (lambdas/src/authorizer.rs: JWT
    // verified, JWKS cached; "allowed" logged) then `connect` (lambdas/src/connect.rs:
    // roster PutItem — table and `byUser` index; usage: `add_live` UpdateItem and the
    // peak's conditional UpdateItem, which costs its unit even when it finds a higher peak,
    // core/src/usage/connections.rs); `$disconnect` runs `disconnect` (DeleteItem, table and
    // index; `add_live` and the minutes' UpdateItem). `$connect`/`$disconnect` are not
    // billed as messages.
    let sockets = month(day.sockets);
    a.invoke(scenario, small(sockets, 4.0, LOG_LINE_BYTES));
    a.invoke(scenario, small(sockets, 15.0, LOG_LINE_BYTES));
    a.invoke(scenario, small(sockets, 12.0, LOG_LINE_BYTES));
    let roster_units = (ROSTER_ITEM_BYTES / WRITE_UNIT_BYTES).ceil();
    a.write_units += sockets * (2.0 * roster_units + 2.0) + sockets * (2.0 * roster_units + 2.0);

    // The roster's stream (free to read) → `events` (lambdas/src/events.rs): an INSERT is
    // a consistent GetItem of the roster item (`holds`) and an UpdateItem of the user's
    // online item, then `user.online` (core/src/events/presence.rs: also when the user was
    // already online — the overlapping replacement socket — with the new count); a REMOVE is
    // an UpdateItem. When a session ends the user has no connection left: a delayed check
    // on the events queue (send, receive, delete), one more UpdateItem, `user.offline`.
    let records = 2.0 * sockets;
    a.invoke(
        scenario,
        Invocations {
            always_bytes: EMF_EVENTS_BYTES,
            ..small(records / STREAM_RECORDS_PER_INVOCATION, 20.0, 0.0)
        },
    );
    a.read_units += sockets;
    a.write_units += 2.0 * sockets;
    a.events += sockets;
    let ended = month(day.sessions_ended);
    a.sqs_requests += 3.0 * ended;
    a.invoke(
        scenario,
        Invocations {
            always_bytes: EMF_EVENTS_BYTES,
            ..small(ended, 15.0, 0.0)
        },
    );
    a.write_units += ended;
    a.events += ended;

    // A new socket asks for what it missed once it has seen a message (client.ts:
    // `resume` when a cursor is known): `resume` in, `resumed` out, one `default`
    // invocation, one Query per stream of the user (its own, its tenant's, `*`:
    // core/src/history), half a read unit each (eventually consistent).
    if scenario.messages_per_user_per_day > 0.0 {
        a.websocket_messages += 2.0 * sockets;
        a.invoke(scenario, small(sockets, 15.0, 0.0));
        a.read_units += sockets * 3.0 * 0.5;
    }

    // Token refresh in band (core/src/connection/refresh.rs): `refresh` in, `refreshed`
    // out, one `default` invocation (JWT verified), an UpdateItem of the roster item's
    // `tokenExpiresAt` (table and index); "token refreshed" logged.
    let refreshes = month(day.refreshes);
    a.websocket_messages += 2.0 * refreshes;
    a.invoke(scenario, small(refreshes, 10.0, LOG_LINE_BYTES));
    a.write_units += refreshes * 2.0 * roster_units;

    // Publishing: each user receives `messages_per_user_per_day`; one publish names
    // `users_per_publish` users (a `users` target).
    let n = scenario.users_per_publish;
    let publishes = month(scenario.messages_per_user_per_day) / n;
    let deliveries = publishes * n;
    let frame_bytes = scenario.message_bytes + FRAME_OVERHEAD_BYTES;
    let receipt_units =
        ((RECEIPT_ITEM_BYTES + RECEIPT_BYTES_PER_USER * n) / WRITE_UNIT_BYTES).ceil();
    // publish-api (core/src/publish_api.rs): one HTTP API request and invocation, the
    // receipt's conditional PutItem, one SendMessage, the usage count's UpdateItem
    // (core/src/usage/publishes.rs); "message enqueued" and one EMF document; one access
    // log line.
    a.http_requests += publishes;
    a.invoke(
        scenario,
        Invocations {
            always_bytes: EMF_PUBLISH_API_BYTES + ACCESS_LOG_BYTES,
            ..small(publishes, 15.0, LOG_LINE_BYTES)
        },
    );
    a.write_units += publishes * (receipt_units + 1.0);
    a.sqs_requests += publishes * (frame_bytes / CHUNK_64K).ceil();
    // The publisher (core/src/publisher): per batch one ReceiveMessage and one
    // DeleteMessageBatch by Lambda's poller and one invocation (512 MB); per message the
    // work log's claim and finish (PutItem each, aws/src/dynamo/worklog.rs), one history
    // item per user stream, one `byUser` Query per user (half a read unit), one post per
    // user (a WebSocket message per 32 KB), the receipt's UpdateItem, one usage UpdateItem
    // per unit (core/src/publisher/usage.rs), `message.settled` to EventBridge
    // (core/src/publisher/ledger.rs); its summary line and EMF document.
    let batches = publishes / SQS_MESSAGES_PER_BATCH;
    a.sqs_requests += 2.0 * batches;
    a.invoke(
        scenario,
        Invocations {
            count: batches,
            millis: 60.0,
            memory_mb: 512.0,
            info_bytes: PUBLISHER_LINE_BYTES * SQS_MESSAGES_PER_BATCH,
            always_bytes: EMF_PUBLISHER_BYTES * SQS_MESSAGES_PER_BATCH,
            starts_trace: false,
        },
    );
    let history_units = ((frame_bytes + HISTORY_ITEM_OVERHEAD_BYTES) / WRITE_UNIT_BYTES).ceil();
    a.write_units += publishes * (2.0 + receipt_units + 1.0) + deliveries * history_units;
    a.read_units += deliveries * 0.5;
    a.websocket_messages += deliveries * (frame_bytes / WEBSOCKET_UNIT_BYTES).ceil();
    a.events += publishes * (EVENT_BYTES / CHUNK_64K).ceil();

    // Stored: roster items (table and index), receipts and work-log items of a day.
    let day_publishes = publishes / MONTH_DAYS;
    a.stored_gb = (users * 2.0 * ROSTER_ITEM_BYTES
        + day_publishes * (RECEIPT_ITEM_BYTES + RECEIPT_BYTES_PER_USER * n + WORKLOG_ITEM_BYTES))
        / 1e9;
    a.sqs_requests += IDLE_POLLS_PER_MINUTE * MONTH_DAYS * 24.0 * 60.0;
    a
}

/// The AWS services of the table, in order.
pub const SERVICES: [&str; 8] = [
    "API Gateway WebSocket",
    "API Gateway HTTP API",
    "Lambda",
    "DynamoDB",
    "SQS",
    "EventBridge",
    "CloudWatch",
    "X-Ray",
];

/// One priced line: its service (one of [`SERVICES`]), what, how many, dollars.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub service: &'static str,
    pub item: &'static str,
    pub quantity: f64,
    pub unit: &'static str,
    pub usd: f64,
}

/// X-Ray traces recorded when `starts` invocations start one under the default rule.
pub fn traces(tracing: Tracing, starts: f64) -> f64 {
    if tracing != Tracing::Active {
        return 0.0;
    }
    let reservoir = XRAY_RESERVOIR_PER_SECOND * MONTH_DAYS * 86_400.0;
    starts.min(reservoir) + XRAY_RATE * (starts - reservoir).max(0.0)
}

/// The month of `activity`, priced line by line.
pub fn price(scenario: &Scenario, a: &Activity, prices: &Prices) -> Vec<Line> {
    let log_gb = a.log_bytes / 1e9;
    let archive_gb = a.events * EVENT_BYTES / 1e9;
    let traces = traces(scenario.tracing, a.trace_starts);
    let line = |service, item, quantity: f64, unit, id: &str| Line {
        service,
        item,
        quantity,
        unit,
        usd: quantity * prices.per_unit(id),
    };
    vec![
        line(
            SERVICES[0],
            "connection-minutes",
            a.connection_minutes,
            "minutes",
            "websocket_connection_minute",
        ),
        line(
            SERVICES[0],
            "messages (32 KB units)",
            a.websocket_messages,
            "messages",
            "websocket_message",
        ),
        line(
            SERVICES[1],
            "publish requests",
            a.http_requests,
            "requests",
            "http_api_request",
        ),
        line(
            SERVICES[2],
            "requests",
            a.lambda_requests,
            "invocations",
            "lambda_request",
        ),
        line(
            SERVICES[2],
            "duration",
            a.lambda_gb_seconds,
            "GB-s",
            "lambda_gb_second",
        ),
        line(
            SERVICES[3],
            "write units (GSI and usage included)",
            a.write_units,
            "WRU",
            "dynamodb_write_unit",
        ),
        line(
            SERVICES[3],
            "read units",
            a.read_units,
            "RRU",
            "dynamodb_read_unit",
        ),
        line(
            SERVICES[3],
            "storage",
            a.stored_gb,
            "GB-months",
            "dynamodb_storage",
        ),
        line(
            SERVICES[4],
            "requests (polls included)",
            a.sqs_requests,
            "requests",
            "sqs_request",
        ),
        line(
            SERVICES[5],
            "events put",
            a.events,
            "events",
            "eventbridge_event",
        ),
        line(
            SERVICES[5],
            "archive",
            archive_gb,
            "GB",
            "eventbridge_archive_gb",
        ),
        line(
            SERVICES[6],
            "logs ingested (EMF included)",
            log_gb,
            "GB",
            "logs_ingested_gb",
        ),
        line(
            SERVICES[6],
            "logs stored",
            log_gb,
            "GB-months",
            "logs_stored_gb",
        ),
        line(
            SERVICES[6],
            "custom metrics",
            CUSTOM_METRICS,
            "metrics",
            "custom_metric",
        ),
        line(SERVICES[6], "alarms", ALARMS, "alarms", "alarm"),
        line(
            SERVICES[6],
            "dashboard",
            DASHBOARDS,
            "dashboards",
            "dashboard",
        ),
        line(
            SERVICES[7],
            "traces recorded",
            traces,
            "traces",
            "xray_trace",
        ),
    ]
}

/// One design's month: its lines, total, keep-alive's share.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub lines: Vec<Line>,
    pub total: f64,
    pub per_connection: f64,
    /// Dollars keep-alive adds (the total less the same month without pings).
    pub keep_alive: f64,
}

pub fn estimate(scenario: &Scenario, design: Design, prices: &Prices) -> Estimate {
    let sum = |lines: &[Line]| lines.iter().map(|l| l.usd).sum::<f64>();
    let lines = price(scenario, &activity(scenario, design, true), prices);
    let without = price(scenario, &activity(scenario, design, false), prices);
    let total = sum(&lines);
    Estimate {
        total,
        per_connection: total / scenario.connections,
        keep_alive: total - sum(&without),
        lines,
    }
}

/// API Gateway's floor per connection-month: its connection-minutes, and one ping and one
/// pong every `ping_minutes`.
pub fn floor(scenario: &Scenario, prices: &Prices) -> f64 {
    let minutes = scenario.hours_per_day * 60.0 * MONTH_DAYS;
    minutes * prices.per_unit("websocket_connection_minute")
        + 2.0 * minutes / scenario.ping_minutes * prices.per_unit("websocket_message")
}
