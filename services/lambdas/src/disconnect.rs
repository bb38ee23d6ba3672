//! `$disconnect` (docs/design.md: Roster): removes the connection's roster record (idempotent). The
//! tenant comes from the authorizer context, which API Gateway passes to every route of
//! the connection.

use std::sync::Arc;

use switchboard_core::connection;
use switchboard_core::roster::RosterStore;

use crate::websocket::{claims, connection_id, RouteError, WebsocketEvent, WebsocketResponse};

/// What `$disconnect` needs, built once at init.
#[derive(Clone)]
pub struct DisconnectDeps {
    pub roster: Arc<dyn RosterStore>,
}

/// Builds the dependencies from the environment: the roster table (`ROSTER_TABLE`,
/// `DYNAMODB_ENDPOINT`).
pub async fn build(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<DisconnectDeps, switchboard_core::config::ConfigError> {
    let dynamo = switchboard_aws::DynamoConfig::from_lookup(&lookup)?;
    tracing::info!(table = %dynamo.table, "disconnect ready");
    Ok(DisconnectDeps {
        roster: Arc::new(switchboard_aws::DynamoRosterStore::from_config(&dynamo).await),
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
    Ok(WebsocketResponse::ok())
}
