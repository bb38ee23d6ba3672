//! Devices: the browser push subscriptions a user registered, so a message can reach them
//! while they have no live connection (docs/design.md: Web Push).
//!
//! [`DeviceStore`] is the port; [`MemoryDeviceStore`] is the in-process adapter (the
//! DynamoDB one, `DynamoDeviceStore`, lives in `switchboard-aws`, on the history table).
//! [`contract`] is the behaviour suite every adapter must pass. [`Subscription`] is a
//! validated `PushSubscription` as a browser's `PushManager.subscribe` answers it.

#[cfg(any(test, feature = "testkit"))]
pub mod contract;
mod memory;
mod subscription;

pub use memory::{MemoryDeviceStore, MAX_MEMORY_DEVICES};
pub(crate) use subscription::classify;
pub use subscription::{EndpointPolicy, Subscription, SubscriptionError, SubscriptionKeys};

use async_trait::async_trait;
use switchboard_model::{TenantId, UserId};
use time::OffsetDateTime;

/// Default `PUSH_MAX_DEVICES_PER_USER`: devices one user may register; a new one past it
/// replaces the user's oldest.
pub const DEFAULT_MAX_DEVICES_PER_USER: usize = 10;
/// Default `PUSH_DEVICE_TTL_DAYS`: a device not registered again for this long is gone.
pub const DEFAULT_DEVICE_TTL_DAYS: u64 = 60;

/// A device's id: derived from its endpoint (so registering the same browser again
/// replaces its device instead of adding one), URL-safe, at most 64 characters.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct DeviceId(String);

impl DeviceId {
    /// The id of the device at `endpoint`: the first 16 bytes of its SHA-256, base64url
    /// without padding (22 characters).
    pub fn of_endpoint(endpoint: &str) -> Self {
        use base64::Engine as _;
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(endpoint.as_bytes());
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16]))
    }

    /// An id read from outside (a URL path, a stored item): `None` unless it has the shape
    /// [`DeviceId::of_endpoint`] gives (1–64 characters of the base64url alphabet).
    pub fn parse(value: &str) -> Option<Self> {
        let valid = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        valid.then(|| Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One registered device of one user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub tenant: TenantId,
    pub user: UserId,
    pub id: DeviceId,
    /// Where pushes go, and the keys they are encrypted for.
    pub subscription: Subscription,
    /// When it was (last) registered: the oldest of a user's devices goes first.
    #[serde(with = "time::serde::rfc3339")]
    pub registered_at: OffsetDateTime,
    /// Unix seconds after which the device is gone (lookups never answer it).
    pub expires_at: i64,
}

/// Which of `others` (a user's live devices besides the one just registered) must go so
/// the user keeps at most `max_per_user` devices with it: the oldest first, by
/// `registered_at` and then id. Every adapter's `put` evicts by this rule.
pub fn oldest_beyond<'a>(
    others: impl IntoIterator<Item = &'a Device>,
    max_per_user: usize,
) -> Vec<DeviceId> {
    let mut others: Vec<&Device> = others.into_iter().collect();
    others.sort_by(|a, b| (a.registered_at, &a.id).cmp(&(b.registered_at, &b.id)));
    let excess = (others.len() + 1).saturating_sub(max_per_user.max(1));
    others
        .into_iter()
        .take(excess)
        .map(|d| d.id.clone())
        .collect()
}

/// Why a device store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The backing store failed or could not be reached.
    #[error("device store unavailable: {0}")]
    Unavailable(String),
    /// The store held an item that is not a valid device (skipped by lookups, logged).
    #[error("corrupt device item: {0}")]
    Corrupt(String),
    /// A page continuation this store did not issue (or for another tenant).
    #[error("invalid page continuation: {0}")]
    InvalidContinuation(String),
}

/// One page of a tenant's devices, sorted by user (a user's devices are never split over
/// two pages unless the user alone has more than `limit`), and where the next page starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DevicePage {
    pub devices: Vec<Device>,
    /// Opaque: pass it back unchanged to read the next page (`None`: no more).
    pub next: Option<String>,
    /// Items that could not be read as devices (logged by the adapter).
    pub skipped: usize,
}

/// The device port: the verbs Web Push needs. Lookups never answer a device past its
/// `expires_at` (before the store's TTL removes it).
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Adds or replaces (same tenant, user and id) one device, then removes the user's
    /// oldest devices (by `registered_at`, never the one just put) until at most
    /// `max_per_user` live ones remain. Answers the ids of the live devices it removed
    /// (expired ones go too, unreported).
    async fn put(&self, device: &Device, max_per_user: usize)
        -> Result<Vec<DeviceId>, DeviceError>;
    /// Removes one device of one user: `Ok(false)` when it was not there (another user's
    /// device of the same id is never touched).
    async fn remove(
        &self,
        tenant: &TenantId,
        user: &UserId,
        id: &DeviceId,
    ) -> Result<bool, DeviceError>;
    /// Every live device of these users within one tenant (at most 100 users per call).
    async fn list_users(
        &self,
        tenant: &TenantId,
        users: &[UserId],
    ) -> Result<Vec<Device>, DeviceError>;
    /// One page of the tenant's live devices from `start` (a previous page's `next`; `None`
    /// for the first page), at most `limit` devices (`limit >= 1`). Following `next` until
    /// it is `None` visits every live device of the tenant exactly once.
    async fn list_page(
        &self,
        tenant: &TenantId,
        start: Option<&str>,
        limit: usize,
    ) -> Result<DevicePage, DeviceError>;
}
