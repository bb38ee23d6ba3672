//! `$default` (SPEC §7): the client actions `ping` and `whoami`, and the
//! `unknown_action` error for anything else; the connection stays open whatever was sent.
//!
//! The reply travels as the response body: the infra gives the `$default` route a route
//! response (`RouteResponseSelectionExpression` `$default`), so API Gateway sends the
//! integration's `body` back to the client as one text frame. Without a route response
//! the body would be discarded.

use switchboard_core::connection;

use crate::websocket::{claims, connection_id, RouteError, WebsocketEvent, WebsocketResponse};

/// Handles one `$default` event: 200 with the reply frame as the body.
pub fn handle(event: &WebsocketEvent) -> Result<WebsocketResponse, RouteError> {
    let connection_id = connection_id(event)?;
    let claims = claims(event).inspect_err(|error| {
        tracing::warn!(%error, connection_id, "message without identity");
    })?;
    let body = event.body.as_deref().unwrap_or("");
    let reply = connection::reply_to(body, connection_id, &claims);
    Ok(WebsocketResponse {
        body: Some(reply.to_json()),
        ..WebsocketResponse::ok()
    })
}
