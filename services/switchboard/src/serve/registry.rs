//! The live sockets of this process, by connection id, and the `ConnectionPusher` that
//! posts to them (what API Gateway's connection table and `PostToConnection` are in AWS).
//!
//! Each socket has a bounded outbox of shared frames and a close request beside it (not in
//! the frame queue). A post never waits: when the outbox is full the socket is asked to
//! close (1008) and the post reports the connection gone, so one client that stops reading
//! costs the others nothing. A close request is seen by the socket task at once, even
//! while it is blocked writing queued frames to a client that does not read.
//!
//! The outbox is a plain `VecDeque` under a mutex with one `Notify` to wake the socket
//! task: an idle connection holds no queue allocation at all (a bounded `mpsc` channel
//! allocates a block of slots and a `watch` channel its own shared state per socket,
//! about 2 KiB together), and a post is one uncontended lock, a push and a wake.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use switchboard_core::pusher::{ConnectionPusher, Frame, PushError};
use switchboard_model::close::{CLOSE_POLICY_VIOLATION, CLOSE_TOKEN_EXPIRED};
use switchboard_model::{Claims, ConnectionId, TenantId, UserId, MAX_FRAME_BYTES};
use time::OffsetDateTime;
use tokio::sync::Notify;

/// Frames queued per socket; one more and the socket is closed as a slow consumer. The
/// frames are shared with every other recipient, so a full outbox costs references, not
/// copies.
pub const OUTBOX_FRAMES: usize = 128;

/// Outbox capacity kept once drained; a larger queue (after a burst) is freed.
const OUTBOX_KEPT: usize = 8;

/// Close code for a client that does not read fast enough (policy violation).
pub const CLOSE_SLOW_CONSUMER: u16 = CLOSE_POLICY_VIOLATION;

/// What the socket task is told to send.
#[derive(Debug)]
pub enum Outgoing {
    Text(Utf8Bytes),
    Binary(Bytes),
}

/// A request to close a socket: the close frame's code and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseRequest {
    pub code: u16,
    pub reason: &'static str,
}

/// What the socket task is to do next.
#[derive(Debug)]
pub enum Next {
    /// Close with this code (a close request wins over queued frames).
    Close(CloseRequest),
    /// Send this frame.
    Frame(Outgoing),
    /// Nothing queued.
    Idle,
}

#[derive(Default)]
struct Outbox {
    frames: VecDeque<Outgoing>,
    close: Option<CloseRequest>,
}

/// One live socket.
pub struct LiveConnection {
    pub claims: Claims,
    pub connected_at: OffsetDateTime,
    last_active: AtomicI64,
    pub source_ip: IpAddr,
    pub user_agent: String,
    outbox: Mutex<Outbox>,
    /// Wakes the socket task: a frame was queued or a close requested. `notify_one`
    /// keeps a permit when the task is not waiting, so no wake-up is lost.
    wake: Notify,
}

impl LiveConnection {
    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        // Nothing panics while holding this lock; a poisoned one still holds a valid queue.
        self.outbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Marks activity (a frame from the client), as API Gateway's `LastActiveAt`.
    pub fn touch(&self) {
        self.last_active.store(now_millis(), Ordering::Relaxed);
    }

    pub fn last_active(&self) -> OffsetDateTime {
        let millis = self.last_active.load(Ordering::Relaxed);
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
            .unwrap_or(self.connected_at)
    }

    /// Queues a frame without waiting. A full outbox closes the socket (1008) and, like a
    /// socket that is closing or closed, answers [`PushError::Gone`].
    pub fn send(&self, frame: Outgoing) -> Result<(), PushError> {
        let mut outbox = self.outbox();
        if outbox.close.is_some() {
            return Err(PushError::Gone);
        }
        if outbox.frames.len() >= OUTBOX_FRAMES {
            outbox.close = Some(CloseRequest {
                code: CLOSE_SLOW_CONSUMER,
                reason: "not reading fast enough",
            });
            drop(outbox);
            self.wake.notify_one();
            tracing::info!(
                tenant = %self.claims.tenant,
                user = %self.claims.user,
                "outbox full: closing a client that does not read"
            );
            return Err(PushError::Gone);
        }
        outbox.frames.push_back(frame);
        drop(outbox);
        self.wake.notify_one();
        Ok(())
    }

