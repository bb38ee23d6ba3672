//! The WebSocket API's REQUEST authorizer (docs/design.md: Identity).
//!
//! API Gateway calls it on `$connect` with the handshake's headers and query parameters.
//! A valid token (query `token`, or the `Sec-WebSocket-Protocol` pair `bearer, <jwt>`)
//! yields an `Allow` policy for the `methodArn`, `principalId` = user, and the context
//! `{tenant, user, roles, exp, adminScope, issuer}` (roles space-joined; `issuer` only when
//! the token's trust source has one) that `$connect`, `$default` and `$disconnect` then
//! read from `requestContext.authorizer` (`$default` pins `refresh` to that issuer).
//! Anything else is the error `Unauthorized`, which API Gateway turns into a 401 without
//! calling `$connect`. A valid token of a suspended tenant (`TENANTS_FILE`, docs/design.md:
//! Tenants) gets a `Deny` policy: API Gateway answers 403, without calling `$connect`.
//!
//! Size: API Gateway refuses an authorizer result over 8 KB with a 500. A token is at most
//! 8 KiB (so a token with thousands of roles is refused outright, `Unauthorized`), and the
//! context carries at most [`MAX_CONTEXT_ROLES_BYTES`] of roles: the roles Switchboard
//! acts on (`admin`, `publisher`) first, then the others in token order while they fit;
//! the rest are dropped (and logged), which only ever removes rights. A response that
//! would still exceed [`MAX_RESPONSE_BYTES`] is refused rather than sent.

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use lambda_runtime::Diagnostic;
use switchboard_core::auth::{token_from_handshake, Verifier};
use switchboard_core::tenants::Tenants;
use switchboard_model::{Claims, Role};

mod context;

pub use context::AuthorizerContext;

/// Most bytes of space-joined roles an authorizer context carries.
pub const MAX_CONTEXT_ROLES_BYTES: usize = 2048;
/// Largest authorizer response sent (API Gateway's limit is 8 KB; kept below it).
pub const MAX_RESPONSE_BYTES: usize = 8000;

/// The event API Gateway sends a REQUEST authorizer (the WebSocket `requestContext`
/// fields it carries beyond these are ignored).
pub type AuthorizerRequest = ApiGatewayCustomAuthorizerRequestTypeRequest;

/// The policy answer, with our context.
pub type AuthorizerResponse = ApiGatewayCustomAuthorizerResponse<AuthorizerContext>;

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

/// What the authorizer decides with, built once at init.
#[derive(Debug)]
pub struct Authorizer {
    pub verifier: Verifier,
    /// Whose tokens are refused (`suspended`).
    pub tenants: Tenants,
}

impl From<Verifier> for Authorizer {
    /// An authorizer without tenant settings (no tenant suspended).
    fn from(verifier: Verifier) -> Self {
        Self {
            verifier,
            tenants: Tenants::unlimited(),
        }
    }
}

/// Builds the authorizer from the environment: exactly one key source (`JWT_HS256_SECRET`,
/// `JWT_JWKS_FILE`, `JWT_JWKS_URL` or `JWT_ISSUERS_FILE`), the claim settings and the
/// tenant settings (`TENANTS_FILE`). With no key source, keys that cannot be loaded or an
/// invalid settings file, the function does not start (it never allows everyone).
pub async fn build(lookup: impl Fn(&str) -> Option<String>) -> Result<Authorizer, String> {
    let config = switchboard_core::auth::AuthConfig::from_lookup(&lookup)
        .and_then(switchboard_core::auth::AuthConfig::require_key_source)
        .map_err(|e| e.to_string())?;
    let tenants = Tenants::from_lookup(&lookup).map_err(|e| e.to_string())?;
    let verifier = Verifier::new(config)
        .await
        .map_err(|e| format!("keys unusable: {e}"))?;
    tracing::info!(?verifier, ?tenants, "authorizer ready");
    Ok(Authorizer { verifier, tenants })
}

/// Decides one authorizer event.
pub async fn authorize(
    authorizer: &Authorizer,
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
    let claims = match authorizer.verifier.verify(&token).await {
        Ok(claims) => claims,
        Err(error) => {
            tracing::info!(reason = %error, "denied");
            return Err(Unauthorized);
        }
    };
    if authorizer.tenants.is_suspended(&claims.tenant) {
        tracing::info!(tenant = %claims.tenant, user = %claims.user, reason = "tenant suspended", "denied");
        return Ok(deny(&claims, method_arn));
    }
    allow(&claims, method_arn)
}

/// The policy document granting (`Allow`) or refusing (`Deny`) `execute-api:Invoke` on
/// `method_arn`.
fn policy(effect: IamPolicyEffect, method_arn: &str) -> ApiGatewayCustomAuthorizerPolicy {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".to_string()];
    statement.effect = effect;
    statement.resource = vec![method_arn.to_string()];
    let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
    policy.version = Some("2012-10-17".to_string());
    policy.statement = vec![statement];
    policy
}

/// The `Deny` answer for a valid token API Gateway must refuse (403): no context beyond
/// the tenant and user, for the logs.
pub fn deny(claims: &Claims, method_arn: &str) -> AuthorizerResponse {
    let mut response = AuthorizerResponse::default();
    response.principal_id = Some(claims.user.to_string());
    response.policy_document = policy(IamPolicyEffect::Deny, method_arn);
    response.context = AuthorizerContext {
        tenant: claims.tenant.to_string(),
        user: claims.user.to_string(),
        // The deny context has always said `exp: 0` (and empty roles and scope).
        exp: Some(0),
        ..AuthorizerContext::default()
    };
    response
}

