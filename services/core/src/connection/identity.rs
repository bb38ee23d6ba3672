//! When a connection's token runs out (docs/design.md: Token expiry and refresh). The claims
//! themselves come from the edge: the Lambda routes read them from the authorizer context
//! (`switchboard_lambdas::authorizer::AuthorizerContext`), the local gateway verifies the
//! token itself.

use switchboard_model::Claims;

/// When a connection holding `claims` must end: `exp` plus the verifier's leeway
/// (`JWT_LEEWAY_SECS`), in epoch seconds. `None` when the expiry is unknown.
pub fn token_deadline(claims: &Claims, leeway_secs: u64) -> Option<i64> {
    let leeway = i64::try_from(leeway_secs).unwrap_or(i64::MAX);
    claims.exp.map(|exp| exp.saturating_add(leeway))
}