    /// Asks the socket to close. Never waits, and never queues behind frames: the socket
    /// task checks the request before each frame. The first request wins.
    pub fn close(&self, code: u16, reason: &'static str) {
        let mut outbox = self.outbox();
        if outbox.close.is_some() {
            return;
        }
        outbox.close = Some(CloseRequest { code, reason });
        drop(outbox);
        self.wake.notify_one();
    }

    /// The close request, if any.
    pub fn close_request(&self) -> Option<CloseRequest> {
        self.outbox().close
    }

    /// The socket task's next step: a close request first, else the oldest frame.
    pub fn next(&self) -> Next {
        let mut outbox = self.outbox();
        if let Some(request) = outbox.close {
            return Next::Close(request);
        }
        match outbox.frames.pop_front() {
            Some(frame) => {
                if outbox.frames.is_empty() && outbox.frames.capacity() > OUTBOX_KEPT {
                    outbox.frames = VecDeque::new();
                }
                Next::Frame(frame)
            }
            None => Next::Idle,
        }
    }

    /// Whether a frame or a close request is waiting.
    pub fn has_work(&self) -> bool {
        let outbox = self.outbox();
        outbox.close.is_some() || !outbox.frames.is_empty()
    }

    /// Frames waiting.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.outbox().frames.len()
    }

    /// Resolves after the next [`send`](Self::send) or [`close`](Self::close) (at once
    /// if one came since the last wake-up). Check [`next`](Self::next) before waiting.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Resolves with the close request once there is one.
    pub async fn closing(&self) -> CloseRequest {
        loop {
            if let Some(request) = self.close_request() {
                return request;
            }
            self.wake.notified().await;
        }
    }
}

fn now_millis() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// Connection caps (docs/design.md: The one-machine binary).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// `MAX_CONNECTIONS`: live sockets of this process (503 at the handshake beyond).
    pub max_connections: usize,
    /// `MAX_CONNECTIONS_PER_USER`: live sockets of one tenant's user (429 beyond).
    pub max_per_user: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 100_000,
            max_per_user: 100,
        }
    }
}

/// Why a socket was not registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error("the server holds its maximum of {0} connections")]
    ServerFull(usize),
    #[error("this user already holds the maximum of {0} connections")]
    UserFull(usize),
}

#[derive(Default)]
struct Table {
    live: HashMap<ConnectionId, Arc<LiveConnection>>,
    per_user: HashMap<(TenantId, UserId), usize>,
}

/// The table of live sockets.
#[derive(Default)]
pub struct Registry {
    table: RwLock<Table>,
    limits: ConnectionLimits,
}

impl Registry {
    pub fn new(limits: ConnectionLimits) -> Self {
        Self {
            table: RwLock::default(),
            limits,
        }
    }

    /// Whether the server is at `MAX_CONNECTIONS` (checked before a token is verified).
    pub fn is_full(&self) -> bool {
        self.table
            .read()
            .map(|t| t.live.len() >= self.limits.max_connections)
            .unwrap_or(true)
    }

    /// Registers a socket within the caps; returns what its task drains.
    pub fn register(
        &self,
        id: ConnectionId,
        claims: Claims,
        source_ip: IpAddr,
        user_agent: String,
    ) -> Result<Arc<LiveConnection>, RegisterError> {
        let mut table = self
            .table
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if table.live.len() >= self.limits.max_connections {
            return Err(RegisterError::ServerFull(self.limits.max_connections));
        }
        let user = (claims.tenant.clone(), claims.user.clone());
        let held = table.per_user.get(&user).copied().unwrap_or(0);
        if held >= self.limits.max_per_user {
            return Err(RegisterError::UserFull(self.limits.max_per_user));
        }
        let now = OffsetDateTime::now_utc();
        let connection = Arc::new(LiveConnection {
            claims,
            connected_at: now,
            last_active: AtomicI64::new(now_millis()),
            source_ip,
            user_agent,
            outbox: Mutex::default(),
            wake: Notify::new(),
        });
        table.per_user.insert(user, held + 1);
        table.live.insert(id, connection.clone());
        Ok(connection)
    }

