//! The `ConnectionPoster` port: sends one frame to one live connection (API Gateway's
//! `PostToConnection`, or the local server's socket table).

use async_trait::async_trait;
use axum::extract::ws::Utf8Bytes;
use switchboard_model::ConnectionId;

/// One text frame as the publisher sends it: encoded once per message and shared by every
/// connection it goes to (a clone is a reference count, never a copy of the text). The
/// local server hands the same bytes to each socket's WebSocket writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame(Utf8Bytes);

impl Frame {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The text as a WebSocket text payload (shares the bytes).
    pub fn to_ws_text(&self) -> Utf8Bytes {
        self.0.clone()
    }
}

impl From<String> for Frame {
    fn from(text: String) -> Self {
        Self(Utf8Bytes::from(text))
    }
}

impl From<&str> for Frame {
    fn from(text: &str) -> Self {
        Self(Utf8Bytes::from(text))
    }
}

/// Why a post to a connection failed, as the publisher needs to tell the cases apart.
/// Adapters map their transport's errors here by error kind, never by matching strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
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

impl PostError {
    /// Whether trying the same post again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            PostError::Throttled | PostError::Timeout | PostError::Transient(_)
        )
    }
}

/// Sends frames to connections.
#[async_trait]
pub trait ConnectionPoster: Send + Sync {
    /// Posts one text frame to one connection.
    async fn post(&self, connection: &ConnectionId, frame: &Frame) -> Result<(), PostError>;
    /// Ends one connection whose token expired: API Gateway's `DeleteConnection`; the local
    /// server closes the socket with 4001 (`token expired`). A connection already gone is
    /// not an error.
    async fn close(&self, connection: &ConnectionId) -> Result<(), PostError>;
}

#[cfg(test)]
mod tests {
    use super::Frame;

    #[test]
    fn frame_clones_share_the_text() {
        let frame = Frame::from(String::from(r#"{"id":"m","data":1}"#));
        let copy = frame.clone();
        assert_eq!(copy.as_str(), frame.as_str());
        assert_eq!(copy.as_str().as_ptr(), frame.as_str().as_ptr());
        assert_eq!(
            frame.to_ws_text().as_str().as_ptr(),
            frame.as_str().as_ptr()
        );
    }
}
