//! `refresh`: a client renews its token in band; the new token must be the same identity,
//! and its `exp` becomes the roster item's `tokenExpiresAt` (docs/design.md: Identity per
//! issuer).

use switchboard_model::{Claims, ConnectionId, ServerReply};

use crate::auth::Verifier;
use crate::roster::RosterStore;

/// Error code of a `refresh` whose token does not verify.
pub const REFRESH_INVALID_TOKEN: &str = "invalid_token";
/// Error code of a `refresh` whose token comes from another issuer or names another tenant
/// or user.
pub const REFRESH_IDENTITY_MISMATCH: &str = "identity_mismatch";
/// Error code of a `refresh` sent to an edge that cannot verify tokens
/// ([`reply_to`](super::reply_to)).
pub const REFRESH_UNAVAILABLE: &str = "refresh_unavailable";
/// Error code of a valid `refresh` whose new expiry could not be recorded in the roster
/// (the connection is no longer listed, or the roster failed): the old expiry stands.
pub const REFRESH_FAILED: &str = "refresh_failed";

/// Verifies a `refresh` token against the connection's identity and records its `exp` as
/// the roster item's `tokenExpiresAt`: the reply, and the new claims when it succeeded
/// (same issuer, tenant and user; its `exp` is the new expiry).
pub(super) async fn refresh(
    verifier: &Verifier,
    roster: &dyn RosterStore,
    token: &str,
    connection_id: &ConnectionId,
    claims: &Claims,
) -> (ServerReply, Option<Claims>) {
    let refused = |error: &str| {
        (
            ServerReply::Error {
                error: error.to_string(),
            },
            None,
        )
    };
    let fresh = match verifier.verify(token).await {
        Ok(fresh) => fresh,
        Err(error) => {
            tracing::info!(%connection_id, %error, "refresh refused: invalid token");
            return refused(REFRESH_INVALID_TOKEN);
        }
    };
    // Two issuers may share a tenant (`allowSharedTenants`): the same names from another
    // issuer are still another identity.
    if fresh.issuer != claims.issuer || fresh.tenant != claims.tenant || fresh.user != claims.user {
        tracing::warn!(
            %connection_id,
            tenant = %claims.tenant,
            user = %claims.user,
            issuer = ?claims.issuer,
            token_tenant = %fresh.tenant,
            token_user = %fresh.user,
            token_issuer = ?fresh.issuer,
            "refresh refused: token of another identity"
        );
        return refused(REFRESH_IDENTITY_MISMATCH);
    }
    let Some(exp) = fresh.exp else {
        // The verifier always sets `exp`; refuse rather than extend forever.
        return refused(REFRESH_INVALID_TOKEN);
    };
    match roster
        .set_token_expiry(&fresh.tenant, connection_id, exp)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(%connection_id, tenant = %fresh.tenant, "refresh refused: connection no longer in the roster");
            return refused(REFRESH_FAILED);
        }
        Err(error) => {
            tracing::warn!(%connection_id, tenant = %fresh.tenant, %error, "refresh failed: roster unavailable");
            return refused(REFRESH_FAILED);
        }
    }
    tracing::info!(%connection_id, tenant = %fresh.tenant, user = %fresh.user, exp, "token refreshed");
    (ServerReply::Refreshed { exp }, Some(fresh))
}
