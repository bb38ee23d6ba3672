//! The life of one connection: `$connect` (roster write), `$default` (client actions) and
//! `$disconnect` (roster delete). The Lambdas and the local server both call these.
//!
//! Token expiry (docs/design.md: Identity per issuer): [`Claims::exp`] is when the connection's token expires; an
//! edge ends the connection (4001, `token expired`) at [`token_deadline`] unless the
//! client refreshed it in band. [`handle_client_frame`] serves every client action including
//! `refresh`, and returns the new claims (with their `exp`) when a refresh succeeded so
//! the edge can move its deadline (local gateway). The roster item keeps the token's
//! `exp` as `tokenExpiresAt` ([`connect`] writes it, a successful `refresh` moves it), so
//! the publisher can skip and disconnect connections whose token expired (AWS, where no
//! timer holds the socket).

use std::sync::Arc;

use switchboard_model::{
    AdminScope, Claims, ClientAction, ConnectionId, ServerReply, TenantId, UserId,
};
use time::OffsetDateTime;

use crate::auth::Verifier;
use crate::config::ConnectConfig;
use crate::history::{resume, HistoryConfig, HistoryStore, ResumeError};
use crate::roster::{ConnectionRecord, RosterError, RosterStore};

/// Why a connection event could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The identity the authorizer passed on is missing or invalid.
    #[error("invalid identity context: {0}")]
    Identity(String),
    #[error(transparent)]
    Roster(#[from] RosterError),
}

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

/// [`claims_from_context`] plus the two fields the authorizer adds for docs/design.md: Identity per issuer: `exp`
/// (epoch seconds; a number, or its decimal text — API Gateway may hand context values on
/// as strings) and `adminScope` (`"global"`; anything else, or absent, is the narrower
/// tenant scope). An unreadable `exp` is an identity error, an absent one `None`.
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

/// `$connect`: records the connection in the roster.
pub async fn connect(
    roster: &dyn RosterStore,
    config: &ConnectConfig,
    connection_id: &ConnectionId,
    claims: &Claims,
    now: OffsetDateTime,
) -> Result<ConnectionRecord, ConnectionError> {
    let record = ConnectionRecord::new(
        connection_id.clone(),
        claims.tenant.clone(),
        claims.user.clone(),
        claims.roles.clone(),
        now,
        config.connection_ttl_secs,
    )
    .with_token_expiry(claims.exp);
    roster.put(&record).await?;
    tracing::info!(
        connection_id = %record.connection_id,
        tenant = %record.tenant,
        user = %record.user,
        "connected"
    );
    Ok(record)
}

/// `$disconnect`: removes the connection (idempotent).
pub async fn disconnect(
    roster: &dyn RosterStore,
    tenant: &TenantId,
    connection_id: &ConnectionId,
) -> Result<(), ConnectionError> {
    roster.remove(tenant, connection_id).await?;
    tracing::info!(connection_id = %connection_id, tenant = %tenant, "disconnected");
    Ok(())
}

/// Error code of a `refresh` whose token does not verify.
pub const REFRESH_INVALID_TOKEN: &str = "invalid_token";
/// Error code of a `refresh` whose token comes from another issuer or names another tenant
/// or user.
pub const REFRESH_IDENTITY_MISMATCH: &str = "identity_mismatch";
/// Error code of a `refresh` sent to an edge that cannot verify tokens ([`reply_to`]).
pub const REFRESH_UNAVAILABLE: &str = "refresh_unavailable";
/// Error code of a valid `refresh` whose new expiry could not be recorded in the roster
/// (the connection is no longer listed, or the roster failed): the old expiry stands.
pub const REFRESH_FAILED: &str = "refresh_failed";

