//! What the three WebSocket routes share: the event type, the identity the authorizer
//! put in `requestContext.authorizer`, and the response API Gateway expects.

use std::collections::BTreeMap;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::Diagnostic;
use serde::Serialize;
use switchboard_core::connection::ConnectionError;
use switchboard_model::{Claims, ConnectionId};

use crate::authorizer::AuthorizerContext;

/// The event API Gateway sends `$connect`, `$disconnect` and `$default`.
pub type WebsocketEvent = ApiGatewayWebsocketProxyRequest;

/// A route's answer: `{"statusCode": ..}`, with headers and a body only when set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebsocketResponse {
    pub status_code: u16,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl WebsocketResponse {
    pub fn status(status_code: u16) -> Self {
        Self {
            status_code,
            ..Self::default()
        }
    }

    pub fn ok() -> Self {
        Self::status(200)
    }
}

/// Why a route could not handle its event. `Identity` is answered (403); every other
/// variant is the invocation's error, which API Gateway turns into a 500.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("event has no requestContext.connectionId")]
    NoConnectionId,
    #[error("requestContext.connectionId: {0}")]
    InvalidConnectionId(String),
    #[error(transparent)]
    Connection(#[from] ConnectionError),
}

impl From<RouteError> for Diagnostic {
    fn from(error: RouteError) -> Self {
        let error_type = match &error {
            RouteError::NoConnectionId => "NoConnectionId",
            RouteError::InvalidConnectionId(_) => "InvalidConnectionId",
            RouteError::Connection(_) => "ConnectionError",
        };
        Diagnostic {
            error_type: error_type.to_string(),
            error_message: error.to_string(),
        }
    }
}

/// Runs a WebSocket route function: every event's payload to `handle`.
pub async fn serve<F, Fut>(handle: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(WebsocketEvent) -> Fut,
    Fut: std::future::Future<Output = Result<WebsocketResponse, RouteError>>,
{
    lambda_runtime::run(lambda_runtime::service_fn(
        |event: lambda_runtime::LambdaEvent<WebsocketEvent>| handle(event.payload),
    ))
    .await
}

/// The connection id of the event, parsed once here for the core.
pub fn connection_id(event: &WebsocketEvent) -> Result<ConnectionId, RouteError> {
    let id = event
        .request_context
        .connection_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or(RouteError::NoConnectionId)?;
    ConnectionId::parse(id).map_err(|e| RouteError::InvalidConnectionId(e.to_string()))
}

/// The claims the authorizer passed on as `requestContext.authorizer`
/// ([`AuthorizerContext`], read leniently: see its module). `exp` becomes the roster's
/// `tokenExpiresAt`; a context without it, from an older authorizer, gives claims without
/// expiry; a `refresh` must come from the context's `issuer`.
pub fn claims(event: &WebsocketEvent) -> Result<Claims, ConnectionError> {
    let context = AuthorizerContext::from_fields(&event.request_context.authorizer.fields)?;
    Claims::try_from(&context)
}
