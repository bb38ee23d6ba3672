#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The AWS path on one machine, for the console's browser test (issue 26): the real
//! `publish-api` and `publisher` binaries, each run against an emulated Lambda Runtime API
//! ([`runtime`]), behind a fake API Gateway HTTP API ([`gateway`]: the stack's routes only,
//! [`routes`]), with their tables on
//! DynamoDB Local and SQS and the WebSocket API's `@connections` faked ([`rig`]).
//!
//!   HTTP client ──► gateway (payload 2.0) ──► publish-api ──SendMessage──► fake SQS
//!   fake SQS ──(SQS event, ≤ 10 bodies, every 50 ms)──► publisher ──► fake @connections
//!   both functions ──► DynamoDB Local (roster + history tables, made fresh per run)
//!
//! A message the publisher lists in `batchItemFailures` (or an invocation that fails) is
//! received again after a second, and goes to the dead-letter queue after five receives
//! (the stack's redrive policy). WebSocket connections are roster records the rig writes
//! (`POST /_rig/connections`), as `$connect` would; the posts they get are kept for
//! `GET /_rig/posts` (see [`rig`]).
//!
//!   cargo build -p switchboard-lambdas --bin publish-api --bin publisher --example console_stack
//!   DYNAMODB_ENDPOINT=http://127.0.0.1:8000 \
//!     target/debug/examples/console_stack --secret <JWT_HS256_SECRET> [--bin-dir target/debug]
//!
//! `--secret` (else `JWT_HS256_SECRET`) is the HS256 key the API verifies tokens with.
//! `--bin-dir` holds the two binaries (default: the folder above this example's). A
//! `TENANTS_FILE` in the environment is passed to both functions. On start it prints one
//! line to stdout: `{"api":"http://127.0.0.1:<port>","rig":"http://127.0.0.1:<port>"}`;
//! logs (its own and the functions') go to stderr. It runs until SIGINT or SIGTERM, then
//! deletes its tables.

mod gateway;
mod rig;
mod routes;
mod runtime;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use serde_json::{json, Value};
use switchboard_aws::{create_history_table, create_table, delete_table, DynamoRosterStore};
use tokio::sync::mpsc;

use crate::rig::Rig;
use crate::runtime::Function;

/// The queues' paths, as SQS URLs end (account, then name).
const QUEUE_PATH: &str = "/123456789012/switchboard-messages";
pub const DLQ_PATH: &str = "/123456789012/switchboard-dead-letters";
/// Receives before a message goes to the dead-letter queue (the stack's `maxReceiveCount`).
const MAX_RECEIVES: u32 = 5;
/// SQS's batch size for the publisher's event source.
const BATCH_SIZE: usize = 10;
/// The publisher function's timeout (its invocation deadline).
const PUBLISHER_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the event source polls the queue.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// How long a message stays invisible after a failed receive.
const VISIBILITY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// The SQS event the publisher gets is this fixture's shape, records replaced.
const SQS_FIXTURE: &str = include_str!("../../tests/fixtures/sqs_batch.json");

struct Args {
    secret: String,
    bin_dir: PathBuf,
}

