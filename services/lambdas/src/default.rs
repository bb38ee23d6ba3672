//! `$default`: the client actions (`ping`, `whoami`, `resume`, `refresh`), and the
//! `unknown_action` error for anything else; the connection stays open whatever was sent.
//!
//! `refresh` (docs/design.md: Identity per issuer) verifies the new token with the
//! authorizer's key source; one of the connection's tenant and user moves the roster
//! item's `tokenExpiresAt` (an update conditional on the item existing) and answers
//! `refreshed`; anything else answers an error frame and the old expiry stands.
//!
//! The reply travels as the response body: the infra gives the `$default` route a route
//! response (`RouteResponseSelectionExpression` `$default`), so API Gateway sends the
//! integration's `body` back to the client as one text frame. A `resume` answers several
//! frames: the missed messages are posted to the caller through the management API
//! (`CALLBACK_URL`), in order, and the closing `resumed` frame is the body.

use std::sync::Arc;

use switchboard_aws::{
    load_sdk_config, ApiGatewayPusher, DynamoConfig, DynamoRosterStore, LocalDefaults,
};
use switchboard_core::auth::{AuthConfig, Verifier};
use switchboard_core::config::required;
use switchboard_core::connection::{self, ActionDeps};
use switchboard_core::history::HistoryConfig;
use switchboard_core::pusher::{ConnectionPusher, Frame};
use switchboard_model::{ConnectionId, ServerReply};

use crate::publish_api::StartupError;
use crate::websocket::{claims, connection_id, RouteError, WebsocketEvent, WebsocketResponse};

/// What `$default` needs: the roster and the verifier (for `refresh`), the history (for
/// `resume`) and a way to post to the caller.
#[derive(Clone)]
pub struct DefaultDeps {
    pub actions: ActionDeps,
    pub pusher: Arc<dyn ConnectionPusher>,
}

/// Builds the dependencies from the environment: the same JWT key source and claim
/// settings as the authorizer (a `refresh` token is verified exactly as a `$connect` one),
/// the roster table (`ROSTER_TABLE`), `HISTORY_TABLE` (default `SocketHistory`),
/// `HISTORY_TTL_SECS`, `RESUME_MAX`, `CALLBACK_URL` (required), `DYNAMODB_ENDPOINT`.
pub async fn build(lookup: impl Fn(&str) -> Option<String>) -> Result<DefaultDeps, StartupError> {
    let history_config = HistoryConfig::from_lookup(&lookup)?;
    let table = history_config.table.clone();
    let callback_url: String = required(&lookup, "CALLBACK_URL")?;
    let callback_url = switchboard_aws::config::validate_endpoint("CALLBACK_URL", &callback_url)?;
    let auth = AuthConfig::from_lookup(&lookup).and_then(AuthConfig::require_key_source)?;
    let verifier = Verifier::new(auth).await?;
    let dynamo = DynamoConfig::from_lookup(&lookup)?;
    let client = switchboard_aws::dynamodb_client(&dynamo).await;
    let roster = DynamoRosterStore::new(client.clone(), dynamo.table.clone(), dynamo.scan_segments);
    let sdk = load_sdk_config(LocalDefaults::NONE).await;
    tracing::info!(history_table = %table, roster_table = %dynamo.table, %callback_url, ?verifier, "default ready");
    Ok(DefaultDeps {
        actions: ActionDeps {
            roster: Arc::new(roster),
            history: Arc::new(switchboard_aws::DynamoHistoryStore::new(client, table)),
            history_config,
            verifier: Some(Arc::new(verifier)),
        },
        pusher: Arc::new(ApiGatewayPusher::new(&sdk, &callback_url)),
    })
}

/// Handles one `$default` event: 200 with the (last) reply frame as the body.
pub async fn handle(
    deps: &DefaultDeps,
    event: &WebsocketEvent,
) -> Result<WebsocketResponse, RouteError> {
    let connection = connection_id(event)?;
    let claims = claims(event).inspect_err(|error| {
        tracing::warn!(%error, connection_id = %connection, "message without identity");
    })?;
    let body = event.body.as_deref().unwrap_or("");
    let mut frames = connection::handle_client_frame(&deps.actions, body, &connection, &claims)
        .await
        .frames;
    let last = frames.pop().unwrap_or_default();
    let reply = match post_in_order(deps, &connection, &frames).await {
        Ok(()) => last,
        Err(error) => {
            tracing::warn!(%error, connection_id = %connection, sent = frames.len(), "could not post resumed frames");
            ServerReply::Error {
                error: "resume_failed".into(),
            }
            .to_json()
        }
    };
    Ok(WebsocketResponse {
        body: Some(reply),
        ..WebsocketResponse::ok()
    })
}

/// Posts `frames` to the caller one after another (their order is the history's).
async fn post_in_order(
    deps: &DefaultDeps,
    connection: &ConnectionId,
    frames: &[String],
) -> Result<(), String> {
    for frame in frames {
        deps.pusher
            .push(connection, &Frame::from(frame.as_str()))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