    pub fn unregister(&self, id: &ConnectionId) {
        let mut table = self
            .table
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(connection) = table.live.remove(id) {
            let user = (
                connection.claims.tenant.clone(),
                connection.claims.user.clone(),
            );
            match table.per_user.get(&user).copied() {
                Some(n) if n > 1 => {
                    table.per_user.insert(user, n - 1);
                }
                _ => {
                    table.per_user.remove(&user);
                }
            }
        }
    }

    pub fn get(&self, id: &ConnectionId) -> Option<Arc<LiveConnection>> {
        self.table
            .read()
            .ok()
            .and_then(|table| table.live.get(id).cloned())
    }

    /// Asks every socket to close with `code` (1001 "going away" at shutdown).
    pub fn close_all(&self, code: u16, reason: &'static str) {
        if let Ok(table) = self.table.read() {
            for connection in table.live.values() {
                connection.close(code, reason);
            }
        }
    }
}

/// The first four characters of every connection id this process makes, random per
/// process. Two `serve` processes sharing one DynamoDB roster each find the other's
/// connections there; the tag lets each tell "gone from here" (its own id, no socket:
/// remove the roster item) from "another process's connection" (leave it alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceTag(String);

impl InstanceTag {
    pub fn random() -> Self {
        use base64::Engine;
        let bytes: [u8; 3] = rand::random();
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn owns(&self, id: &ConnectionId) -> bool {
        id.as_str().starts_with(&self.0)
    }
}

/// Posts frames to this process's sockets.
pub struct LocalPusher {
    registry: Arc<Registry>,
    instance: InstanceTag,
    foreign_skipped: prometheus_client::metrics::counter::Counter,
}

impl LocalPusher {
    pub fn new(
        registry: Arc<Registry>,
        instance: InstanceTag,
        foreign_skipped: prometheus_client::metrics::counter::Counter,
    ) -> Self {
        Self {
            registry,
            instance,
            foreign_skipped,
        }
    }
}

#[async_trait]
impl ConnectionPusher for LocalPusher {
    async fn push(&self, connection: &ConnectionId, frame: &Frame) -> Result<(), PushError> {
        if frame.len() > MAX_FRAME_BYTES {
            return Err(PushError::PayloadTooLarge);
        }
        match self.registry.get(connection) {
            Some(live) => live.send(Outgoing::Text(frame.to_ws_text())),
            None if self.instance.owns(connection) => Err(PushError::Gone),
            None => {
                // Another process's socket (a shared roster table): not ours to deliver to,
                // and never ours to remove. Each process serves only its own sockets.
                self.foreign_skipped.inc();
                tracing::debug!(connection_id = %connection, "connection of another instance skipped");
                Ok(())
            }
        }
    }

