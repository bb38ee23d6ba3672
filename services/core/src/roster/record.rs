//! The connection record stored in the roster.

use serde::{Deserialize, Serialize};
use switchboard_model::{ConnectionId, IdError, TenantId, UserId};
use time::OffsetDateTime;

/// Default roster item lifetime: 2 h 5 min, a little over API Gateway's 2 h connection cap.
pub const DEFAULT_CONNECTION_TTL_SECS: i64 = 7_500;

/// Why a record could not be built from raw values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("tenant: {0}")]
    Tenant(IdError),
    #[error("user: {0}")]
    User(IdError),
    #[error("connectionId: {0}")]
    Connection(IdError),
}

/// One live connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionRecord {
    pub connection_id: ConnectionId,
    pub tenant: TenantId,
    pub user: UserId,
    pub roles: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub connected_at: OffsetDateTime,
    /// Epoch seconds after which the record is dead (the table's TTL attribute).
    pub expires_at: i64,
}

impl ConnectionRecord {
    /// A record for a connection made `connected_at`, living `ttl_secs`.
    pub fn new(
        connection_id: ConnectionId,
        tenant: TenantId,
        user: UserId,
        roles: Vec<String>,
        connected_at: OffsetDateTime,
        ttl_secs: i64,
    ) -> Self {
        let connected_at = connected_at.replace_nanosecond(0).unwrap_or(connected_at);
        Self {
            expires_at: connected_at.unix_timestamp() + ttl_secs,
            connection_id,
            tenant,
            user,
            roles,
            connected_at,
        }
    }

    /// Validates raw strings into a record: an invalid id is refused here, before any
    /// store sees it.
    pub fn from_raw(
        connection_id: &str,
        tenant: &str,
        user: &str,
        roles: Vec<String>,
        connected_at: OffsetDateTime,
        ttl_secs: i64,
    ) -> Result<Self, RecordError> {
        Ok(Self::new(
            ConnectionId::parse(connection_id).map_err(RecordError::Connection)?,
            TenantId::parse(tenant).map_err(RecordError::Tenant)?,
            UserId::parse(user).map_err(RecordError::User)?,
            roles,
            connected_at,
            ttl_secs,
        ))
    }

    /// Whether the record has outlived its `expiresAt` at `now`.
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now.unix_timestamp()
    }
}
