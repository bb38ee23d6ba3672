//! The accept loop of both listeners: axum's `serve` without a timer, so hyper's
//! header-read timeout would be inactive. HTTP/1 only (docs/design.md: The one-machine
//! binary): WebSocket upgrades need HTTP/1.1 and no client speaks HTTP/2 to `serve`, and
//! hyper's HTTP/1 connection is the one that times out a peer that sends nothing.
//!
//! Every connection is bounded in time and number:
//! - `HEADER_READ_TIMEOUT_SECS` (default 30) from accept, and from each answer on a kept-alive
//!   connection, to a request's complete headers: a peer that sends nothing, half a request or
//!   an HTTP/2 preface is closed (slow-loris clients are dropped);
//! - `REQUEST_TIMEOUT_SECS` (default 30) from the headers to the answer, reading the body
//!   included: a body trickled past it is answered 408 and the connection closed;
//! - `LISTENER_MAX_CONNECTIONS` open per listener and `LISTENER_MAX_CONNECTIONS_PER_ADDRESS`
//!   per peer address ([`Admission`]): beyond, a new connection is closed at once and counted.
//!
//! Each connection gets the peer address as `ConnectInfo`, WebSocket upgrades and a graceful
//! stop.
//!
//! Each accepted socket gets a fixed kernel send buffer ([`SEND_BUFFER_BYTES`]) instead of
//! Linux's autotuning, which grows it up to `tcp_wmem`'s maximum (4 MiB by default; an
//! accepted loopback socket starts at 3.9 MB): a client that stops reading then pins at
//! most that much kernel memory, and its writes block (and hit `SEND_TIMEOUT_SECS`) after a
//! few seconds of traffic instead of many minutes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;
use tower_http::timeout::TimeoutLayer;

use super::admission::Admission;
use super::metrics::{ListenerLabel, Metrics};

/// Time and number bounds of each listener's connections (the module doc says what each does).
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    /// `HEADER_READ_TIMEOUT_SECS`.
    pub header_read_timeout: Duration,
    /// `REQUEST_TIMEOUT_SECS`.
    pub request_timeout: Duration,
    /// `LISTENER_MAX_CONNECTIONS`.
    pub max_connections: usize,
    /// `LISTENER_MAX_CONNECTIONS_PER_ADDRESS`.
    pub max_per_address: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_per_address: 1_000,
        }
    }
}

/// One listener: its name in metrics and logs, its limits, the metrics it counts in.
pub struct Listener {
    pub name: &'static str,
    pub limits: ListenerLimits,
    pub metrics: Arc<Metrics>,
}

/// Kernel send buffer of each accepted socket (Linux doubles it for bookkeeping). Enough
/// for notification traffic to a remote client (64 KiB in flight is about 1.3 MB/s at a
/// 50 ms round trip); a frame larger than this still goes out, in parts.
pub const SEND_BUFFER_BYTES: usize = 64 * 1024;

/// Sets an accepted socket's kernel send buffer to [`SEND_BUFFER_BYTES`] (autotuning off).
fn fix_send_buffer(stream: &tokio::net::TcpStream, peer: SocketAddr) {
    if let Err(error) = socket2::SockRef::from(stream).set_send_buffer_size(SEND_BUFFER_BYTES) {
        tracing::debug!(%error, peer = %peer, "could not set the send buffer size");
    }
}

/// Serves `router` on `listener` until `stop` turns true; then stops accepting, lets
/// in-progress requests finish and waits (at most `grace`) for the connections to end.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: Listener,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let limits = settings.limits;
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let router = router.layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    ));
    let admission = Admission::new(limits.max_connections, limits.max_per_address);
    let label = ListenerLabel {
        listener: settings.name,
    };
    let open = settings
        .metrics
        .listener_connections
        .get_or_create(&label)
        .clone();
    // Every connection task holds a receiver; all dropped = all connections ended.
    let (all_done, alive) = watch::channel(());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = async { stop.wait_for(|stop| *stop).await.map(|_| ()) } => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, listener = settings.name, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let admitted = match admission.admit(peer.ip()) {
            Ok(admitted) => admitted,
            Err(refusal) => {
                settings
                    .metrics
                    .refuse_listener_connection(settings.name, refusal.as_str());
                tracing::debug!(peer = %peer, listener = settings.name, reason = refusal.as_str(), "connection refused");
                drop(stream);
                continue;
            }
        };
        open.set(i64::try_from(admission.open()).unwrap_or(i64::MAX));
        fix_send_buffer(&stream, peer);
        let service = router
            .clone()
            .map_request(move |request: hyper::Request<Incoming>| {
                let mut request = request.map(Body::new);
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                request
            })
            .map_err(|never: Infallible| never);
        let builder = builder.clone();
        let mut stop = stop.clone();
        let alive = alive.clone();
        let open = open.clone();
        let admission = admission.clone();
        tokio::spawn(async move {
            let connection = builder
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, peer = %peer, "connection ended with an error");
                    }
                }
                _ = async { stop.wait_for(|stop| *stop).await.map(|_| ()) } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(admitted);
            open.set(i64::try_from(admission.open()).unwrap_or(i64::MAX));
            drop(alive);
        });
    }
    drop(alive);
    drop(listener);
    if tokio::time::timeout(grace, all_done.closed())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = settings.name,
            "shutdown: HTTP connections still open after the drain bound"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_sockets_get_the_fixed_send_buffer() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let autotuned = socket2::SockRef::from(&stream).send_buffer_size().unwrap();
        fix_send_buffer(&stream, peer);
        let fixed = socket2::SockRef::from(&stream).send_buffer_size().unwrap();
        // Linux doubles the value asked for (bookkeeping); other systems keep it.
        assert!(
            (SEND_BUFFER_BYTES..=2 * SEND_BUFFER_BYTES).contains(&fixed),
            "send buffer {fixed} (was {autotuned})"
        );
    }
}
