//! An emulated Lambda Runtime API per function, and the function's real binary run against
//! it: `GET …/invocation/next` hands the next event (with the `Lambda-Runtime-*` headers
//! Lambda sends), `POST …/{id}/response` and `…/{id}/error` answer it,
//! `…/init/error` fails the rig. One process runs one invocation at a time, as one Lambda
//! execution environment does; invocations wait their turn in a bounded queue.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{mpsc, oneshot};

/// Invocations that may wait for the process at once (more: throttled, as Lambda would).
const QUEUED_INVOCATIONS: usize = 64;

/// Why an invocation gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("throttled: {QUEUED_INVOCATIONS} invocations already wait")]
    Throttled,
    #[error("the function reported an error: {0}")]
    Function(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the function is gone")]
    Gone,
}

type Reply = oneshot::Sender<Result<Bytes, InvokeError>>;

struct Invocation {
    id: String,
    payload: Bytes,
    timeout: Duration,
    reply: Reply,
}

struct Api {
    name: String,
    next: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<HashMap<String, Reply>>,
    fatal: mpsc::Sender<String>,
}

/// A running function: its binary under an emulated Runtime API.
pub struct Function {
    invocations: mpsc::Sender<Invocation>,
    count: std::sync::atomic::AtomicU64,
    name: String,
}

impl Function {
    /// Starts `binary` with Lambda's environment plus `env`, its logs (and EMF documents)
    /// on the rig's stderr when `logs`, else dropped.
    /// A failed init, a crash or an exit is sent to `fatal`; the [`Stopper`] ends it.
    pub async fn start(
        name: &str,
        binary: &Path,
        env: &[(String, String)],
        logs: bool,
        fatal: mpsc::Sender<String>,
    ) -> std::io::Result<(Self, Stopper)> {
        let (invocations, next) = mpsc::channel(QUEUED_INVOCATIONS);
        let api = Arc::new(Api {
            name: name.to_string(),
            next: tokio::sync::Mutex::new(next),
            pending: Mutex::default(),
            fatal: fatal.clone(),
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_event))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let log = if logs {
            Stdio::from(std::io::stderr().as_fd().try_clone_to_owned()?)
        } else {
            Stdio::null()
        };
        let rust_log = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
        let mut child = tokio::process::Command::new(binary)
            .env_clear()
            .envs([
                ("AWS_LAMBDA_RUNTIME_API", address.as_str()),
                ("AWS_LAMBDA_FUNCTION_NAME", name),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
                ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
                ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/console-stack"),
                ("AWS_LAMBDA_LOG_STREAM_NAME", "console-stack"),
                ("AWS_REGION", "us-east-1"),
                ("AWS_DEFAULT_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "rig"),
                ("AWS_SECRET_ACCESS_KEY", "rig"),
                ("AWS_SESSION_TOKEN", "rig"),
                ("RUST_LOG", rust_log.as_str()),
                ("TZ", ":UTC"),
            ])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", binary.display())))?;
        let watched = name.to_string();
        let (stop, stopped) = oneshot::channel::<oneshot::Sender<()>>();
        tokio::spawn(async move {
            tokio::select! {
                status = child.wait() => {
                    let _ = fatal
                        .send(format!("function {watched} exited: {status:?}"))
                        .await;
                }
                Ok(done) = stopped => {
                    let _ = child.kill().await;
                    let _ = done.send(());
                }
            }
        });
        let function = Self {
            invocations,
            count: Default::default(),
            name: name.to_string(),
        };
        Ok((function, Stopper(stop)))
    }

    /// Hands `payload` to the function; its answer within `timeout` (from now, the
    /// invocation's deadline too).
    pub async fn invoke(&self, payload: Bytes, timeout: Duration) -> Result<Bytes, InvokeError> {
        let n = self
            .count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        let invocation = Invocation {
            id: format!("{}-{n:08}", self.name),
            payload,
            timeout,
            reply,
        };
        self.invocations.try_send(invocation).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => InvokeError::Throttled,
            mpsc::error::TrySendError::Closed(_) => InvokeError::Gone,
        })?;
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(InvokeError::Gone),
            Err(_) => Err(InvokeError::Timeout(timeout)),
        }
    }
}

/// Ends a function's process (before the rig's Runtime API goes away under it).
pub struct Stopper(oneshot::Sender<oneshot::Sender<()>>);

impl Stopper {
    /// Kills the process and waits until it has exited (at most a second).
    pub async fn stop(self) {
        let (done, exited) = oneshot::channel();
        if self.0.send(done).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), exited).await;
        }
    }
}

async fn next_event(State(api): State<Arc<Api>>) -> Response {
    // Held until there is an event, as Lambda holds it (the process is frozen meanwhile).
    let invocation = api.next.lock().await.recv().await;
    let Some(invocation) = invocation else {
        return StatusCode::GONE.into_response();
    };
    let deadline = time::OffsetDateTime::now_utc() + invocation.timeout;
    let deadline_ms = deadline.unix_timestamp_nanos() / 1_000_000;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("content-type", "application/json".into());
    set("lambda-runtime-aws-request-id", invocation.id.clone());
    set("lambda-runtime-deadline-ms", deadline_ms.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        format!(
            "arn:aws:lambda:us-east-1:123456789012:function:{}",
            api.name
        ),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0".into(),
    );
    lock(&api.pending).insert(invocation.id, invocation.reply);
    (headers, invocation.payload).into_response()
}

async fn response(
    State(api): State<Arc<Api>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    answer(&api, &id, Ok(body))
}

async fn error(
    State(api): State<Arc<Api>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let text = String::from_utf8_lossy(&body).into_owned();
    answer(&api, &id, Err(InvokeError::Function(text)))
}

async fn init_error(State(api): State<Arc<Api>>, body: Bytes) -> StatusCode {
    let text = String::from_utf8_lossy(&body);
    let _ = api
        .fatal
        .send(format!("function {} failed its init: {text}", api.name))
        .await;
    StatusCode::ACCEPTED
}

fn answer(api: &Api, id: &str, result: Result<Bytes, InvokeError>) -> StatusCode {
    match lock(&api.pending).remove(id) {
        Some(reply) => {
            // The caller may have timed out and gone: nothing to tell then.
            let _ = reply.send(result);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

/// The lock even if a holder panicked (the map stays usable).
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
