//! The accept loop of both listeners: axum's `serve` without a timer, so hyper's
//! header-read timeout would be inactive. Here every connection gets
//! `HEADER_READ_TIMEOUT_SECS` (default 30) to send its request headers (slow-loris
//! clients are dropped),
//! the peer address as `ConnectInfo`, WebSocket upgrades, and a graceful stop.
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
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

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
    mut stop: watch::Receiver<bool>,
    header_read_timeout: Duration,
    grace: Duration,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let builder = Arc::new(builder);
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
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
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
        tokio::spawn(async move {
            let connection = builder.serve_connection_with_upgrades(
                TokioIo::new(stream),
                TowerToHyperService::new(service),
            );
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
            drop(alive);
        });
    }
    drop(alive);
    drop(listener);
    if tokio::time::timeout(grace, all_done.closed())
        .await
        .is_err()
    {
        tracing::warn!("shutdown: HTTP connections still open after the drain bound");
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