    async fn close(&self, connection: &ConnectionId) -> Result<(), PushError> {
        // Another instance's socket, or one already closed: nothing of ours to end.
        if let Some(live) = self.registry.get(connection) {
            live.close(CLOSE_TOKEN_EXPIRED, "token expired");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn claims(user: &str) -> Claims {
        Claims::new(
            TenantId::parse("acme").unwrap(),
            UserId::parse(user).unwrap(),
        )
    }

    fn id(n: usize) -> ConnectionId {
        ConnectionId::parse(format!("C{n:015}")).unwrap()
    }

    #[test]
    fn caps_apply_per_server_and_per_user_and_free_up_on_unregister() {
        let registry = Registry::new(ConnectionLimits {
            max_connections: 3,
            max_per_user: 2,
        });
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert!(registry
            .register(id(1), claims("alice"), ip, String::new())
            .is_ok());
        assert!(registry
            .register(id(2), claims("alice"), ip, String::new())
            .is_ok());
        assert_eq!(
            registry
                .register(id(3), claims("alice"), ip, String::new())
                .err(),
            Some(RegisterError::UserFull(2))
        );
        assert!(registry
            .register(id(3), claims("bob"), ip, String::new())
            .is_ok());
        assert!(registry.is_full());
        assert_eq!(
            registry
                .register(id(4), claims("carol"), ip, String::new())
                .err(),
            Some(RegisterError::ServerFull(3))
        );
        registry.unregister(&id(1));
        assert!(!registry.is_full());
        assert!(registry
            .register(id(4), claims("alice"), ip, String::new())
            .is_ok());
    }

    fn registered() -> (Registry, ConnectionId, Arc<LiveConnection>) {
        let registry = Registry::new(ConnectionLimits::default());
        let id = ConnectionId::parse("AAAAAAAAAAAAAAAA").unwrap();
        let live = registry
            .register(
                id.clone(),
                claims("alice"),
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                String::new(),
            )
            .unwrap();
        (registry, id, live)
    }

    #[tokio::test]
    async fn only_own_ids_are_reported_gone() {
        let tag = InstanceTag("Abcd".into());
        let pusher = LocalPusher::new(
            Arc::new(Registry::new(ConnectionLimits::default())),
            tag.clone(),
            Default::default(),
        );
        let frame = Frame::from("x");
        let own = ConnectionId::parse("Abcd000000000000").unwrap();
        let foreign = ConnectionId::parse("Wxyz000000000000").unwrap();
        assert_eq!(pusher.push(&own, &frame).await, Err(PushError::Gone));
        assert_eq!(pusher.push(&foreign, &frame).await, Ok(()));
        assert_eq!(pusher.foreign_skipped.get(), 1);
        assert_eq!(InstanceTag::random().as_str().len(), 4);
    }

    #[tokio::test]
    async fn a_full_outbox_closes_with_1008_and_reports_gone_without_waiting() {
        let (registry, id, live) = registered();
        let pusher = LocalPusher::new(
            Arc::new(registry),
            InstanceTag("AAAA".into()),
            Default::default(),
        );
        let frame = Frame::from("x");
        for _ in 0..OUTBOX_FRAMES {
            assert_eq!(pusher.push(&id, &frame).await, Ok(()));
        }
        assert_eq!(pusher.push(&id, &frame).await, Err(PushError::Gone));
        assert_eq!(
            live.close_request(),
            Some(CloseRequest {
                code: CLOSE_SLOW_CONSUMER,
                reason: "not reading fast enough"
            })
        );
        // Closing: later posts are gone at once too.
        assert_eq!(pusher.push(&id, &frame).await, Err(PushError::Gone));
    }

    #[tokio::test]
    async fn close_ends_an_expired_token_connection_with_4001() {
        let (registry, id, live) = registered();
        let pusher = LocalPusher::new(
            Arc::new(registry),
            InstanceTag("AAAA".into()),
            Default::default(),
        );
        assert_eq!(pusher.close(&id).await, Ok(()));
        assert!(matches!(
            live.next(),
            Next::Close(CloseRequest {
                code: CLOSE_TOKEN_EXPIRED,
                reason: "token expired"
            })
        ));
        // Unknown here (closed already, or another instance's): nothing to do.
        let absent = ConnectionId::parse("Wxyz000000000000").unwrap();
        assert_eq!(pusher.close(&absent).await, Ok(()));
    }

    #[tokio::test]
    async fn close_is_seen_before_queued_frames_and_first_request_wins() {
        let (_registry, _id, live) = registered();
        for _ in 0..OUTBOX_FRAMES {
            live.send(Outgoing::Text("x".into())).unwrap();
        }
        live.close(1000, "deleted");
        live.close(1001, "server shutting down");
        assert!(matches!(
            live.next(),
            Next::Close(CloseRequest { code: 1000, .. })
        ));
        assert_eq!(live.closing().await.code, 1000);
        assert_eq!(live.queued(), OUTBOX_FRAMES);
    }

    #[tokio::test]
    async fn frames_come_out_in_order_and_a_wake_up_is_never_lost() {
        let (_registry, _id, live) = registered();
        assert!(matches!(live.next(), Next::Idle));
        assert!(!live.has_work());
        // Sent before anyone waits: the wake-up is kept for the next wait.
        live.send(Outgoing::Text("1".into())).unwrap();
        live.send(Outgoing::Text("2".into())).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), live.woken())
            .await
            .expect("a kept wake-up");
        assert!(live.has_work());
        for expected in ["1", "2"] {
            match live.next() {
                Next::Frame(Outgoing::Text(text)) => assert_eq!(text.as_str(), expected),
                other => panic!("expected frame {expected}, got {other:?}"),
            }
        }
        assert!(matches!(live.next(), Next::Idle));
        // A drained burst gives its queue back.
        for _ in 0..OUTBOX_FRAMES {
            live.send(Outgoing::Text("x".into())).unwrap();
        }
        while let Next::Frame(_) = live.next() {}
        assert!(live.outbox().frames.capacity() <= OUTBOX_KEPT);
    }
}
