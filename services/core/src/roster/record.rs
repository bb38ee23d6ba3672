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
    /// The connection's token `exp`, epoch seconds (`tokenExpiresAt`, docs/design.md:
    /// Token expiry and refresh): past it (plus the leeway) the publisher skips and disconnects
    /// the connection; a `refresh` moves it. `None` for records of older writers: those
    /// stay valid until `expires_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at: Option<i64>,
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
            token_expires_at: None,
        }
    }

    /// The same record with its token's `exp` (`tokenExpiresAt`).
    pub fn with_token_expiry(mut self, token_expires_at: Option<i64>) -> Self {
        self.token_expires_at = token_expires_at;
        self
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

    /// Whether the connection's token expired before `now`, allowing `leeway_secs` (the
    /// verifier's `JWT_LEEWAY_SECS`). A record without `tokenExpiresAt` never has.
    pub fn token_expired_at(&self, now: OffsetDateTime, leeway_secs: u64) -> bool {
        token_expired(self.token_expires_at, now, leeway_secs)
    }
}

/// Whether a token expiring at `token_expires_at` (epoch seconds) has expired at `now`,
/// allowing `leeway_secs`: from `exp + leeway` on, the moment the local gateway closes
/// with 4001.
pub fn token_expired(token_expires_at: Option<i64>, now: OffsetDateTime, leeway_secs: u64) -> bool {
    let leeway = i64::try_from(leeway_secs).unwrap_or(i64::MAX);
    token_expires_at.is_some_and(|exp| exp.saturating_add(leeway) <= now.unix_timestamp())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn token_expiry_honours_the_leeway_and_absent_expiry_never_expires() {
        let now = OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        let record = ConnectionRecord::from_raw("c-1", "acme", "alice", vec![], now, 60).unwrap();
        assert!(!record.token_expired_at(now + time::Duration::days(1), 0));
        let record = record.with_token_expiry(Some(990));
        assert!(record.token_expired_at(now, 0));
        assert!(
            record.token_expired_at(now, 10),
            "at exp + leeway, as the local gateway"
        );
        assert!(!record.token_expired_at(now, 11));
        assert!(!token_expired(Some(i64::MAX), now, u64::MAX));
    }
}
