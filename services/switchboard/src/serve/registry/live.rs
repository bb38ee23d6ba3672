//! One live socket: its bounded outbox of shared frames and its close request.
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

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use switchboard_core::poster::PostError;
use switchboard_model::close::CLOSE_POLICY_VIOLATION;
use switchboard_model::Claims;
use time::OffsetDateTime;
use tokio::sync::Notify;

/// Frames queued per socket; one more and the socket is closed as a slow consumer. The
/// frames are shared with every other recipient, so a full outbox costs references, not
/// copies.
pub const OUTBOX_FRAMES: usize = 128;

/// Outbox capacity kept once drained; a larger queue (after a burst) is freed.
pub(super) const OUTBOX_KEPT: usize = 8;

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
pub(super) struct Outbox {
    pub(super) frames: VecDeque<Outgoing>,
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
    pub(super) fn new(claims: Claims, source_ip: IpAddr, user_agent: String) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            claims,
            connected_at: now,
            last_active: AtomicI64::new(now_millis()),
            source_ip,
            user_agent,
            outbox: Mutex::default(),
            wake: Notify::new(),
        }
    }

    pub(super) fn outbox(&self) -> MutexGuard<'_, Outbox> {
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
    /// socket that is closing or closed, answers [`PostError::Gone`].
    pub fn send(&self, frame: Outgoing) -> Result<(), PostError> {
        let mut outbox = self.outbox();
        if outbox.close.is_some() {
            return Err(PostError::Gone);
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
            return Err(PostError::Gone);
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
