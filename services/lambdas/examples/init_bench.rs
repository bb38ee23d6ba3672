#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The cold-start benchmark (issue 21; infra/README.md "Cold starts"): how long the
//! authorizer and `connect` (in series on every `$connect`) take to start and to answer
//! their first event, beside a hello-world Rust Lambda (`examples/hello.rs`) built the same
//! way. It prints figures; it asserts nothing about time.
//!
//! Each run spawns a built `bootstrap` against an emulated Lambda Runtime API on
//! 127.0.0.1 (`GET /2018-06-01/runtime/invocation/next` hands a real event with the
//! `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms` and `-Invoked-Function-Arn` headers;
//! `POST …/response`, `…/error` and `/runtime/init/error` are taken), with the environment
//! Lambda and the stack give the function (dummy credentials as environment variables, the
//! way Lambda passes the execution role's). Measured:
//! - init: spawn → the first `GET …/next` (process start, configuration, clients built);
//! - first invocation: event handed → response posted (for `connect`: its roster and
//!   usage writes to DynamoDB Local, over plain HTTP: no TLS handshake, unlike AWS).
//!
//! Runs are interleaved (hello, authorizer, connect, hello, …) so load from elsewhere on
//! the machine falls on all three alike. `connect` needs DynamoDB Local
//! (`DYNAMODB_ENDPOINT`); `scripts/bench-lambda-init.sh` builds everything and starts it.
//!
//!   init_bench --lambda-dir <dir with <name>/bootstrap> [--runs 20]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use switchboard_core::auth::mint_hs256;
use switchboard_model::{TenantId, UserId};
use tokio::sync::mpsc;

const SECRET: &str = "init-bench-secret-of-32-bytes!!!";
/// How long a run waits for the function to ask for its event, then to answer it.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a second `GET …/next` is held before it is answered empty (the run kills the
/// process long before).
const NEXT_HOLD: Duration = Duration::from_secs(30);
/// The seven functions (`scripts/build-lambdas.sh`), for the zip sizes.
const FUNCTIONS: [&str; 7] = [
    "authorizer",
    "connect",
    "disconnect",
    "default",
    "publisher",
    "publish-api",
    "events",
];

/// What the emulated Runtime API saw, in order.
#[derive(Debug)]
enum Mark {
    Next(Instant),
    Response(Instant, Bytes),
    Error(Bytes),
    InitError(Bytes),
}

/// The emulated Runtime API: the event of the current run (handed once), the marks.
struct Api {
    event: Mutex<Option<(String, Bytes)>>,
    marks: mpsc::Sender<Mark>,
}

async fn next(State(api): State<Arc<Api>>) -> axum::response::Response {
    let at = Instant::now();
    let handed = api.event.lock().unwrap().take();
    let Some((request_id, body)) = handed else {
        tokio::time::sleep(NEXT_HOLD).await;
        return StatusCode::NO_CONTENT.into_response();
    };
    let _ = api.marks.try_send(Mark::Next(at));
    let deadline = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 + 30_000;
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.insert("lambda-runtime-aws-request-id", request_id.parse().unwrap());
    headers.insert("lambda-runtime-deadline-ms", deadline.into());
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:bench"
            .parse()
            .unwrap(),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0"
            .parse()
            .unwrap(),
    );
    (headers, body).into_response()
}

async fn response(State(api): State<Arc<Api>>, body: Bytes) -> StatusCode {
    let _ = api.marks.try_send(Mark::Response(Instant::now(), body));
    StatusCode::ACCEPTED
}

async fn error(State(api): State<Arc<Api>>, body: Bytes) -> StatusCode {
    let _ = api.marks.try_send(Mark::Error(body));
    StatusCode::ACCEPTED
}

async fn init_error(State(api): State<Arc<Api>>, body: Bytes) -> StatusCode {
    let _ = api.marks.try_send(Mark::InitError(body));
    StatusCode::ACCEPTED
}

/// One function under test: its binary, its environment, its event and what a right
/// answer contains.
struct Function {
    name: &'static str,
    bootstrap: PathBuf,
    env: Vec<(String, String)>,
    event: Box<dyn Fn(usize) -> Value>,
    expect: &'static str,
}

