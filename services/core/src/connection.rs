//! The life of one connection: `$connect` (roster write), `$default` (client actions) and
//! `$disconnect` (roster delete). The Lambdas and the local server both call these.

use std::sync::Arc;

use switchboard_model::{Claims, ClientAction, ConnectionId, ServerReply, TenantId, UserId};
use time::OffsetDateTime;

use crate::config::ConnectConfig;
use crate::history::{resume, HistoryConfig, HistoryStore, ResumeError};
use crate::roster::{ConnectionRecord, RosterError, RosterStore};

/// Why a connection event could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The identity the authorizer passed on is missing or invalid.
    #[error("invalid identity context: {0}")]
    Identity(String),
    #[error(transparent)]
    Roster(#[from] RosterError),
}

/// Rebuilds claims from an authorizer context (`tenant`, `user`, `roles` as strings).
pub fn claims_from_context(
    tenant: Option<&str>,
    user: Option<&str>,
    roles: Option<&str>,
) -> Result<Claims, ConnectionError> {
    let tenant = tenant.ok_or_else(|| ConnectionError::Identity("tenant missing".into()))?;
    let user = user.ok_or_else(|| ConnectionError::Identity("user missing".into()))?;
    Ok(Claims {
        tenant: TenantId::parse(tenant)
            .map_err(|e| ConnectionError::Identity(format!("tenant: {e}")))?,
        user: UserId::parse(user).map_err(|e| ConnectionError::Identity(format!("user: {e}")))?,
        roles: roles.map(Claims::split_roles).unwrap_or_default(),
    })
}

/// `$connect`: records the connection in the roster.
pub async fn connect(
    roster: &dyn RosterStore,
    config: &ConnectConfig,
    connection_id: &str,
    claims: &Claims,
    now: OffsetDateTime,
) -> Result<ConnectionRecord, ConnectionError> {
    let connection_id = ConnectionId::parse(connection_id)
        .map_err(|e| ConnectionError::Identity(format!("connectionId: {e}")))?;
    let record = ConnectionRecord::new(
        connection_id,
        claims.tenant.clone(),
        claims.user.clone(),
        claims.roles.clone(),
        now,
        config.connection_ttl_secs,
    );
    roster.put(&record).await?;
    tracing::info!(
        connection_id = %record.connection_id,
        tenant = %record.tenant,
        user = %record.user,
        "connected"
    );
    Ok(record)
}

/// `$disconnect`: removes the connection (idempotent).
pub async fn disconnect(
    roster: &dyn RosterStore,
    tenant: &TenantId,
    connection_id: &str,
) -> Result<(), ConnectionError> {
    let connection_id = ConnectionId::parse(connection_id)
        .map_err(|e| ConnectionError::Identity(format!("connectionId: {e}")))?;
    roster.remove(tenant, &connection_id).await?;
    tracing::info!(connection_id = %connection_id, tenant = %tenant, "disconnected");
    Ok(())
}

/// `$default`: the reply to one client frame (SPEC §7). The connection stays open whatever
/// the client sent.
pub fn reply_to(text: &str, connection_id: &str, claims: &Claims) -> ServerReply {
    sync_reply(ClientAction::parse(text), connection_id, claims)
}

fn sync_reply(action: ClientAction, connection_id: &str, claims: &Claims) -> ServerReply {
    match action {
        ClientAction::Ping => ServerReply::Pong,
        ClientAction::WhoAmI => ServerReply::WhoAmI {
            connection_id: connection_id.to_string(),
            tenant: claims.tenant.to_string(),
            user: claims.user.to_string(),
        },
        // `resume` needs the history store: `handle_client_frame` answers it. Here (no
        // store) it is an action this caller does not offer.
        ClientAction::Resume { .. } | ClientAction::Unknown => ServerReply::Error {
            error: "unknown_action".into(),
        },
    }
}

/// What the `$default` actions need besides the caller's identity.
#[derive(Clone)]
pub struct ActionDeps {
    pub history: Arc<dyn HistoryStore>,
    pub history_config: HistoryConfig,
}

/// Handles one client frame on `$default`: the frames to send back to the caller, in order
/// (one reply, or for `resume` every missed frame and then `resumed`). The connection
/// stays open whatever was sent.
pub async fn handle_client_frame(
    deps: &ActionDeps,
    text: &str,
    connection_id: &str,
    claims: &Claims,
) -> Vec<String> {
    match ClientAction::parse(text) {
        ClientAction::Resume { since } => {
            let outcome = resume(
                deps.history.as_ref(),
                &deps.history_config,
                &claims.tenant,
                &claims.user,
                &since,
                OffsetDateTime::now_utc(),
            )
            .await;
            match outcome {
                Ok(outcome) => {
                    let resumed = outcome.resumed_frame();
                    let mut frames = outcome.frames;
                    frames.push(resumed);
                    frames
                }
                Err(ResumeError::InvalidCursor(_)) => vec![ServerReply::Error {
                    error: "invalid_cursor".into(),
                }
                .to_json()],
                Err(ResumeError::Unavailable(error)) => {
                    tracing::warn!(%error, connection_id, "resume failed: history unavailable");
                    vec![ServerReply::Error {
                        error: "history_unavailable".into(),
                    }
                    .to_json()]
                }
            }
        }
        action => vec![sync_reply(action, connection_id, claims).to_json()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roster::MemoryRosterStore;

    fn claims() -> Claims {
        claims_from_context(Some("acme"), Some("alice"), Some("admin publisher")).unwrap()
    }

    #[test]
    fn context_roles_split_and_ids_validated() {
        assert_eq!(claims().roles, vec!["admin", "publisher"]);
        assert!(claims_from_context(Some("a#b"), Some("u"), None).is_err());
        assert!(claims_from_context(None, Some("u"), None).is_err());
    }

    #[tokio::test]
    async fn connect_then_disconnect_round_trips_the_roster() {
        let roster = MemoryRosterStore::new();
        let now = OffsetDateTime::now_utc();
        let record = connect(&roster, &ConnectConfig::default(), "c-1", &claims(), now)
            .await
            .unwrap();
        assert_eq!(record.expires_at, now.unix_timestamp() + 7_500);
        assert_eq!(
            roster.list_tenant(&claims().tenant).await.unwrap(),
            vec![record]
        );
        disconnect(&roster, &claims().tenant, "c-1").await.unwrap();
        disconnect(&roster, &claims().tenant, "c-1").await.unwrap();
        assert!(roster.list_all().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn connect_refuses_invalid_connection_id_before_writing() {
        let roster = MemoryRosterStore::new();
        let result = connect(
            &roster,
            &ConnectConfig::default(),
            "bad id",
            &claims(),
            OffsetDateTime::now_utc(),
        )
        .await;
        assert!(matches!(result, Err(ConnectionError::Identity(_))));
        assert!(roster.list_all().await.unwrap().is_empty());
    }

    #[test]
    fn replies_follow_spec() {
        let c = claims();
        assert_eq!(
            reply_to(r#"{"action":"ping"}"#, "c-1", &c),
            ServerReply::Pong
        );
        assert_eq!(
            reply_to(r#"{"action":"whoami"}"#, "c-1", &c),
            ServerReply::WhoAmI {
                connection_id: "c-1".into(),
                tenant: "acme".into(),
                user: "alice".into()
            }
        );
        assert_eq!(
            reply_to("hello", "c-1", &c),
            ServerReply::Error {
                error: "unknown_action".into()
            }
        );
    }
}
