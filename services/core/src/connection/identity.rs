//! Claims rebuilt from the authorizer context the Lambda edge receives, and when a
//! connection's token runs out (docs/design.md: Token expiry and refresh).

use switchboard_model::{AdminScope, Claims, TenantId, UserId};

use super::ConnectionError;

/// Rebuilds claims from an authorizer context (`tenant`, `user`, `roles` as strings).
pub fn claims_from_context(
    tenant: Option<&str>,
    user: Option<&str>,
    roles: Option<&str>,
) -> Result<Claims, ConnectionError> {
    let tenant = tenant.ok_or_else(|| ConnectionError::Identity("tenant missing".into()))?;
    let user = user.ok_or_else(|| ConnectionError::Identity("user missing".into()))?;
    Ok(Claims {
        tenant: TenantId::parse(tenant)
            .map_err(|e| ConnectionError::Identity(format!("tenant: {e}")))?,
        user: UserId::parse(user).map_err(|e| ConnectionError::Identity(format!("user: {e}")))?,
        roles: roles.map(Claims::split_roles).unwrap_or_default(),
        // The context does not say how far `admin` reaches: the narrower scope.
        admin_scope: AdminScope::Tenant,
        exp: None,
        issuer: None,
    })
}

/// [`claims_from_context`] plus the two fields the authorizer adds (docs/design.md: Token
/// expiry and refresh): `exp` (epoch seconds; a number, or its decimal text — API Gateway
/// may hand context values on as strings) and `adminScope` (`"global"`; anything else, or
/// absent, is the narrower tenant scope). An unreadable `exp` is an identity error, an absent
/// one `None`.
pub fn claims_from_authorizer_context(
    tenant: Option<&str>,
    user: Option<&str>,
    roles: Option<&str>,
    exp: Option<&serde_json::Value>,
    admin_scope: Option<&str>,
) -> Result<Claims, ConnectionError> {
    let mut claims = claims_from_context(tenant, user, roles)?;
    claims.exp = match exp {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => Some(
            n.as_i64()
                .ok_or_else(|| ConnectionError::Identity(format!("exp: {n} is not whole")))?,
        ),
        Some(serde_json::Value::String(text)) => Some(
            text.trim()
                .parse::<i64>()
                .map_err(|_| ConnectionError::Identity(format!("exp: {text:?} is not a number")))?,
        ),
        Some(other) => {
            return Err(ConnectionError::Identity(format!(
                "exp: {other} is not a number"
            )))
        }
    };
    if admin_scope == Some("global") {
        claims.admin_scope = AdminScope::Global;
    }
    Ok(claims)
}

/// When a connection holding `claims` must end: `exp` plus the verifier's leeway
/// (`JWT_LEEWAY_SECS`), in epoch seconds. `None` when the expiry is unknown.
pub fn token_deadline(claims: &Claims, leeway_secs: u64) -> Option<i64> {
    let leeway = i64::try_from(leeway_secs).unwrap_or(i64::MAX);
    claims.exp.map(|exp| exp.saturating_add(leeway))
}
