//! The life of one connection: `$connect` (roster write), `$default` (client actions) and
//! `$disconnect` (roster delete). The Lambdas and the local server both call these.
//!
//! Token expiry (docs/design.md: Token expiry and refresh): [`Claims::exp`] is when the
//! connection's token expires; an edge ends the connection (4001, `token expired`) at
//! [`token_deadline`] unless the client refreshed it in band. [`handle_client_frame`] serves every
//! client action including `refresh`, and returns the new claims (with their `exp`) when a refresh
//! succeeded so the edge can move its deadline (local gateway). The roster item keeps the token's
//! `exp` as `tokenExpiresAt` ([`connect`] writes it, a successful `refresh` moves it), so
//! the publisher can skip and disconnect connections whose token expired (AWS, where no
//! timer holds the socket).
//!
//! Here: `$connect` and `$disconnect`. `identity.rs`: the token deadline; `actions.rs`:
//! `$default` (client frames); `refresh.rs`: in-band token refresh; `push.rs`: devices
//! registered and removed over the socket; `config.rs`: the connect handler's settings.

mod actions;
mod config;
mod identity;
mod push;
mod refresh;
#[cfg(test)]
mod tests;

use switchboard_model::{Claims, ConnectionId, TenantId};
use time::OffsetDateTime;

use crate::roster::{ConnectionRecord, RosterError, RosterStore};

pub use actions::{handle_client_frame, reply_to, ActionDeps, FrameOutcome};
pub use config::{ConnectConfig, MAX_CONNECTION_TTL_SECS};
pub use identity::token_deadline;

/// Why a connection event could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The identity the authorizer passed on is missing or invalid.
    #[error("invalid identity context: {0}")]
    Identity(String),
    #[error(transparent)]
    Roster(#[from] RosterError),
}

/// `$connect`: records the connection in the roster.
pub async fn connect(
    roster: &dyn RosterStore,
    config: &ConnectConfig,
    connection_id: &ConnectionId,
    claims: &Claims,
    now: OffsetDateTime,
) -> Result<ConnectionRecord, ConnectionError> {
    let record = ConnectionRecord::new(
        connection_id.clone(),
        claims.tenant.clone(),
        claims.user.clone(),
        claims.roles.clone(),
        now,
        config.connection_ttl_secs,
    )
    .with_token_expiry(claims.exp);
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
    connection_id: &ConnectionId,
) -> Result<(), ConnectionError> {
    roster.remove(tenant, connection_id).await?;
    tracing::info!(connection_id = %connection_id, tenant = %tenant, "disconnected");
    Ok(())
}