/// Verifies a `refresh` token against the connection's identity and records its `exp` as
/// the roster item's `tokenExpiresAt`: the reply, and the new claims when it succeeded
/// (same issuer, tenant and user; its `exp` is the new expiry).
async fn refresh(
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

/// The reply to one client frame without a verifier (docs/design.md: The one-machine binary): `ping`, `whoami`, and
/// `unknown_action`. A `refresh` gets the error [`REFRESH_UNAVAILABLE`] here (nothing can
/// verify it); edges call [`handle_client_frame`].
pub fn reply_to(text: &str, connection_id: &ConnectionId, claims: &Claims) -> ServerReply {
    sync_reply(ClientAction::parse(text), connection_id, claims)
}

fn sync_reply(action: ClientAction, connection_id: &ConnectionId, claims: &Claims) -> ServerReply {
    match action {
        ClientAction::Ping => ServerReply::Pong,
        ClientAction::WhoAmI => ServerReply::WhoAmI {
            connection_id: connection_id.to_string(),
            tenant: claims.tenant.to_string(),
            user: claims.user.to_string(),
        },
        ClientAction::Refresh { .. } => ServerReply::Error {
            error: REFRESH_UNAVAILABLE.into(),
        },
        // `resume` needs the history store: `handle_client_frame` answers it. Here (no
        // store) it is an action this caller does not offer.
        ClientAction::Resume { .. } | ClientAction::Unknown => ServerReply::Error {
            error: "unknown_action".into(),
        },
    }
}

/// What the `$default` actions need besides the caller's identity.
#[derive(Clone)]
pub struct ActionDeps {
    /// Where a `refresh` records the new `tokenExpiresAt`.
    pub roster: Arc<dyn RosterStore>,
    pub history: Arc<dyn HistoryStore>,
    pub history_config: HistoryConfig,
    /// Verifies `refresh` tokens; `None` where the edge cannot (the client then gets
    /// [`REFRESH_UNAVAILABLE`]).
    pub verifier: Option<Arc<Verifier>>,
}

/// What one client frame led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameOutcome {
    /// `resume`: the missed frames, oldest first, to send before [`Self::frames`]. Shared
    /// with the history store: an edge sends them one at a time and never copies them all.
    pub missed: Vec<Arc<str>>,
    /// Send these back on the socket, in order (after `missed`): one reply (for `resume`,
    /// `resumed`).
    pub frames: Vec<String>,
    /// `Some` after a successful `refresh`: the new token's claims. Its `exp` is the
    /// connection's new expiry (move the deadline, or the roster's `tokenExpiresAt`);
    /// `None`: the old expiry stands.
    pub refreshed: Option<Claims>,
}

impl FrameOutcome {
    fn reply(reply: ServerReply) -> Self {
        Self {
            missed: Vec::new(),
            frames: vec![reply.to_json()],
            refreshed: None,
        }
    }
}

