//! The WebSocket API's REQUEST authorizer (SPEC §2).
//!
//! API Gateway calls it on `$connect` with the handshake's headers and query parameters.
//! A valid token (query `token`, or the `Sec-WebSocket-Protocol` pair `bearer, <jwt>`)
//! yields an `Allow` policy for the `methodArn`, `principalId` = user, and the context
//! `{tenant, user, roles}` (roles space-joined) that `$connect`, `$default` and
//! `$disconnect` then read from `requestContext.authorizer`. Anything else is the error
//! `Unauthorized`, which API Gateway turns into a 401 without calling `$connect`.

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use lambda_runtime::Diagnostic;
use serde::{Deserialize, Serialize};
use switchboard_core::auth::{token_from_handshake, Verifier};

/// The event API Gateway sends a REQUEST authorizer (the WebSocket `requestContext`
/// fields it carries beyond these are ignored).
pub type AuthorizerRequest = ApiGatewayCustomAuthorizerRequestTypeRequest;

/// The policy answer, with our context.
pub type AuthorizerResponse = ApiGatewayCustomAuthorizerResponse<AuthorizerContext>;

/// What the routes behind the authorizer see as `requestContext.authorizer`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizerContext {
    pub tenant: String,
    pub user: String,
    /// Roles joined by single spaces (`Claims::split_roles` reads them back).
    pub roles: String,
}

/// The one answer for every refusal. Its message must be exactly `Unauthorized`: that
/// is how API Gateway knows to answer 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Unauthorized")]
pub struct Unauthorized;

impl From<Unauthorized> for Diagnostic {
    fn from(_: Unauthorized) -> Self {
        Diagnostic {
            error_type: "Unauthorized".to_string(),
            error_message: "Unauthorized".to_string(),
        }
    }
}

/// Decides one authorizer event.
pub async fn authorize(
    verifier: &Verifier,
    event: &AuthorizerRequest,
) -> Result<AuthorizerResponse, Unauthorized> {
    let Some(method_arn) = event.method_arn.as_deref().filter(|a| !a.is_empty()) else {
        tracing::warn!(reason = "no methodArn", "denied");
        return Err(Unauthorized);
    };
    let query_token = event
        .query_string_parameters
        .first("token")
        .filter(|t| !t.trim().is_empty());
    let subprotocol = subprotocol_header(event);
    let token = match query_token {
        Some(token) => token.trim().to_string(),
        None => match token_from_handshake(None, subprotocol.as_deref()) {
            Some(found) => found.token,
            None => {
                tracing::info!(reason = "no token", "denied");
                return Err(Unauthorized);
            }
        },
    };
    let claims = match verifier.verify(&token).await {
        Ok(claims) => claims,
        Err(error) => {
            tracing::info!(reason = %error, "denied");
            return Err(Unauthorized);
        }
    };
    tracing::info!(tenant = %claims.tenant, user = %claims.user, "allowed");

    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".to_string()];
    statement.effect = IamPolicyEffect::Allow;
    statement.resource = vec![method_arn.to_string()];
    let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
    policy.version = Some("2012-10-17".to_string());
    policy.statement = vec![statement];

    let mut response = AuthorizerResponse::default();
    response.principal_id = Some(claims.user.to_string());
    response.policy_document = policy;
    response.context = AuthorizerContext {
        tenant: claims.tenant.to_string(),
        user: claims.user.to_string(),
        roles: claims.roles_joined(),
    };
    Ok(response)
}

/// [`authorize`] for a raw event: one that does not even parse is refused the same way
/// (so API Gateway answers 401, not 500).
pub async fn authorize_json(
    verifier: &Verifier,
    event: serde_json::Value,
) -> Result<AuthorizerResponse, Unauthorized> {
    match serde_json::from_value::<AuthorizerRequest>(event) {
        Ok(event) => authorize(verifier, &event).await,
        Err(error) => {
            tracing::warn!(%error, reason = "unparseable event", "denied");
            Err(Unauthorized)
        }
    }
}

/// Every `Sec-WebSocket-Protocol` value of the request, joined with `,`.
fn subprotocol_header(event: &AuthorizerRequest) -> Option<String> {
    let name = http::header::SEC_WEBSOCKET_PROTOCOL;
    let mut values: Vec<&str> = event
        .multi_value_headers
        .get_all(&name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        values = event
            .headers
            .get_all(&name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
    }
    (!values.is_empty()).then(|| values.join(","))
}
