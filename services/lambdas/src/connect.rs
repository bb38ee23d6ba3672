//! `$connect` (docs/design.md: Identity; Roster): the authorizer has already verified the token; this writes
//! the roster record from the identity in `requestContext.authorizer` and accepts the
//! handshake, answering `Sec-WebSocket-Protocol: bearer` when the client sent its token
//! that way (browsers close a socket whose offered subprotocol is not echoed).

use std::sync::Arc;

use http::header::SEC_WEBSOCKET_PROTOCOL;
use switchboard_core::auth::{offers_bearer, BEARER_SUBPROTOCOL};
use switchboard_core::config::ConnectConfig;
use switchboard_core::connection::{self, ConnectionError};
use switchboard_core::roster::RosterStore;
use time::OffsetDateTime;

use crate::websocket::{claims, connection_id, RouteError, WebsocketEvent, WebsocketResponse};

/// What `$connect` needs, built once at init.
#[derive(Clone)]
pub struct ConnectDeps {
    pub roster: Arc<dyn RosterStore>,
    pub config: ConnectConfig,
}

/// Builds the dependencies from the environment: the roster table (`ROSTER_TABLE`,
/// `DYNAMODB_ENDPOINT`) and `CONNECTION_TTL_SECS`.
pub async fn build(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<ConnectDeps, switchboard_core::config::ConfigError> {
    let dynamo = switchboard_aws::DynamoConfig::from_lookup(&lookup)?;
    let config = ConnectConfig::from_lookup(&lookup)?;
    tracing::info!(table = %dynamo.table, "connect ready");
    Ok(ConnectDeps {
        roster: Arc::new(switchboard_aws::DynamoRosterStore::from_config(&dynamo).await),
        config,
    })
}

/// Handles one `$connect` event: 200 (with the `bearer` subprotocol when offered) once the
/// record is written; 403 without a roster write when the identity is missing or invalid;
/// an error (500) when the roster fails.
pub async fn handle(
    deps: &ConnectDeps,
    event: &WebsocketEvent,
) -> Result<WebsocketResponse, RouteError> {
    let connection_id = connection_id(event)?;
    let claims = match claims(event) {
        Ok(claims) => claims,
        Err(error) => {
            tracing::warn!(%error, %connection_id, "connect refused");
            return Ok(WebsocketResponse::status(403));
        }
    };
    match connection::connect(
        deps.roster.as_ref(),
        &deps.config,
        &connection_id,
        &claims,
        OffsetDateTime::now_utc(),
    )
    .await
    {
        Ok(_) => {}
        Err(ConnectionError::Identity(reason)) => {
            tracing::warn!(%reason, %connection_id, "connect refused");
            return Ok(WebsocketResponse::status(403));
        }
        Err(error) => {
            tracing::error!(%error, %connection_id, "connect failed");
            return Err(error.into());
        }
    }
    let mut response = WebsocketResponse::ok();
    if offered_bearer(event) {
        response.headers.insert(
            "Sec-WebSocket-Protocol".to_string(),
            BEARER_SUBPROTOCOL.to_string(),
        );
    }
    Ok(response)
}

/// Whether the client offered the `bearer` subprotocol (as in `bearer, <jwt>`).
fn offered_bearer(event: &WebsocketEvent) -> bool {
    [&event.multi_value_headers, &event.headers]
        .into_iter()
        .flat_map(|map| map.get_all(SEC_WEBSOCKET_PROTOCOL))
        .filter_map(|value| value.to_str().ok())
        .any(offers_bearer)
}
