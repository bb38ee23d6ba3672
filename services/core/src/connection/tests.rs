//! Connection tests: `$connect`/`$disconnect`, the token deadline and the `$default`
//! client actions (refresh above all).

use std::sync::Arc;

use switchboard_model::{ErrorCode, ServerReply, TenantId, UserId};

use super::*;
use crate::auth::Verifier;
use crate::history::HistoryConfig;
use crate::roster::MemoryRosterStore;

fn c1() -> ConnectionId {
    ConnectionId::parse("c-1").unwrap()
}

/// Alice of acme, tenant-scoped admin and publisher, without expiry.
fn claims() -> Claims {
    Claims {
        roles: vec!["admin".into(), "publisher".into()],
        ..Claims::new(
            TenantId::parse("acme").unwrap(),
            UserId::parse("alice").unwrap(),
        )
    }
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
        push: None,
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
            error: ErrorCode::RefreshFailed
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
                error: ErrorCode::IdentityMismatch
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
                error: ErrorCode::InvalidToken
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
        push: None,
    };
    let outcome = handle_client_frame(&without_verifier, &refresh("a.b.c"), &c1(), &current).await;
    assert_eq!(
        Sent(outcome.frames[0].clone()),
        ServerReply::Error {
            error: ErrorCode::RefreshUnavailable
        }
    );
    assert_eq!(
        reply_to(&refresh("a.b.c"), &c1(), &current),
        ServerReply::Error {
            error: ErrorCode::RefreshUnavailable
        }
    );
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
            error: ErrorCode::UnknownAction
        }
    );
}