/// The `Allow` answer for verified `claims`, kept under API Gateway's size limit.
pub fn allow(claims: &Claims, method_arn: &str) -> Result<AuthorizerResponse, Unauthorized> {
    let Some(exp) = claims.exp else {
        tracing::warn!(reason = "claims without exp", "denied");
        return Err(Unauthorized);
    };
    let (roles, dropped) = context_roles(&claims.roles);
    if dropped > 0 {
        tracing::warn!(
            tenant = %claims.tenant,
            user = %claims.user,
            kept_bytes = roles.len(),
            dropped,
            "roles trimmed to fit the authorizer context"
        );
    }

    let mut response = AuthorizerResponse::default();
    response.principal_id = Some(claims.user.to_string());
    response.policy_document = policy(IamPolicyEffect::Allow, method_arn);
    response.context = AuthorizerContext::of(claims, roles, exp);
    let size = serde_json::to_vec(&response)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_RESPONSE_BYTES {
        tracing::warn!(size, reason = "authorizer response too large", "denied");
        return Err(Unauthorized);
    }
    tracing::info!(tenant = %claims.tenant, user = %claims.user, "allowed");
    Ok(response)
}

/// The roles an authorizer context carries, space-joined within
/// [`MAX_CONTEXT_ROLES_BYTES`]: `admin` and `publisher` first, then the others in order,
/// each once, while they fit. Also returns how many were dropped.
pub fn context_roles(roles: &[String]) -> (String, usize) {
    let known = [Role::Admin.as_str(), Role::Publisher.as_str()];
    let ordered = known
        .iter()
        .filter(|k| roles.iter().any(|r| r == *k))
        .copied()
        .chain(
            roles
                .iter()
                .map(String::as_str)
                .filter(|r| !known.contains(r)),
        );
    let mut joined = String::new();
    let mut kept: Vec<&str> = Vec::new();
    let mut dropped = 0;
    for role in ordered {
        if kept.contains(&role) {
            continue;
        }
        let needed = role.len() + usize::from(!joined.is_empty());
        if joined.len() + needed > MAX_CONTEXT_ROLES_BYTES {
            dropped += 1;
            continue;
        }
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(role);
        kept.push(role);
    }
    (joined, dropped)
}

/// [`authorize`] for a raw event: one that does not even parse is refused the same way
/// (so API Gateway answers 401, not 500).
pub async fn authorize_json(
    authorizer: &Authorizer,
    event: serde_json::Value,
) -> Result<AuthorizerResponse, Unauthorized> {
    match serde_json::from_value::<AuthorizerRequest>(event) {
        Ok(event) => authorize(authorizer, &event).await,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use switchboard_model::{AdminScope, TenantId, UserId};

    use super::*;

    const ARN: &str = "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/main/$connect";

    fn claims(roles: Vec<String>) -> Claims {
        Claims {
            roles,
            exp: Some(1_900_000_000),
            ..Claims::new(
                TenantId::parse("acme").unwrap(),
                UserId::parse("alice").unwrap(),
            )
        }
    }

    #[test]
    fn ten_thousand_roles_fit_in_8_kb_with_the_known_roles_kept() {
        let mut roles: Vec<String> = (0..10_000).map(|i| format!("group-{i:05}")).collect();
        roles.push("publisher".into());
        roles.insert(5_000, "admin".into());
        let response = allow(&claims(roles), ARN).unwrap();
        let json = serde_json::to_string(&response).unwrap();
        assert!(json.len() < 8 * 1024, "{} bytes", json.len());
        let kept = Claims::split_roles(&response.context.roles);
        assert_eq!(&kept[..3], ["admin", "publisher", "group-00000"]);
        assert!(response.context.roles.len() <= MAX_CONTEXT_ROLES_BYTES);
        assert!(kept.len() > 100, "fills the budget: {}", kept.len());
    }

    #[test]
    fn roles_within_budget_are_kept_in_order_once() {
        let roles = ["reader", "publisher", "reader", "admin"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            context_roles(&roles),
            ("admin publisher reader".to_string(), 0)
        );
        assert_eq!(context_roles(&[]), (String::new(), 0));
        let one_too_many: Vec<String> = (0..=MAX_CONTEXT_ROLES_BYTES / 2)
            .map(|i| format!("{}", i % 10))
            .collect();
        // Single-digit roles repeat: only ten distinct ones, nothing dropped.
        assert_eq!(context_roles(&one_too_many).1, 0);
        let long: Vec<String> = (0..3).map(|i| format!("{i}{}", "x".repeat(1000))).collect();
        let (joined, dropped) = context_roles(&long);
        assert_eq!((joined.len(), dropped), (2003, 1));
    }

    #[test]
    fn context_says_exp_and_admin_scope() {
        let mut c = claims(vec!["admin".into()]);
        let response = allow(&c, ARN).unwrap();
        assert_eq!(response.context.exp, Some(1_900_000_000));
        assert_eq!(response.context.admin_scope, "tenant");
        c.admin_scope = AdminScope::Global;
        assert_eq!(allow(&c, ARN).unwrap().context.admin_scope, "global");
        c.exp = None;
        assert_eq!(allow(&c, ARN).unwrap_err(), Unauthorized);
    }

    #[test]
    fn an_oversized_response_is_refused_not_sent() {
        let arn = format!("{ARN}{}", "x".repeat(MAX_RESPONSE_BYTES));
        assert_eq!(allow(&claims(vec![]), &arn).unwrap_err(), Unauthorized);
    }
}
