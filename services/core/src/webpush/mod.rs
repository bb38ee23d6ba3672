//! Web Push (RFC 8030, RFC 8291, RFC 8292): reaching a user's registered devices while
//! they have no live connection (docs/design.md: Web Push).
//!
//! [`PushSender`] is the port: send one encrypted notification to one device. The
//! adapter is [`WebPushSender`] (`sender.rs`): VAPID-signed (`vapid.rs`), `aes128gcm`
//! encrypted (`encrypt.rs`), over HTTPS with per-push-service concurrency and timeouts.
//! [`PushConfig`] holds the settings (`config.rs`).

mod config;
mod encrypt;
mod sender;
mod vapid;

pub use config::PushConfig;
pub use encrypt::{encrypt, EncryptError, MAX_PLAINTEXT_BYTES};
pub use sender::{SenderError, WebPushSender};
pub use vapid::{VapidError, VapidKeyPair, VapidKeys};

use async_trait::async_trait;

use std::sync::Arc;

use crate::devices::{Device, DeviceStore};

/// How urgent a notification is: the envelope's `push.urgency`, one type from envelope
/// to header.
pub use switchboard_model::push::Urgency;

/// One notification as sent to every device of a message: the plaintext payload (JSON,
/// at most [`MAX_PLAINTEXT_BYTES`]) and the push service's delivery options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The JSON the service worker receives (`{"id","cursor","title","body","url","tag"}`).
    pub payload: String,
    /// How long the push service keeps it for an unreachable device (`TTL` header).
    pub ttl_secs: u32,
    pub urgency: Urgency,
    /// A push service replaces an undelivered notification of the same topic (`Topic`
    /// header; at most 32 base64url characters).
    pub topic: Option<String>,
}

/// Why a push to one device failed, as the publisher needs to tell the cases apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The subscription no longer exists (404, 410): delete the device.
    #[error("subscription gone")]
    Gone,
    /// The push service refuses the size (413): retrying will not help.
    #[error("payload too large")]
    PayloadTooLarge,
    /// Throttled (429): retry with backoff.
    #[error("throttled")]
    Throttled,
    /// No answer in time: retry.
    #[error("timed out")]
    Timeout,
    /// A server-side or network failure (5xx, connection refused or reset): retry.
    #[error("transient failure: {0}")]
    Transient(String),
    /// Anything retrying cannot fix (400, 401, 403, a refused address).
    #[error("fatal failure: {0}")]
    Fatal(String),
}

impl SendError {
    /// Whether sending the same notification again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SendError::Throttled | SendError::Timeout | SendError::Transient(_)
        )
    }
}

/// Sends notifications to devices.
#[async_trait]
pub trait PushSender: Send + Sync {
    async fn send(&self, device: &Device, notification: &Notification) -> Result<(), SendError>;
}

/// Web Push as the publisher and the edges use it: where devices are kept, how pushes go
/// out, and the settings. `None` wherever push is off (no VAPID keys configured).
#[derive(Clone)]
pub struct WebPush {
    pub devices: Arc<dyn DeviceStore>,
    pub sender: Arc<dyn PushSender>,
    pub config: PushConfig,
}

impl WebPush {
    /// Web Push with `config`'s keys, the HTTPS sender and the store `devices` gives (asked
    /// for only when push is on); `None` when no VAPID keys are set. `serve` and the Lambdas
    /// build it here.
    pub fn from_config(
        config: PushConfig,
        devices: impl FnOnce() -> Arc<dyn DeviceStore>,
    ) -> Result<Option<Self>, SenderError> {
        let Some(vapid) = &config.vapid else {
            tracing::info!("Web Push off (no VAPID_* settings)");
            return Ok(None);
        };
        let sender = WebPushSender::new(&config)?;
        tracing::info!(
            public_key = vapid.public_key(),
            max_devices_per_user = config.max_devices_per_user,
            device_ttl_days = config.device_ttl.as_secs() / 86_400,
            concurrency_per_service = config.concurrency_per_service,
            timeout_secs = config.timeout.as_secs(),
            "Web Push on"
        );
        Ok(Some(Self {
            devices: devices(),
            sender: Arc::new(sender),
            config,
        }))
    }
}