#[derive(Default)]
struct Times {
    init: Vec<Duration>,
    first: Vec<Duration>,
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn with_token(mut event: Value) -> Value {
    let token = mint_hs256(
        SECRET.as_bytes(),
        &TenantId::parse("acme").unwrap(),
        &UserId::parse("alice").unwrap(),
        &["publisher".to_string()],
        Duration::from_secs(3600),
    );
    event["queryStringParameters"]["token"] = token.clone().into();
    event["multiValueQueryStringParameters"]["token"] = serde_json::json!([token]);
    event
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A Runtime API of its own for each run (on a new port), so that a killed process's
/// last `GET …/next` can never take the next run's event.
async fn runtime_api(
    event: (String, Bytes),
) -> (String, mpsc::Receiver<Mark>, tokio::task::JoinHandle<()>) {
    let (tx, marks) = mpsc::channel(16);
    let api = Arc::new(Api {
        event: Mutex::new(Some(event)),
        marks: tx,
    });
    let router = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (address, marks, server)
}

async fn measure(
    function: &Function,
    run: usize,
    log: &Path,
) -> Result<(Duration, Duration), String> {
    let request_id = format!("bench-{run}-{}", function.name);
    let body = serde_json::to_vec(&(function.event)(run)).unwrap();
    let (address, mut marks, server) = runtime_api((request_id, Bytes::from(body))).await;
    let runtime_api = address.as_str();
    let lambda_env = [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api),
        ("AWS_LAMBDA_FUNCTION_NAME", function.name),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_SESSION_TOKEN", "bench"),
        ("RUST_LOG", "info"),
        ("TZ", ":UTC"),
    ];
    let mut command = tokio::process::Command::new(&function.bootstrap);
    command
        .env_clear()
        .envs(lambda_env)
        .envs(function.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let spawned = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("{}: {e}", function.bootstrap.display()))?;
    let result = async {
        let next_at = match tokio::time::timeout(STEP_TIMEOUT, marks.recv()).await {
            Ok(Some(Mark::Next(at))) => at,
            Ok(Some(Mark::InitError(body))) => {
                return Err(format!("init error: {}", String::from_utf8_lossy(&body)))
            }
            other => return Err(format!("no GET /next: {other:?}")),
        };
        match tokio::time::timeout(STEP_TIMEOUT, marks.recv()).await {
            Ok(Some(Mark::Response(at, body))) => {
                let text = String::from_utf8_lossy(&body);
                if !text.contains(function.expect) {
                    return Err(format!("unexpected answer {text}"));
                }
                Ok((next_at - spawned, at - next_at))
            }
            Ok(Some(Mark::Error(body))) => {
                Err(format!("error: {}", String::from_utf8_lossy(&body)))
            }
            other => Err(format!("no response: {other:?}")),
        }
    }
    .await;
    let _ = child.kill().await;
    server.abort();
    result.map_err(|e| format!("{} run {run}: {e} (log: {})", function.name, log.display()))
}

/// The value at quantile `q` (nearest rank) of `values`.
fn quantile(values: &[Duration], q: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn zip_size(dir: &Path, name: &str) -> Option<u64> {
    std::fs::metadata(dir.join(name).join("bootstrap.zip"))
        .ok()
        .map(|m| m.len())
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut lambda_dir = PathBuf::from("target/lambda");
    let mut runs = 20usize;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--lambda-dir" => lambda_dir = PathBuf::from(args.next().expect("--lambda-dir DIR")),
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            other => {
                panic!("unknown argument {other}; usage: init_bench --lambda-dir DIR [--runs N]")
            }
        }
    }
    let endpoint = std::env::var("DYNAMODB_ENDPOINT")
        .expect("DYNAMODB_ENDPOINT: connect needs DynamoDB Local (scripts/dynamodb-local.sh)");

    // The tables connect writes: the roster and the history table (usage counters).
    let suffix = std::process::id();
    let roster_table = format!("bench-roster-{suffix}");
    let history_table = format!("bench-history-{suffix}");
    let config = switchboard_aws::DynamoConfig::from_lookup(|k| match k {
        "DYNAMODB_ENDPOINT" => Some(endpoint.clone()),
        "ROSTER_TABLE" => Some(roster_table.clone()),
        "HISTORY_TABLE" => Some(history_table.clone()),
        _ => None,
    })
    .unwrap();
    let stores = switchboard_aws::dynamo::DynamoStores::connect(&config).await;
    stores
        .create_tables(switchboard_aws::dynamo::CreateTables::Require)
        .await
        .unwrap();

