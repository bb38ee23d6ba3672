//! The `ConnectionPusher` port: sends one frame to one live connection (API Gateway's
//! `PostToConnection`, or the local server's socket table).

use async_trait::async_trait;
use switchboard_model::ConnectionId;

/// Why a post to a connection failed, as the publisher needs to tell the cases apart.
/// Adapters map their transport's errors here by error kind, never by matching strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The connection no longer exists (HTTP 410): remove it from the roster.
    #[error("connection gone")]
    Gone,
    /// Throttled (HTTP 429): retry with backoff.
    #[error("throttled")]
    Throttled,
    /// The frame is larger than the connection accepts (HTTP 413): retrying will not help.
    #[error("payload too large")]
    PayloadTooLarge,
    /// The post did not complete in time: retry.
    #[error("timed out")]
    Timeout,
    /// A server-side or network failure (5xx, connection reset): retry.
    #[error("transient failure: {0}")]
    Transient(String),
    /// Anything retrying cannot fix (403, malformed request, misconfiguration).
    #[error("fatal failure: {0}")]
    Fatal(String),
}

impl PushError {
    /// Whether trying the same post again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            PushError::Throttled | PushError::Timeout | PushError::Transient(_)
        )
    }
}

/// Sends frames to connections.
#[async_trait]
pub trait ConnectionPusher: Send + Sync {
    /// Posts one text frame to one connection.
    async fn push(&self, connection: &ConnectionId, frame: &str) -> Result<(), PushError>;
}