fn args() -> Result<Args, String> {
    let mut secret = std::env::var("JWT_HS256_SECRET").ok();
    let mut bin_dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--secret" => secret = args.next(),
            "--bin-dir" => bin_dir = args.next().map(PathBuf::from),
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: console_stack --secret S [--bin-dir DIR]"
                ))
            }
        }
    }
    let secret = secret
        .filter(|s| !s.is_empty())
        .ok_or("--secret (or JWT_HS256_SECRET) is required")?;
    let bin_dir = match bin_dir {
        Some(dir) => dir,
        // target/debug/examples/console_stack → target/debug
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
            .ok_or("--bin-dir: cannot tell where this example runs from")?,
    };
    Ok(Args { secret, bin_dir })
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("console_stack: {message}");
    std::process::exit(1);
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = args().unwrap_or_else(|e| fail(e));
    let routes = routes::publish_api_routes().unwrap_or_else(|e| fail(e));
    let endpoint = std::env::var("DYNAMODB_ENDPOINT")
        .unwrap_or_else(|_| fail("DYNAMODB_ENDPOINT (DynamoDB Local) is required"));

    // Fresh tables: the roster and the history table (receipts, usage, devices, work log).
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let roster_table = format!("console-roster-{}-{nanos:x}", std::process::id());
    let history_table = format!("console-history-{}-{nanos:x}", std::process::id());
    let lookup = |k: &str| match k {
        "DYNAMODB_ENDPOINT" => Some(endpoint.clone()),
        "ROSTER_TABLE" => Some(roster_table.clone()),
        _ => None,
    };
    let dynamo = switchboard_aws::DynamoConfig::from_lookup(lookup)
        .unwrap_or_else(|e| fail(format!("DYNAMODB_ENDPOINT: {e}")));
    let client = switchboard_aws::dynamodb_client(&dynamo).await;
    create_table(&client, &roster_table)
        .await
        .unwrap_or_else(|e| fail(format!("roster table: {e}")));
    create_history_table(&client, &history_table)
        .await
        .unwrap_or_else(|e| fail(format!("history table: {e}")));
    let roster = DynamoRosterStore::new(client.clone(), roster_table.clone(), dynamo.scan_segments);

    // The rig's listener first: the functions are given its address.
    let rig = Rig::new(Arc::new(roster));
    let rig_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| fail(e));
    let rig_url = format!("http://{}", rig_listener.local_addr().unwrap());
    let router = rig.router();
    tokio::spawn(async move { axum::serve(rig_listener, router).await });

    let queue_url = format!("{rig_url}{QUEUE_PATH}");
    let dlq_url = format!("{rig_url}{DLQ_PATH}");
    let callback_url = format!("{rig_url}/prod");
    let mut shared = pairs(&[
        ("ROSTER_TABLE", &roster_table),
        ("HISTORY_TABLE", &history_table),
        ("DYNAMODB_ENDPOINT", &endpoint),
        ("AWS_ENDPOINT_URL_SQS", &rig_url),
        ("QUEUE_URL", &queue_url),
        ("USAGE_RETENTION_DAYS", "30"),
    ]);
    if let Ok(file) = std::env::var("TENANTS_FILE") {
        shared.push(("TENANTS_FILE".into(), file));
    }
    let (fatal, mut fatal_rx) = mpsc::channel(4);
    let mut api_env = shared.clone();
    api_env.extend(pairs(&[("JWT_HS256_SECRET", &args.secret)]));
    let (api_function, api_stopper) = Function::start(
        "publish-api",
        &args.bin_dir.join("publish-api"),
        &api_env,
        fatal.clone(),
    )
    .await
    .unwrap_or_else(|e| fail(e));
    let mut publisher_env = shared;
    publisher_env.extend(pairs(&[
        ("CALLBACK_URL", &callback_url),
        ("DLQ_URL", &dlq_url),
    ]));
    let (publisher, publisher_stopper) = Function::start(
        "publisher",
        &args.bin_dir.join("publisher"),
        &publisher_env,
        fatal,
    )
    .await
    .unwrap_or_else(|e| fail(e));

    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| fail(e));
    let api_url = format!("http://{}", api_listener.local_addr().unwrap());
    let api = gateway::router(gateway::HttpApi {
        function: Arc::new(api_function),
        routes: Arc::new(routes),
    });
    tokio::spawn(async move { axum::serve(api_listener, api).await });
    tokio::spawn(event_source(rig, publisher, queue_url, dlq_url));

    println!("{}", json!({"api": api_url, "rig": rig_url}));

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .unwrap_or_else(|e| fail(e));
    let failure = tokio::select! {
        _ = tokio::signal::ctrl_c() => None,
        _ = terminate.recv() => None,
        message = fatal_rx.recv() => message,
    };
    api_stopper.stop().await;
    publisher_stopper.stop().await;
    let _ = delete_table(&client, &roster_table).await;
    let _ = delete_table(&client, &history_table).await;
    if let Some(message) = failure {
        fail(message);
    }
}

/// The SQS event source mapping: batches of visible messages to the publisher, failures
/// received again later, dead-lettered after [`MAX_RECEIVES`].
async fn event_source(rig: Rig, publisher: Function, queue_url: String, dlq_url: String) {
    let template: Value = serde_json::from_str(SQS_FIXTURE).expect("the SQS fixture");
    let record = template["Records"][0].clone();
    loop {
        let batch = rig.receive(&queue_url, BATCH_SIZE);
        if batch.is_empty() {
            tokio::time::sleep(POLL_EVERY).await;
            continue;
        }
        let records: Vec<Value> = batch
            .iter()
            .map(|m| {
                let mut r = record.clone();
                r["messageId"] = m.message_id.clone().into();
                r["body"] = m.body.clone().into();
                r["attributes"]["ApproximateReceiveCount"] = m.receive_count.to_string().into();
                r
            })
            .collect();
        let event = Bytes::from(json!({ "Records": records }).to_string());
        let failed: Vec<String> = match publisher.invoke(event, PUBLISHER_TIMEOUT).await {
            Ok(answer) => serde_json::from_slice::<Value>(&answer)
                .ok()
                .and_then(|a| a["batchItemFailures"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_string))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "publisher invocation failed: the batch returns");
                batch.iter().map(|m| m.message_id.clone()).collect()
            }
        };
        for message in batch {
            if !failed.contains(&message.message_id) {
                continue;
            }
            if message.receive_count >= MAX_RECEIVES {
                rig.move_to(message, &dlq_url);
            } else {
                rig.release(message, VISIBILITY_AFTER_FAILURE);
            }
        }
    }
}