    let connect_event = fixture("connect_query.json");
    let functions = [
        Function {
            name: "hello",
            bootstrap: lambda_dir.join("hello/bootstrap"),
            env: Vec::new(),
            event: Box::new(|_| serde_json::json!({"hello": "bench"})),
            expect: "bench",
        },
        Function {
            name: "authorizer",
            bootstrap: lambda_dir.join("authorizer/bootstrap"),
            env: pairs(&[("JWT_HS256_SECRET", SECRET)]),
            event: Box::new(|_| with_token(fixture("query_token.json"))),
            expect: "\"Allow\"",
        },
        Function {
            name: "connect",
            bootstrap: lambda_dir.join("connect/bootstrap"),
            env: pairs(&[
                ("ROSTER_TABLE", &roster_table),
                ("HISTORY_TABLE", &history_table),
                ("USAGE_RETENTION_DAYS", "30"),
                ("CONNECTION_TTL_SECS", "7200"),
                ("DYNAMODB_ENDPOINT", &endpoint),
            ]),
            event: Box::new(move |run| {
                let mut event = connect_event.clone();
                event["requestContext"]["connectionId"] = format!("Bench{run:06}jo1A=").into();
                event
            }),
            expect: "\"statusCode\":200",
        },
    ];

    let logs = std::env::temp_dir();
    let mut times: HashMap<&str, Times> = HashMap::new();
    for run in 0..runs {
        for function in &functions {
            let log = logs.join(format!("init-bench-{}.log", function.name));
            match measure(function, run, &log).await {
                Ok((init, first)) => {
                    let entry = times.entry(function.name).or_default();
                    entry.init.push(init);
                    entry.first.push(first);
                }
                Err(error) => {
                    eprintln!("init_bench: {error}");
                    std::process::exit(1);
                }
            }
        }
    }

    println!(
        "{runs} runs each, interleaved; times in ms (median / p90); ratio = median ÷ hello's median"
    );
    println!(
        "{:<11} {:>9} {:>17} {:>6} {:>17} {:>6} {:>17} {:>6}",
        "function", "zip MB", "init", "×", "first invocation", "×", "init + first", "×"
    );
    let hello = &times["hello"];
    let hello_total: Vec<Duration> = hello
        .init
        .iter()
        .zip(&hello.first)
        .map(|(a, b)| *a + *b)
        .collect();
    for function in &functions {
        let t = &times[function.name];
        let total: Vec<Duration> = t.init.iter().zip(&t.first).map(|(a, b)| *a + *b).collect();
        let zip = zip_size(&lambda_dir, function.name)
            .map(|b| format!("{:.2}", b as f64 / 1e6))
            .unwrap_or_else(|| "-".into());
        let cell =
            |v: &[Duration]| format!("{:.1} / {:.1}", ms(quantile(v, 0.5)), ms(quantile(v, 0.9)));
        let ratio = |v: &[Duration], base: &[Duration]| {
            format!("{:.2}", ms(quantile(v, 0.5)) / ms(quantile(base, 0.5)))
        };
        println!(
            "{:<11} {:>9} {:>17} {:>6} {:>17} {:>6} {:>17} {:>6}",
            function.name,
            zip,
            cell(&t.init),
            ratio(&t.init, &hello.init),
            cell(&t.first),
            ratio(&t.first, &hello.first),
            cell(&total),
            ratio(&total, &hello_total),
        );
    }
    println!("zips (goal: each ≤ 3 MB):");
    for name in FUNCTIONS.iter().chain(["hello"].iter()) {
        match zip_size(&lambda_dir, name) {
            Some(bytes) => println!(
                "  {name:<12} {:>6.2} MB  ({bytes} bytes)",
                bytes as f64 / 1e6
            ),
            None => println!(
                "  {name:<12} (no {}/{name}/bootstrap.zip)",
                lambda_dir.display()
            ),
        }
    }
    let _ = switchboard_aws::delete_table(stores.client(), &roster_table).await;
    let _ = switchboard_aws::delete_table(stores.client(), &history_table).await;
}
