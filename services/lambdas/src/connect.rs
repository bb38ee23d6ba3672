//! `$connect` (docs/design.md: Identity; Roster): the authorizer has already verified the token;
//! this writes the roster record from the identity in `requestContext.authorizer` and accepts the
//! handshake, answering `Sec-WebSocket-Protocol: bearer` when the client sent its token
//! that way (browsers close a socket whose offered subprotocol is not echoed).
//!
//! Tenant settings (`TENANTS_FILE`, docs/design.md: Tenants) are checked before the roster
//! write: a suspended tenant is refused (403); when the tenant has `maxConnections` or
//! `maxConnectionsPerUser`, the roster counts its (or the user's) live connections, up to
//! the cap, and a handshake at the cap is refused with 429 and
//! `{"error":"limit_exceeded","limit","message"}` (the publish API's answers; any non-2xx
//! from `$connect` refuses the upgrade: API Gateway makes no connection). Tenants without
//! caps cost no count.
//!
//! The count is not a reservation: concurrent `$connect`s of one tenant may each count
//! below the cap and all be admitted, so a tenant can hold at most its cap plus the number
//! of its `$connect`s in flight at once; one after another, the cap is exact.

use std::sync::Arc;

use http::header::SEC_WEBSOCKET_PROTOCOL;
use switchboard_core::auth::{offers_bearer, BEARER_SUBPROTOCOL};
use switchboard_core::connection::{self, ConnectConfig, ConnectionError};
use switchboard_core::http::ApiError;
use switchboard_core::roster::{RosterError, RosterStore};
use switchboard_core::tenants::{LimitError, Tenants};
use switchboard_core::usage::{connection_opened, Usage};
use switchboard_model::Claims;
use time::OffsetDateTime;

use crate::websocket::{claims, connection_id, RouteError, WebsocketEvent, WebsocketResponse};

/// What `$connect` needs, built once at init.
#[derive(Clone)]
pub struct ConnectDeps {
    pub roster: Arc<dyn RosterStore>,
    pub config: ConnectConfig,
    pub tenants: Tenants,
    /// Usage: the tenant's live counter and peak (docs/design.md: Usage; `None`: not
    /// counted).
    pub usage: Option<Usage>,
}

/// Builds the dependencies from the environment: the roster table (`ROSTER_TABLE`,
/// `DYNAMODB_ENDPOINT`), `CONNECTION_TTL_SECS` and the tenant settings (`TENANTS_FILE`).
pub async fn build(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<ConnectDeps, switchboard_core::config::ConfigError> {
    let dynamo = switchboard_aws::DynamoConfig::from_lookup(&lookup)?;
    let config = ConnectConfig::from_lookup(&lookup)?;
    let tenants = Tenants::from_lookup(&lookup)?;
    tracing::info!(table = %dynamo.roster_table, ?tenants, "connect ready");
    let stores = switchboard_aws::dynamo::DynamoStores::connect(&dynamo).await;
    Ok(ConnectDeps {
        roster: Arc::new(stores.roster()),
        config,
        tenants,
        usage: Some(crate::usage::build(&lookup, &stores)?),
    })
}

/// Handles one `$connect` event: 200 (with the `bearer` subprotocol when offered) once the
/// record is written; 403 without a roster write when the identity is missing or invalid
/// or the tenant is suspended; 429 without a roster write at a connection cap; an error
/// (500) when the roster fails.
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
    let admitted = admit(deps, &claims).await.map_err(ConnectionError::from)?;
    if let Err(limit) = admitted {
        tracing::warn!(%limit, %connection_id, tenant = %claims.tenant, "connect refused");
        return Ok(refusal(limit));
    }
    match connection::connect(
        deps.roster.as_ref(),
        &deps.config,
        &connection_id,
        &claims,
        OffsetDateTime::now_utc(),
    )
    .await
    {
        Ok(_) => {
            if let Some(usage) = &deps.usage {
                connection_opened(usage, &claims.tenant, OffsetDateTime::now_utc()).await;
            }
        }
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

/// The tenant settings' verdict on one more connection of `claims`: the roster is counted
/// only for the caps the tenant has, each up to its cap (a bounded read).
async fn admit(deps: &ConnectDeps, claims: &Claims) -> Result<Result<(), LimitError>, RosterError> {
    let settings = deps.tenants.settings(&claims.tenant);
    let (mut tenant_connections, mut user_connections) = (0, 0);
    if !settings.suspended {
        if let Some(cap) = settings.max_connections {
            tenant_connections = deps.roster.count(&claims.tenant, None, cap).await?;
        }
        if let Some(cap) = settings.max_connections_per_user {
            user_connections = deps
                .roster
                .count(&claims.tenant, Some(&claims.user), cap)
                .await?;
        }
    }
    Ok(deps
        .tenants
        .admit_connection(&claims.tenant, tenant_connections, user_connections))
}

/// The answer refusing a handshake by the tenant's settings, as the publish API answers
/// them ([`ApiError`]): 403 `tenant_suspended`; 429 `limit_exceeded` naming the cap.
fn refusal(limit: LimitError) -> WebsocketResponse {
    let error = ApiError::from(limit);
    let mut response = WebsocketResponse::status(error.status().as_u16());
    response
        .headers
        .insert("Content-Type".to_string(), "application/json".to_string());
    response.body = Some(error.body().to_string());
    response
}

/// Whether the client offered the `bearer` subprotocol (as in `bearer, <jwt>`).
fn offered_bearer(event: &WebsocketEvent) -> bool {
    [&event.multi_value_headers, &event.headers]
        .into_iter()
        .flat_map(|map| map.get_all(SEC_WEBSOCKET_PROTOCOL))
        .filter_map(|value| value.to_str().ok())
        .any(offers_bearer)
}
