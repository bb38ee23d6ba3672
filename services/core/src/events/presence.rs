//! `user.online` / `user.offline` from roster changes (docs/design.md: Events).
//!
//! Both deployments call the same three steps: [`PresenceEvents::connected`] when a
//! connection is recorded, [`PresenceEvents::disconnected`] when it is removed (answering
//! the [`OfflineCheck`] to run after the offline delay, if the user has no connection
//! left), and [`PresenceEvents::check_offline`] when that delay has passed. `serve` calls
//! them from its gateway and runs checks on a timer; on AWS the events function calls them
//! for the roster table's stream records and runs checks from a delayed SQS message.
//!
//! The rules: every connect of a user announces `user.online` with the live count, except
//! a reconnect while an offline is pending (the user had no connection, but the delay had
//! not passed: the backend still thinks them online, and nothing changed for it). A
//! disconnect never announces anything itself: once the user has no connection, a check
//! runs after the delay and announces `user.offline` only if the version is still the one
//! of that disconnect. Every step is idempotent: a repeated step announces the same event
//! again (same id) or nothing.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchboard_model::{ConnectionId, TenantId, UserId};
use time::OffsetDateTime;

use super::{Event, EventError, EventKind, EventSink};
use crate::config::{optional, ConfigError};
use crate::online::{Added, Marked, OnlineError, OnlineStore, Removed, Reported};

/// `EVENTS_OFFLINE_DELAY_SECS` default: a user is offline after 3 s without a connection.
pub const DEFAULT_OFFLINE_DELAY_SECS: u64 = 3;
/// Its largest value: SQS's largest `DelaySeconds` (15 minutes), which carries the check
/// on AWS.
pub const MAX_OFFLINE_DELAY_SECS: u64 = 900;

/// The variable of the offline delay.
const OFFLINE_DELAY_VAR: &str = "EVENTS_OFFLINE_DELAY_SECS";

/// `EVENTS_OFFLINE_DELAY_SECS` (default 3, 0..=900): how long a user has had no connection
/// before `user.offline`. Read by `serve` and the AWS events function.
pub fn offline_delay(lookup: &impl Fn(&str) -> Option<String>) -> Result<Duration, ConfigError> {
    let secs = optional::<u64>(lookup, OFFLINE_DELAY_VAR)?.unwrap_or(DEFAULT_OFFLINE_DELAY_SECS);
    if secs > MAX_OFFLINE_DELAY_SECS {
        return Err(ConfigError::Invalid {
            name: OFFLINE_DELAY_VAR,
            value: secs.to_string(),
            reason: format!("must be between 0 and {MAX_OFFLINE_DELAY_SECS}"),
        });
    }
    Ok(Duration::from_secs(secs))
}

/// An offline check to run once the delay has passed: announce `user.offline` if the user
/// is still at `version` with no connection. The body of the delayed SQS message on AWS.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OfflineCheck {
    pub tenant: TenantId,
    pub user: UserId,
    pub version: u64,
}

/// Why a presence step failed; the caller retries the step (it is idempotent).
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    #[error(transparent)]
    Online(#[from] OnlineError),
    #[error(transparent)]
    Sink(#[from] EventError),
}

/// The presence half of the events: the online store and where events go.
#[derive(Clone)]
pub struct PresenceEvents {
    pub online: Arc<dyn OnlineStore>,
    pub sink: Arc<dyn EventSink>,
}

impl PresenceEvents {
    pub fn new(online: Arc<dyn OnlineStore>, sink: Arc<dyn EventSink>) -> Self {
        Self { online, sink }
    }

    /// A connection of `user` was recorded: announces `user.online` (answered) unless it
    /// is a reconnect while an offline was pending.
    pub async fn connected(
        &self,
        tenant: &TenantId,
        user: &UserId,
        connection: &ConnectionId,
        now: OffsetDateTime,
    ) -> Result<Option<Event>, PresenceError> {
        let (connections, version) = match self.online.add(tenant, user, connection).await? {
            Added::New {
                connections_before: 0,
                before: Reported::Online,
                ..
            } => return Ok(None),
            Added::New {
                connections,
                version,
                ..
            }
            | Added::Known {
                connections,
                version,
            } => (connections, version),
        };
        let event = Event::user(
            EventKind::UserOnline,
            tenant,
            user,
            connections,
            version,
            now,
        );
        self.sink.emit(vec![event.clone()]).await?;
        Ok(Some(event))
    }

    /// A connection of `user` was removed: the check to run after the offline delay when
    /// the user has no connection left (also when this removal was applied before and the
    /// user is still reported online with none).
    pub async fn disconnected(
        &self,
        tenant: &TenantId,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<Option<OfflineCheck>, PresenceError> {
        let check = |version| OfflineCheck {
            tenant: tenant.clone(),
            user: user.clone(),
            version,
        };
        Ok(match self.online.remove(tenant, user, connection).await? {
            Removed::Removed {
                connections: 0,
                version,
            }
            | Removed::Unknown {
                connections: 0,
                version,
                reported: Reported::Online,
            } => Some(check(version)),
            Removed::Removed { .. } | Removed::Unknown { .. } => None,
        })
    }

    /// The offline delay of `check` has passed: announces `user.offline` (answered) if
    /// nothing changed since.
    pub async fn check_offline(
        &self,
        check: &OfflineCheck,
        now: OffsetDateTime,
    ) -> Result<Option<Event>, PresenceError> {
        match self
            .online
            .mark_offline(&check.tenant, &check.user, check.version)
            .await?
        {
            Marked::Marked | Marked::Already => {
                let event = Event::user(
                    EventKind::UserOffline,
                    &check.tenant,
                    &check.user,
                    0,
                    check.version,
                    now,
                );
                self.sink.emit(vec![event.clone()]).await?;
                Ok(Some(event))
            }
            Marked::Stale => Ok(None),
        }
    }
}

#[cfg(test)]
mod delay_tests {
    use super::*;

    fn delay(value: &str) -> Result<Duration, ConfigError> {
        let value = value.to_string();
        offline_delay(&move |name: &str| (name == OFFLINE_DELAY_VAR).then(|| value.clone()))
    }

    #[test]
    fn the_offline_delay_is_0_to_900_seconds_default_3() {
        assert_eq!(
            offline_delay(&|_: &str| None).unwrap(),
            Duration::from_secs(3)
        );
        assert_eq!(delay("0").unwrap(), Duration::ZERO);
        assert_eq!(delay("900").unwrap(), Duration::from_secs(900));
        assert!(delay("901").is_err());
        assert!(delay("-1").is_err());
        assert!(delay("soon").is_err());
    }
}
