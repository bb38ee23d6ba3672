//! The fake management endpoint, run as a child process (this binary re-executed with
//! `--endpoint`): one token bucket for all posts, `429 LimitExceededException` beyond it, a
//! fixed time per accepted post, and a count of accepted posts per connection id.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::figures::{cpu_secs, peak_rss_kib};

/// The account's PostToConnection quota the endpoint enforces, per second.
pub(crate) const ENDPOINT_RATE: f64 = 10_000.0;
/// Tokens the endpoint's bucket holds when full (0.1 s of the quota).
pub(crate) const ENDPOINT_BURST: f64 = 1_000.0;
/// How long the endpoint takes to answer an accepted post.
pub(crate) const POST_DELAY: Duration = Duration::from_millis(20);

/// What the endpoint saw, as it reports it to the bench.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct EndpointStats {
    pub(crate) accepted: u64,
    pub(crate) throttled: u64,
    pub(crate) refused: u64,
    pub(crate) distinct: usize,
    pub(crate) duplicates: u64,
    pub(crate) max_per_connection: u32,
    pub(crate) cpu_secs: f64,
    pub(crate) peak_rss_kib: u64,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

struct Endpoint {
    bucket: Mutex<Bucket>,
    accepted: Mutex<HashMap<String, u32>>,
    throttled: AtomicU64,
    refused: AtomicU64,
    fail: Option<String>,
}

impl Endpoint {
    fn take_token(&self) -> bool {
        let mut bucket = self.bucket.lock().unwrap();
        let now = Instant::now();
        let refill = now.duration_since(bucket.last).as_secs_f64() * ENDPOINT_RATE;
        bucket.tokens = (bucket.tokens + refill).min(ENDPOINT_BURST);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn stats(&self) -> EndpointStats {
        let accepted = self.accepted.lock().unwrap();
        EndpointStats {
            accepted: accepted.values().map(|&n| u64::from(n)).sum(),
            throttled: self.throttled.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            distinct: accepted.len(),
            duplicates: accepted.values().map(|&n| u64::from(n - 1)).sum(),
            max_per_connection: accepted.values().copied().max().unwrap_or(0),
            cpu_secs: cpu_secs(),
            peak_rss_kib: peak_rss_kib(),
        }
    }
}

async fn post_to_connection(
    State(endpoint): State<Arc<Endpoint>>,
    Path(id): Path<String>,
) -> axum::response::Response {
    if !endpoint.take_token() {
        endpoint.throttled.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("x-amzn-ErrorType", "LimitExceededException")],
            r#"{"message":"Rate exceeded"}"#,
        )
            .into_response();
    }
    tokio::time::sleep(POST_DELAY).await;
    if endpoint.fail.as_deref() == Some(id.as_str()) {
        endpoint.refused.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("x-amzn-ErrorType", "InternalServerErrorException")],
            r#"{"message":"Internal server error"}"#,
        )
            .into_response();
    }
    *endpoint.accepted.lock().unwrap().entry(id).or_default() += 1;
    StatusCode::OK.into_response()
}

/// Serves the endpoint; prints its URL, then answers each `stats` line on stdin with a JSON
/// line; exits when stdin closes.
pub(crate) async fn endpoint(fail: Option<String>) {
    let state = Arc::new(Endpoint {
        bucket: Mutex::new(Bucket {
            tokens: ENDPOINT_BURST,
            last: Instant::now(),
        }),
        accepted: Mutex::new(HashMap::new()),
        throttled: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        fail,
    });
    let app = Router::new()
        .route("/main/@connections/{id}", post(post_to_connection))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("http://{}/main", listener.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line.trim() == "stats" {
                println!("{}", serde_json::to_string(&state.stats()).unwrap());
                std::io::stdout().flush().unwrap();
            }
        }
        std::process::exit(0);
    });
    axum::serve(listener, app).await.unwrap();
}

/// The endpoint child process, seen from the bench.
pub(crate) struct EndpointProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pub(crate) url: String,
}

impl EndpointProcess {
    pub(crate) fn start(fail: Option<&str>) -> Self {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .arg("--endpoint")
            .arg(fail.unwrap_or(""))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut url = String::new();
        stdout.read_line(&mut url).unwrap();
        Self {
            child,
            stdin,
            stdout,
            url: url.trim().to_string(),
        }
    }

    pub(crate) fn stats(&mut self) -> EndpointStats {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "stats").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    }
}

impl Drop for EndpointProcess {
    fn drop(&mut self) {
        // Closing stdin ends the child; kill it if it has not gone after a second.
        self.stdin.take();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
