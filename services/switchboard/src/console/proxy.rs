//! `switchboard console`'s forwarding: every `/v1/…` request the page makes goes to the
//! deployment's API (`--api`, which may carry a path prefix such as a stage) as
//! `<api><path>?<query>`, with the same method, its `Authorization` and `Content-Type` (no
//! other header) and its body; the answer comes back with the API's status, `Content-Type`
//! and body. The page and the API thus look same-origin to the browser: the API needs no
//! CORS.
//!
//! Checks, in order:
//! 1. `Host` (every path): exactly one `host[:port]` (else 400 `invalid_request`) naming a
//!    loopback host (else 403 `forbidden`): a page on another site reaching the console
//!    through DNS rebinding sends its own name, and must not borrow the operator's token.
//! 2. Path: `/console…` (the page) or `/v1/…` without `.`/`..` segments (which would climb
//!    out of the API's prefix); anything else 404 `not_found`.
//! 3. Request body at most [`MAX_REQUEST_BYTES`] (else 413 `payload_too_large`).
//! 4. The API: unreachable → 502 `bad_gateway`; no complete answer within the timeout (30 s;
//!    tests shorten it with the hidden flag `--api-timeout`) → 504 `gateway_timeout`; an
//!    answer over [`MAX_ANSWER_BYTES`] → 502 `bad_gateway`.
//!    Redirects are answered as they are, never followed; proxies from the environment are
//!    not used.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use futures::StreamExt;
use switchboard_core::http::ApiError;

use super::ConsoleConfig;
use crate::serve::host::Host;

/// Largest request body forwarded.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Largest answer passed back.
pub const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;
/// Longest wait for a connection to the API (within the whole timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request was not forwarded, or its answer not passed back.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("Host must be exactly one host[:port]")]
    BadHost,
    #[error("the console answers requests addressed to a loopback host only")]
    NotLoopbackHost,
    #[error("no such endpoint")]
    NotFound,
    #[error("the request body is over {MAX_REQUEST_BYTES} bytes")]
    BodyTooLarge,
    #[error("the request body could not be read: {0}")]
    BodyUnreadable(String),
    #[error("the API's answer is over {MAX_ANSWER_BYTES} bytes")]
    AnswerTooLarge,
    #[error("the API could not be reached: {0}")]
    Unreachable(String),
    #[error("the API did not answer within {0:?}")]
    Timeout(Duration),
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            ProxyError::BadHost | ProxyError::BodyUnreadable(_) => {
                ApiError::InvalidRequest(message).into_response()
            }
            ProxyError::NotLoopbackHost => ApiError::Forbidden(message).into_response(),
            ProxyError::NotFound => ApiError::NotFound(message).into_response(),
            ProxyError::BodyTooLarge => ApiError::TooLarge(message).into_response(),
            ProxyError::AnswerTooLarge | ProxyError::Unreachable(_) => {
                ApiError::BadGateway(message).into_response()
            }
            ProxyError::Timeout(_) => ApiError::GatewayTimeout(message).into_response(),
        }
    }
}

/// The API requests are forwarded to.
pub struct Upstream {
    client: reqwest::Client,
    /// `--api` without its trailing `/`: the request's path is appended.
    base: String,
    timeout: Duration,
}

impl Upstream {
    /// An upstream at `api` (already checked: https, or http to a loopback host), each
    /// answer bounded by `timeout`.
    pub fn new(api: &reqwest::Url, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            // A redirect is the API's answer to the page, not ours to follow (it could send
            // the operator's token elsewhere).
            .redirect(reqwest::redirect::Policy::none())
            // HTTP(S)_PROXY is for the operator's browsing, not for the API.
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .build()?;
        Ok(Self {
            client,
            base: api.as_str().trim_end_matches('/').to_string(),
            timeout,
        })
    }

    fn failure(&self, error: reqwest::Error) -> ProxyError {
        if error.is_timeout() {
            ProxyError::Timeout(self.timeout)
        } else {
            ProxyError::Unreachable(error.without_url().to_string())
        }
    }
}

/// The console's page (answering `config`) and the forwarding to `upstream`, for loopback
/// hosts only.
pub fn router(upstream: Upstream, config: ConsoleConfig) -> Router {
    let forwarding = Router::new()
        .route("/v1/{*rest}", any(forward))
        .with_state(Arc::new(upstream));
    super::router(config)
        .merge(forwarding)
        .fallback(|| async { ProxyError::NotFound })
        .layer(middleware::from_fn(loopback_host))
}

async fn loopback_host(request: Request, next: Next) -> Response {
    match Host::from_headers(request.headers()) {
        None => ProxyError::BadHost.into_response(),
        Some(host) if !host.is_loopback() => {
            tracing::warn!(host = %host.name, "console request refused: not a loopback host");
            ProxyError::NotLoopbackHost.into_response()
        }
        Some(_) => next.run(request).await,
    }
}

/// Whether the path has a `.` or `..` segment (plain or percent-encoded), which URL
/// normalisation would resolve against the API's prefix.
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let segment = segment.to_ascii_lowercase().replace("%2e", ".");
        segment == "." || segment == ".."
    })
}

async fn forward(
    State(upstream): State<Arc<Upstream>>,
    request: Request,
) -> Result<Response, ProxyError> {
    let (parts, body) = request.into_parts();
    if has_dot_segment(parts.uri.path()) {
        return Err(ProxyError::NotFound);
    }
    let path = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |p| p.as_str());
    let body = read_bounded(body).await?;
    let mut outgoing = upstream
        .client
        .request(parts.method.clone(), format!("{}{path}", upstream.base));
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
        for value in parts.headers.get_all(&name) {
            outgoing = outgoing.header(&name, value.clone());
        }
    }
    if !(body.is_empty() && matches!(parts.method, Method::GET | Method::HEAD)) {
        outgoing = outgoing.body(body);
    }
    let mut answer = outgoing.send().await.map_err(|e| upstream.failure(e))?;
    if answer
        .content_length()
        .is_some_and(|length| length > MAX_ANSWER_BYTES as u64)
    {
        return Err(ProxyError::AnswerTooLarge);
    }
    let status = answer.status();
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    let mut bytes = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| upstream.failure(e))? {
        if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(ProxyError::AnswerTooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    tracing::debug!(method = %parts.method, path = parts.uri.path(), status = status.as_u16(), "forwarded");
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The request body, refused as soon as it is past [`MAX_REQUEST_BYTES`].
async fn read_bounded(body: Body) -> Result<Vec<u8>, ProxyError> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ProxyError::BodyUnreadable(e.to_string()))?;
        if bytes.len() + chunk.len() > MAX_REQUEST_BYTES {
            return Err(ProxyError::BodyTooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_found_plain_and_encoded() {
        for path in [
            "/v1/../x",
            "/v1/./x",
            "/v1/%2e%2E/x",
            "/v1/.%2e",
            "/v1/a/..",
        ] {
            assert!(has_dot_segment(path), "{path}");
        }
        for path in [
            "/v1/messages",
            "/v1/tenants/a.b/presence",
            "/v1/...",
            "/v1/.x",
        ] {
            assert!(!has_dot_segment(path), "{path}");
        }
    }
}