/// `$default`: serves one client frame (`docs/design.md`, "Client actions"). `refresh`
/// must come from the same issuer and name the same tenant and user as `claims` (the
/// connection's identity), else an error reply and nothing changes. The connection stays open whatever was sent.
pub async fn handle_client_frame(
    deps: &ActionDeps,
    text: &str,
    connection_id: &ConnectionId,
    claims: &Claims,
) -> FrameOutcome {
    let frames = match ClientAction::parse(text) {
        ClientAction::Refresh { token } => {
            let Some(verifier) = &deps.verifier else {
                return FrameOutcome::reply(ServerReply::Error {
                    error: REFRESH_UNAVAILABLE.into(),
                });
            };
            let (reply, refreshed) = refresh(
                verifier,
                deps.roster.as_ref(),
                &token,
                connection_id,
                claims,
            )
            .await;
            return FrameOutcome {
                missed: Vec::new(),
                frames: vec![reply.to_json()],
                refreshed,
            };
        }
        ClientAction::Resume { since } => {
            let outcome = resume(
                deps.history.as_ref(),
                &deps.history_config,
                &claims.tenant,
                &claims.user,
                &since,
                OffsetDateTime::now_utc(),
            )
            .await;
            match outcome {
                Ok(outcome) => {
                    return FrameOutcome {
                        frames: vec![outcome.resumed_frame()],
                        missed: outcome.frames,
                        refreshed: None,
                    };
                }
                Err(ResumeError::InvalidCursor(_)) => vec![ServerReply::Error {
                    error: "invalid_cursor".into(),
                }
                .to_json()],
                Err(ResumeError::Unavailable(error)) => {
                    tracing::warn!(%error, %connection_id, "resume failed: history unavailable");
                    vec![ServerReply::Error {
                        error: "history_unavailable".into(),
                    }
                    .to_json()]
                }
            }
        }
        action => vec![sync_reply(action, connection_id, claims).to_json()],
    };
    FrameOutcome {
        missed: Vec::new(),
        frames,
        refreshed: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c1() -> ConnectionId {
        ConnectionId::parse("c-1").unwrap()
    }
    use crate::roster::MemoryRosterStore;

    fn claims() -> Claims {
        claims_from_context(Some("acme"), Some("alice"), Some("admin publisher")).unwrap()
    }

    #[test]
    fn context_roles_split_and_ids_validated() {
        assert_eq!(claims().roles, vec!["admin", "publisher"]);
        assert!(claims_from_context(Some("a#b"), Some("u"), None).is_err());
        assert!(claims_from_context(None, Some("u"), None).is_err());
    }

    #[tokio::test]
    async fn connect_then_disconnect_round_trips_the_roster() {
        let roster = MemoryRosterStore::new();
        let now = OffsetDateTime::now_utc();
        let record = connect(&roster, &ConnectConfig::default(), &c1(), &claims(), now)
            .await
            .unwrap();
        assert_eq!(record.expires_at, now.unix_timestamp() + 7_500);
        assert_eq!(record.token_expires_at, None, "claims without exp");
        assert_eq!(
            roster.list_tenant(&claims().tenant).await.unwrap(),
            vec![record]
        );
        disconnect(&roster, &claims().tenant, &c1()).await.unwrap();
        disconnect(&roster, &claims().tenant, &c1()).await.unwrap();
        assert!(roster.list_all().await.unwrap().is_empty());
    }

    const SECRET: &[u8] = b"connection-test-secret-of-32-bytes";

    async fn verifier() -> Arc<Verifier> {
        Arc::new(
            Verifier::new(crate::auth::AuthConfig::with_hs256_secret(SECRET))
                .await
                .unwrap(),
        )
    }

    /// A reply frame as sent, comparable with the `ServerReply` it should be.
    #[derive(Debug)]
    struct Sent(String);

    impl PartialEq<ServerReply> for Sent {
        fn eq(&self, other: &ServerReply) -> bool {
            self.0 == other.to_json()
        }
    }

    impl Sent {
        fn to_json(&self) -> String {
            self.0.clone()
        }
    }

    struct Handled {
        reply: Sent,
        refreshed: Option<Claims>,
    }

    /// Deps with a verifier, an empty history and a roster listing `claims`' connection
    /// `c-1` (its token expiring at `claims.exp`).
    async fn deps_with(claims: &Claims, v: &Arc<Verifier>) -> (ActionDeps, Arc<MemoryRosterStore>) {
        let roster = Arc::new(MemoryRosterStore::new());
        connect(
            roster.as_ref(),
            &ConnectConfig::default(),
            &c1(),
            claims,
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
        let deps = ActionDeps {
            roster: roster.clone(),
            history: Arc::new(crate::history::MemoryHistoryStore::new(10)),
            history_config: HistoryConfig::default(),
            verifier: Some(v.clone()),
        };
        (deps, roster)
    }

    /// The roster's `tokenExpiresAt` of connection `c-1`.
    async fn token_expiry(roster: &MemoryRosterStore, claims: &Claims) -> Option<i64> {
        roster.list_tenant(&claims.tenant).await.unwrap()[0].token_expires_at
    }

    /// `handle_client_frame` with a verifier and no history, for one-reply actions.
    async fn handle_frame(
        text: &str,
        id: &ConnectionId,
        claims: &Claims,
        v: &Arc<Verifier>,
    ) -> Handled {
        let (deps, _) = deps_with(claims, v).await;
        let mut outcome = handle_client_frame(&deps, text, id, claims).await;
        assert_eq!(outcome.frames.len(), 1);
        Handled {
            reply: Sent(outcome.frames.remove(0)),
            refreshed: outcome.refreshed,
        }
    }

    fn token(tenant: &str, user: &str, ttl_secs: u64) -> String {
        crate::auth::mint_hs256(
            SECRET,
            &TenantId::parse(tenant).unwrap(),
            &UserId::parse(user).unwrap(),
            &["publisher".to_string()],
            std::time::Duration::from_secs(ttl_secs),
        )
    }

    fn refresh(token: &str) -> String {
        serde_json::json!({"action": "refresh", "token": token}).to_string()
    }

    /// The connection's claims as the verifier made them (with an `exp`).
    async fn connected(v: &Verifier) -> Claims {
        v.verify(&token("acme", "alice", 60)).await.unwrap()
    }

    #[tokio::test]
    async fn refresh_with_a_token_of_the_same_identity_extends_the_expiry() {
        let v = verifier().await;
        let current = connected(&v).await;
        let old_exp = current.exp.unwrap();
        let outcome = handle_frame(
            &refresh(&token("acme", "alice", 3_600)),
            &c1(),
            &current,
            &v,
        )
        .await;
        let fresh = outcome.refreshed.expect("refreshed");
        let new_exp = fresh.exp.unwrap();
        assert!(new_exp >= old_exp + 3_500, "{new_exp} vs {old_exp}");
        assert_eq!(outcome.reply, ServerReply::Refreshed { exp: new_exp });
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&outcome.reply.to_json()).unwrap(),
            serde_json::json!({"type": "refreshed", "exp": new_exp})
        );
        assert_eq!((fresh.tenant, fresh.user), (current.tenant, current.user));
    }

    #[tokio::test]
    async fn refresh_moves_the_roster_token_expiry_and_a_refused_one_does_not() {
        let v = verifier().await;
        let current = connected(&v).await;
        let (deps, roster) = deps_with(&current, &v).await;
        assert_eq!(token_expiry(&roster, &current).await, current.exp);
        let other = refresh(&token("acme", "mallory", 3_600));
        let outcome = handle_client_frame(&deps, &other, &c1(), &current).await;
        assert_eq!(outcome.refreshed, None);
        assert_eq!(token_expiry(&roster, &current).await, current.exp);
        let own = refresh(&token("acme", "alice", 3_600));
        let outcome = handle_client_frame(&deps, &own, &c1(), &current).await;
        let fresh = outcome.refreshed.expect("refreshed");
        assert!(fresh.exp > current.exp);
        assert_eq!(token_expiry(&roster, &current).await, fresh.exp);
    }

    #[tokio::test]
    async fn refresh_of_a_connection_no_longer_in_the_roster_fails_and_creates_nothing() {
        let v = verifier().await;
        let current = connected(&v).await;
        let (deps, roster) = deps_with(&current, &v).await;
        disconnect(roster.as_ref(), &current.tenant, &c1())
            .await
            .unwrap();
        let own = refresh(&token("acme", "alice", 3_600));
        let outcome = handle_client_frame(&deps, &own, &c1(), &current).await;
        assert_eq!(outcome.refreshed, None);
        assert_eq!(
            Sent(outcome.frames[0].clone()),
            ServerReply::Error {
                error: REFRESH_FAILED.into()
            }
        );
        assert!(roster.list_all().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn refresh_for_another_user_or_tenant_is_refused_and_changes_nothing() {
        let v = verifier().await;
        let current = connected(&v).await;
        for other in [
            token("acme", "mallory", 3_600),
            token("globex", "alice", 3_600),
        ] {
            let outcome = handle_frame(&refresh(&other), &c1(), &current, &v).await;
            assert_eq!(outcome.refreshed, None);
            assert_eq!(
                outcome.reply,
                ServerReply::Error {
                    error: REFRESH_IDENTITY_MISMATCH.into()
                }
            );
        }
    }

    #[tokio::test]
    async fn refresh_with_an_invalid_token_is_refused() {
        let v = verifier().await;
        let current = connected(&v).await;
        let forged = crate::auth::mint_hs256(
            b"another-secret-another-secret-32",
            &current.tenant,
            &current.user,
            &[],
            std::time::Duration::from_secs(3_600),
        );
        let expired = {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                &serde_json::json!({"sub": "alice", "tenant": "acme", "exp": now - 3_600}),
                &jsonwebtoken::EncodingKey::from_secret(SECRET),
            )
            .unwrap()
        };
        for bad in [forged.as_str(), expired.as_str(), "not-a-jwt"] {
            let outcome = handle_frame(&refresh(bad), &c1(), &current, &v).await;
            assert_eq!(outcome.refreshed, None, "{bad}");
            assert_eq!(
                outcome.reply,
                ServerReply::Error {
                    error: REFRESH_INVALID_TOKEN.into()
                }
            );
        }
    }

    #[tokio::test]
    async fn handle_frame_serves_the_other_actions_like_reply_to() {
        let v = verifier().await;
        let current = connected(&v).await;
        for text in [
            r#"{"action":"ping"}"#,
            r#"{"action":"whoami"}"#,
            "x",
            r#"{"action":"refresh"}"#,
        ] {
            let outcome = handle_frame(text, &c1(), &current, &v).await;
            assert_eq!(outcome.reply, reply_to(text, &c1(), &current));
            assert_eq!(outcome.refreshed, None);
        }
        let without_verifier = ActionDeps {
            roster: Arc::new(MemoryRosterStore::new()),
            history: Arc::new(crate::history::MemoryHistoryStore::new(10)),
            history_config: HistoryConfig::default(),
            verifier: None,
        };
        let outcome =
            handle_client_frame(&without_verifier, &refresh("a.b.c"), &c1(), &current).await;
        assert_eq!(
            Sent(outcome.frames[0].clone()),
            ServerReply::Error {
                error: REFRESH_UNAVAILABLE.into()
            }
        );
        assert_eq!(
            reply_to(&refresh("a.b.c"), &c1(), &current),
            ServerReply::Error {
                error: REFRESH_UNAVAILABLE.into()
            }
        );
    }

    #[test]
    fn authorizer_context_with_exp_and_admin_scope() {
        use serde_json::json;
        let c = claims_from_authorizer_context(
            Some("acme"),
            Some("alice"),
            Some("admin"),
            Some(&json!(1_900_000_000)),
            Some("global"),
        )
        .unwrap();
        assert_eq!(c.exp, Some(1_900_000_000));
        assert!(c.is_global_admin());
        let c = claims_from_authorizer_context(
            Some("acme"),
            Some("alice"),
            Some("admin"),
            Some(&json!("1900000000")),
            Some("tenant"),
        )
        .unwrap();
        assert_eq!(c.exp, Some(1_900_000_000));
        assert!(!c.is_global_admin());
        let c =
            claims_from_authorizer_context(Some("acme"), Some("alice"), None, None, None).unwrap();
        assert_eq!((c.exp, c.admin_scope), (None, AdminScope::Tenant));
        for bad in [json!("soon"), json!(1.5), json!(true)] {
            assert!(
                claims_from_authorizer_context(Some("a"), Some("u"), None, Some(&bad), None)
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn deadline_is_exp_plus_leeway() {
        let mut c = claims();
        assert_eq!(token_deadline(&c, 30), None);
        c.exp = Some(1_000);
        assert_eq!(token_deadline(&c, 30), Some(1_030));
        assert_eq!(token_deadline(&c, u64::MAX), Some(i64::MAX));
    }

    #[test]
    fn context_claims_have_tenant_scoped_admin() {
        let c = claims();
        assert_eq!(c.admin_scope, AdminScope::Tenant);
        assert!(c.may_administer(&c.tenant));
        assert!(!c.is_global_admin());
    }

    #[test]
    fn replies_follow_spec() {
        let c = claims();
        assert_eq!(
            reply_to(r#"{"action":"ping"}"#, &c1(), &c),
            ServerReply::Pong
        );
        assert_eq!(
            reply_to(r#"{"action":"whoami"}"#, &c1(), &c),
            ServerReply::WhoAmI {
                connection_id: "c-1".into(),
                tenant: "acme".into(),
                user: "alice".into()
            }
        );
        assert_eq!(
            reply_to("hello", &c1(), &c),
            ServerReply::Error {
                error: "unknown_action".into()
            }
        );
    }
}
