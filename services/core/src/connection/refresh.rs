//! `refresh`: a client renews its token in band; the new token must be the same identity,
//! and its `exp` becomes the roster item's `tokenExpiresAt` (docs/design.md: Token
//! expiry and refresh).

use switchboard_model::{Claims, ConnectionId, ErrorCode, ServerReply};

use crate::auth::Verifier;
use crate::roster::RosterStore;

/// Verifies a `refresh` token against the connection's identity and records its `exp` as
/// the roster item's `tokenExpiresAt`: the reply, and the new claims when it succeeded
/// (same issuer, tenant and user; its `exp` is the new expiry). Refused: a token that does
/// not verify ([`ErrorCode::InvalidToken`]); one from another issuer or naming another
/// tenant or user ([`ErrorCode::IdentityMismatch`]); a new expiry the roster could not
/// record, the connection no longer listed or the roster failing
/// ([`ErrorCode::RefreshFailed`]: the old expiry stands).
pub(super) async fn refresh(
    verifier: &Verifier,
    roster: &dyn RosterStore,
    token: &str,
    connection_id: &ConnectionId,
    claims: &Claims,
) -> (ServerReply, Option<Claims>) {
    let refused = |error: ErrorCode| (ServerReply::Error { error }, None);
    let fresh = match verifier.verify(token).await {
        Ok(fresh) => fresh,
        Err(error) => {
            tracing::info!(%connection_id, %error, "refresh refused: invalid token");
            return refused(ErrorCode::InvalidToken);
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
        return refused(ErrorCode::IdentityMismatch);
    }
    let Some(exp) = fresh.exp else {
        // The verifier always sets `exp`; refuse rather than extend forever.
        return refused(ErrorCode::InvalidToken);
    };
    match roster
        .set_token_expiry(&fresh.tenant, connection_id, exp)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(%connection_id, tenant = %fresh.tenant, "refresh refused: connection no longer in the roster");
            return refused(ErrorCode::RefreshFailed);
        }
        Err(error) => {
            tracing::warn!(%connection_id, tenant = %fresh.tenant, %error, "refresh failed: roster unavailable");
            return refused(ErrorCode::RefreshFailed);
        }
    }
    tracing::info!(%connection_id, tenant = %fresh.tenant, user = %fresh.user, exp, "token refreshed");
    (ServerReply::Refreshed { exp }, Some(fresh))
}
