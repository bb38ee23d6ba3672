//! The rig's wiring (see `main.rs` for the picture): fresh tables on DynamoDB Local, the
//! rig's listener ([`crate::rig`]), both functions under their Runtime APIs
//! ([`crate::runtime`]), the HTTP API in front of `publish-api` ([`crate::gateway`]) and
//! the SQS event source of `publisher`. [`Stack::stop`] ends the functions and deletes the
//! tables.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use serde_json::{json, Value};
use switchboard_aws::dynamo::{CreateTables, DynamoStores};
use switchboard_aws::{delete_table, DynamoConfig};
use tokio::sync::mpsc;

use crate::gateway;
use crate::rig::{Rig, DLQ_PATH};
use crate::routes;
use crate::runtime::{Function, Stopper};

/// The queue's path, as SQS URLs end (account, then name).
const QUEUE_PATH: &str = "/123456789012/switchboard-messages";
/// Receives before a message goes to the dead-letter queue (the stack's `maxReceiveCount`).
const MAX_RECEIVES: u32 = 5;
/// SQS's batch size for the publisher's event source.
const BATCH_SIZE: usize = 10;
/// The publisher function's timeout (its invocation deadline; the stack's default
/// `publisherTimeoutSecs`).
const PUBLISHER_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the event source polls the queue.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// How long a message stays invisible after a failed receive (the stack's visibility
/// timeout is 6 × the function's; a rig does not make a test wait that long).
const VISIBILITY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// The SQS event the publisher gets is this fixture's shape, records replaced.
const SQS_FIXTURE: &str = include_str!("../../tests/fixtures/sqs_batch.json");

/// What the rig needs to start.
pub struct StackConfig {
    /// `JWT_HS256_SECRET` of the API.
    pub secret: String,
    /// Where the `publish-api` and `publisher` binaries are.
    pub bin_dir: PathBuf,
    /// DynamoDB Local.
    pub dynamodb_endpoint: String,
    /// `TENANTS_FILE` of both functions, if any.
    pub tenants_file: Option<String>,
    /// Whether the functions' output (JSON logs, EMF documents) goes to stderr.
    pub function_logs: bool,
}

/// A running rig.
pub struct Stack {
    /// The HTTP API (`http://127.0.0.1:<port>`).
    pub api_url: String,
    /// The rig's listener: fakes and control (`http://127.0.0.1:<port>`).
    pub rig_url: String,
    fatal: mpsc::Receiver<String>,
    stoppers: Vec<Stopper>,
    client: aws_sdk_dynamodb::Client,
    tables: Vec<String>,
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Starts the rig; an error names what could not start.
pub async fn start(config: StackConfig) -> Result<Stack, String> {
    let routes = routes::publish_api_routes()?;
    let endpoint = config.dynamodb_endpoint;

    // Fresh tables: the roster and the history table (receipts, usage, devices, work log).
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let roster_table = format!("console-roster-{}-{nanos:x}", std::process::id());
    let history_table = format!("console-history-{}-{nanos:x}", std::process::id());
    let lookup = |k: &str| match k {
        "DYNAMODB_ENDPOINT" => Some(endpoint.clone()),
        "ROSTER_TABLE" => Some(roster_table.clone()),
        "HISTORY_TABLE" => Some(history_table.clone()),
        _ => None,
    };
    let dynamo =
        DynamoConfig::from_lookup(lookup).map_err(|e| format!("DYNAMODB_ENDPOINT: {e}"))?;
    let stores = DynamoStores::connect(&dynamo).await;
    stores
        .create_tables(CreateTables::Require)
        .await
        .map_err(|e| e.to_string())?;
    let roster = stores.roster();

    // The rig's listener first: the functions are given its address.
    let rig = Rig::new(Arc::new(roster));
    let (rig_listener, rig_url) = listen().await?;
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
    if let Some(file) = config.tenants_file {
        shared.push(("TENANTS_FILE".into(), file));
    }
    let (fatal, fatal_rx) = mpsc::channel(4);
    let mut api_env = shared.clone();
    api_env.extend(pairs(&[("JWT_HS256_SECRET", &config.secret)]));
    let binary = |name: &str| config.bin_dir.join(name);
    let (api_function, api_stopper) = Function::start(
        "publish-api",
        &binary("publish-api"),
        &api_env,
        config.function_logs,
        fatal.clone(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut publisher_env = shared;
    publisher_env.extend(pairs(&[
        ("CALLBACK_URL", &callback_url),
        ("DLQ_URL", &dlq_url),
    ]));
    let (publisher, publisher_stopper) = Function::start(
        "publisher",
        &binary("publisher"),
        &publisher_env,
        config.function_logs,
        fatal,
    )
    .await
    .map_err(|e| e.to_string())?;

    let (api_listener, api_url) = listen().await?;
    let api = gateway::router(gateway::HttpApi {
        function: Arc::new(api_function),
        routes: Arc::new(routes),
    });
    tokio::spawn(async move { axum::serve(api_listener, api).await });
    tokio::spawn(event_source(rig, publisher, queue_url, dlq_url));
    Ok(Stack {
        api_url,
        rig_url,
        fatal: fatal_rx,
        stoppers: vec![api_stopper, publisher_stopper],
        client: stores.client().clone(),
        tables: vec![roster_table, history_table],
    })
}

async fn listen() -> Result<(tokio::net::TcpListener, String), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("listen on 127.0.0.1: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    Ok((listener, format!("http://{address}")))
}

impl Stack {
    /// Resolves when a function fails (its init, or its process ends): what happened.
    pub async fn failure(&mut self) -> Option<String> {
        self.fatal.recv().await
    }

    /// Ends both functions, then deletes the tables.
    pub async fn stop(self) {
        for stopper in self.stoppers {
            stopper.stop().await;
        }
        for table in &self.tables {
            let _ = delete_table(&self.client, table).await;
        }
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
