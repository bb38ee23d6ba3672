//! The live sockets of this process, by connection id, and the `ConnectionPusher` that
//! posts to them (what API Gateway's connection table and `PostToConnection` are in AWS).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use switchboard_core::pusher::{ConnectionPusher, PushError};
use switchboard_model::{Claims, ConnectionId, MAX_FRAME_BYTES};
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// Frames queued per socket before a post has to wait.
pub const SOCKET_QUEUE_FRAMES: usize = 32;
/// How long a post waits for room in a slow socket's queue before it times out.
pub const POST_TIMEOUT: Duration = Duration::from_secs(5);

/// What the socket task is told to send.
#[derive(Debug)]
pub enum Outgoing {
    Text(String),
    Binary(Vec<u8>),
    /// Send a close frame with this code and reason, then end.
    Close(u16, &'static str),
}

/// One live socket.
pub struct LiveConnection {
    pub claims: Claims,
    pub connected_at: OffsetDateTime,
    last_active: AtomicI64,
    pub source_ip: IpAddr,
    pub user_agent: String,
    tx: mpsc::Sender<Outgoing>,
}

impl LiveConnection {
    /// Marks activity (a frame from the client), as API Gateway's `LastActiveAt`.
    pub fn touch(&self) {
        self.last_active.store(now_millis(), Ordering::Relaxed);
    }

    pub fn last_active(&self) -> OffsetDateTime {
        let millis = self.last_active.load(Ordering::Relaxed);
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
            .unwrap_or(self.connected_at)
    }

    /// Queues a frame; waits up to [`POST_TIMEOUT`] when the socket is slow.
    pub async fn send(&self, frame: Outgoing) -> Result<(), PushError> {
        match tokio::time::timeout(POST_TIMEOUT, self.tx.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_closed)) => Err(PushError::Gone),
            Err(_elapsed) => Err(PushError::Timeout),
        }
    }

    /// Asks the socket to close without waiting (used at shutdown and by DELETE).
    pub fn close(&self, code: u16, reason: &'static str) {
        let _ = self.tx.try_send(Outgoing::Close(code, reason));
    }
}

fn now_millis() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// The table of live sockets.
#[derive(Default)]
pub struct Registry {
    live: RwLock<HashMap<ConnectionId, Arc<LiveConnection>>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a socket; returns the receiving end its task drains.
    pub fn register(
        &self,
        id: ConnectionId,
        claims: Claims,
        source_ip: IpAddr,
        user_agent: String,
    ) -> (Arc<LiveConnection>, mpsc::Receiver<Outgoing>) {
        let (tx, rx) = mpsc::channel(SOCKET_QUEUE_FRAMES);
        let now = OffsetDateTime::now_utc();
        let connection = Arc::new(LiveConnection {
            claims,
            connected_at: now,
            last_active: AtomicI64::new(now_millis()),
            source_ip,
            user_agent,
            tx,
        });
        if let Ok(mut live) = self.live.write() {
            live.insert(id, connection.clone());
        }
        (connection, rx)
    }

    pub fn unregister(&self, id: &ConnectionId) {
        if let Ok(mut live) = self.live.write() {
            live.remove(id);
        }
    }

    pub fn get(&self, id: &ConnectionId) -> Option<Arc<LiveConnection>> {
        self.live.read().ok().and_then(|live| live.get(id).cloned())
    }

    /// Asks every socket to close with `code` (1001 "going away" at shutdown).
    pub fn close_all(&self, code: u16, reason: &'static str) {
        if let Ok(live) = self.live.read() {
            for connection in live.values() {
                connection.close(code, reason);
            }
        }
    }
}

/// Posts frames to this process's sockets.
pub struct LocalPusher {
    registry: Arc<Registry>,
}

impl LocalPusher {
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }
}

#[async_trait]
impl ConnectionPusher for LocalPusher {
    async fn push(&self, connection: &ConnectionId, frame: &str) -> Result<(), PushError> {
        if frame.len() > MAX_FRAME_BYTES {
            return Err(PushError::PayloadTooLarge);
        }
        let live = self.registry.get(connection).ok_or(PushError::Gone)?;
        live.send(Outgoing::Text(frame.to_string())).await
    }
}
