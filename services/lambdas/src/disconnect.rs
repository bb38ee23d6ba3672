//! `$disconnect` (docs/design.md: Roster): removes the connection's roster record (idempotent). The
//! tenant comes from the authorizer context, which API Gateway passes to every route of
//! the connection.

use std::sync::Arc;

use switchboard_core::connection;
use switchboard_core::roster::RosterStore;
use switchboard_core::usage::{connection_closed, Usage};
use time::OffsetDateTime;

use crate::websocket::{claims, connection_id, RouteError, WebsocketEvent, WebsocketResponse};

/// What `$disconnect` needs, built once at init.
#[derive(Clone)]
pub struct DisconnectDeps {
    pub roster: Arc<dyn RosterStore>,
    /// Usage: the connection's minutes and the tenant's live counter (docs/design.md:
    /// Usage; `None`: not counted).
    pub usage: Option<Usage>,
}

/// Builds the dependencies from the environment: the roster table (`ROSTER_TABLE`,
/// `DYNAMODB_ENDPOINT`).
pub async fn build(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<DisconnectDeps, switchboard_core::config::ConfigError> {
    let dynamo = switchboard_aws::DynamoConfig::from_lookup(&lookup)?;
    tracing::info!(table = %dynamo.roster_table, "disconnect ready");
    let stores = switchboard_aws::dynamo::DynamoStores::connect(&dynamo).await;
    Ok(DisconnectDeps {
        roster: Arc::new(stores.roster()),
        usage: Some(crate::usage::build(&lookup, &stores)?),
    })
}

/// Handles one `$disconnect` event: 200 once the record is gone. API Gateway ignores
/// the answer (the socket is already closed), so failures are errors, logged, and the
/// record's TTL removes it eventually.
pub async fn handle(
    deps: &DisconnectDeps,
    event: &WebsocketEvent,
) -> Result<WebsocketResponse, RouteError> {
    let connection_id = connection_id(event)?;
    let claims = claims(event).inspect_err(|error| {
        tracing::warn!(%error, %connection_id, "disconnect without identity");
    })?;
    connection::disconnect(deps.roster.as_ref(), &claims.tenant, &connection_id)
        .await
        .inspect_err(|error| tracing::error!(%error, %connection_id, "disconnect failed"))?;
    if let Some(usage) = &deps.usage {
        // `connectedAt` is epoch milliseconds; an unreadable one counts no minutes.
        let now = OffsetDateTime::now_utc();
        let connected_at = OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(event.request_context.connected_at) * 1_000_000,
        )
        .unwrap_or(now);
        connection_closed(usage, &claims.tenant, connected_at, now).await;
    }
    Ok(WebsocketResponse::ok())
}
