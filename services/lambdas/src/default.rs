//! `$default`: the client actions (`ping`, `whoami`, `resume`), and the `unknown_action`
//! error for anything else; the connection stays open whatever was sent.
//!
//! The reply travels as the response body: the infra gives the `$default` route a route
//! response (`RouteResponseSelectionExpression` `$default`), so API Gateway sends the
//! integration's `body` back to the client as one text frame. A `resume` answers several
//! frames: the missed messages are posted to the caller through the management API
//! (`CALLBACK_URL`), in order, and the closing `resumed` frame is the body.

use std::sync::Arc;

use switchboard_aws::{load_sdk_config, ApiGatewayPusher, DynamoConfig, LocalDefaults};
use switchboard_core::config::{required, ConfigError};
use switchboard_core::connection::{self, ActionDeps};
use switchboard_core::history::HistoryConfig;
use switchboard_core::pusher::{ConnectionPusher, Frame};
use switchboard_model::{ConnectionId, ServerReply};

use crate::websocket::{claims, connection_id, RouteError, WebsocketEvent, WebsocketResponse};

/// What `$default` needs: the history (for `resume`) and a way to post to the caller.
#[derive(Clone)]
pub struct DefaultDeps {
    pub actions: ActionDeps,
    pub pusher: Arc<dyn ConnectionPusher>,
}

/// Builds the dependencies from the environment: `HISTORY_TABLE` (default
/// `SocketHistory`), `HISTORY_TTL_SECS`, `RESUME_MAX`, `CALLBACK_URL` (required),
/// `DYNAMODB_ENDPOINT`.
pub async fn build(lookup: impl Fn(&str) -> Option<String>) -> Result<DefaultDeps, ConfigError> {
    let history_config = HistoryConfig::from_lookup(&lookup)?;
    let table = history_config.table.clone();
    let callback_url: String = required(&lookup, "CALLBACK_URL")?;
    let callback_url = switchboard_aws::config::validate_endpoint("CALLBACK_URL", &callback_url)?;
    let dynamo = DynamoConfig::from_lookup(&lookup)?;
    let client = switchboard_aws::dynamodb_client(&dynamo).await;
    let sdk = load_sdk_config(LocalDefaults::NONE).await;
    tracing::info!(history_table = %table, %callback_url, "default ready");
    Ok(DefaultDeps {
        actions: ActionDeps {
            history: Arc::new(switchboard_aws::DynamoHistoryStore::new(client, table)),
            history_config,
            // In-band `refresh` is not served on AWS yet: clients get `refresh_unavailable`
            // and reconnect with a fresh token (the authorizer checks it).
            verifier: None,
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
