#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Identity per issuer (docs/design.md: Identity per issuer) through the real publish API: an
//! issuers file read the way the processes read it (`JWT_ISSUERS_FILE` through
//! `AuthConfig::from_lookup`), two issuers whose JWKS are served by local HTTP servers, the router
//! on a port-0 listener, and RS256/ES256 tokens signed with the test keys.
//!
//! Issuers: `acme-idp` (RSA key `acme-1`, tenant `acme`, its `admin` is an admin of acme
//! only) and `ops-idp` (EC key `ops-1`, any tenant, `globalAdmin: true`,
//! `allowSharedTenants: true`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use switchboard_core::auth::{AuthConfig, Verifier};
use switchboard_core::connection::{connect, handle_client_frame, ActionDeps, ConnectConfig};
use switchboard_core::history::{HistoryConfig, MemoryHistoryStore};
use switchboard_core::publish_api::PublishApi;
use switchboard_core::queue::{MessageQueue, QueueError};
use switchboard_core::roster::MemoryRosterStore;
use switchboard_model::ConnectionId;

const RSA_PRIVATE: &[u8] = include_bytes!("../src/auth/testdata/rsa1_private.pem");
const EC_PRIVATE: &[u8] = include_bytes!("../src/auth/testdata/ec1_private.pem");
const JWKS: &str = include_str!("../src/auth/testdata/jwks.json");
const ACME: &str = "https://acme-idp.example";
const OPS: &str = "https://ops-idp.example";

#[derive(Default)]
struct Queue(Mutex<Vec<String>>);

#[async_trait]
impl MessageQueue for Queue {
    async fn enqueue(&self, id: &str, _body: &str) -> Result<(), QueueError> {
        self.0.lock().unwrap().push(id.to_string());
        Ok(())
    }

    async fn enqueue_delayed(
        &self,
        id: &str,
        body: &str,
        _delay: std::time::Duration,
    ) -> Result<(), QueueError> {
        self.enqueue(id, body).await
    }
}

/// One key of the test JWKS, renamed.
fn jwks_with(kid: &str, as_kid: &str) -> String {
    let doc: Value = serde_json::from_str(JWKS).unwrap();
    let mut key = doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap()
        .clone();
    key["kid"] = json!(as_kid);
    json!({ "keys": [key] }).to_string()
}

/// A JWKS endpoint on 127.0.0.1:0 counting its fetches.
async fn jwks_server(body: String) -> (String, Arc<AtomicUsize>) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            async move { body }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/jwks.json"), fetches)
}

struct App {
    url: String,
    queue: Arc<Queue>,
    fetches: [Arc<AtomicUsize>; 2],
    client: reqwest::Client,
    verifier: Arc<Verifier>,
}

async fn spawn_app() -> App {
    let (acme_url, acme_fetches) = jwks_server(jwks_with("rsa-1", "acme-1")).await;
    let (ops_url, ops_fetches) = jwks_server(jwks_with("ec-1", "ops-1")).await;
    let dir = std::env::temp_dir().join(format!(
        "switchboard-issuers-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("issuers.json");
    std::fs::write(
        &file,
        json!({"issuers": [
            {"issuer": ACME, "jwksUrl": acme_url, "audience": "switchboard", "tenants": ["acme"],
             "rolesClaim": "groups"},
            {"issuer": OPS, "jwksUrl": ops_url, "tenants": "*", "globalAdmin": true,
             "allowSharedTenants": true}
        ]})
        .to_string(),
    )
    .unwrap();
    let path = file.display().to_string();
    let config = AuthConfig::from_lookup(|k| (k == "JWT_ISSUERS_FILE").then(|| path.clone()))
        .and_then(AuthConfig::require_key_source)
        .unwrap();
    let verifier = Arc::new(Verifier::new(config).await.unwrap());
    let _ = std::fs::remove_dir_all(dir);

    let queue = Arc::new(Queue::default());
    let router = PublishApi {
        verifier: verifier.clone(),
        queue: queue.clone(),
        receipts: None,
        tenants: Default::default(),
        usage: None,
        push_enabled: false,
    }
    .router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    App {
        url: format!("http://{addr}/v1/messages"),
        queue,
        fetches: [acme_fetches, ops_fetches],
        client: reqwest::Client::new(),
        verifier,
    }
}

fn rand_suffix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        .into()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An acme-idp token (RSA, `groups` claim, audience `switchboard`).
fn acme_token(iss: &str, tenant: &str, groups: &[&str]) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("acme-1".into());
    let claims = json!({"iss": iss, "aud": "switchboard", "sub": "alice", "tenant": tenant,
                        "groups": groups, "exp": now() + 300});
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
    )
    .unwrap()
}

/// An ops-idp token (EC, `roles` claim) for user `root`.
fn ops_token(tenant: &str, roles: &[&str]) -> String {
    ops_token_as(tenant, "root", roles)
}

/// An ops-idp token for `sub`.
fn ops_token_as(tenant: &str, sub: &str, roles: &[&str]) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("ops-1".into());
    let claims = json!({"iss": OPS, "sub": sub, "tenant": tenant, "roles": roles,
                        "exp": now() + 300});
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_ec_pem(EC_PRIVATE).unwrap(),
    )
    .unwrap()
}

fn users(tenant: &str) -> Value {
    json!({"target": {"type": "users", "tenant": tenant, "users": ["bob"]}, "data": {"n": 1}})
}

fn whole(tenant: &str) -> Value {
    json!({"target": {"type": "tenant", "tenant": tenant}, "data": {"n": 2}})
}

fn broadcast() -> Value {
    json!({"target": {"type": "broadcast"}, "data": {"n": 3}})
}

impl App {
    async fn publish(&self, token: &str, body: &Value) -> u16 {
        self.client
            .post(&self.url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    fn fetches(&self) -> (usize, usize) {
        (
            self.fetches[0].load(Ordering::SeqCst),
            self.fetches[1].load(Ordering::SeqCst),
        )
    }
}

#[tokio::test]
async fn tenant_admin_publishes_to_its_tenant_only_and_never_broadcasts() {
    let app = spawn_app().await;
    let admin = acme_token(ACME, "acme", &["admin"]);
    assert_eq!(app.publish(&admin, &users("acme")).await, 202);
    assert_eq!(app.publish(&admin, &whole("acme")).await, 202);
    assert_eq!(app.publish(&admin, &users("globex")).await, 403);
    assert_eq!(app.publish(&admin, &whole("globex")).await, 403);
    assert_eq!(app.publish(&admin, &broadcast()).await, 403);
    assert_eq!(app.queue.0.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn global_admin_issuer_may_broadcast_and_reach_any_tenant() {
    let app = spawn_app().await;
    let root = ops_token("ops", &["admin"]);
    assert_eq!(app.publish(&root, &broadcast()).await, 202);
    assert_eq!(app.publish(&root, &whole("globex")).await, 202);
    // The same issuer's publisher stays in its own tenant.
    let publisher = ops_token("globex", &["publisher"]);
    assert_eq!(app.publish(&publisher, &whole("globex")).await, 202);
    assert_eq!(app.publish(&publisher, &whole("acme")).await, 403);
    assert_eq!(app.publish(&publisher, &broadcast()).await, 403);
}

#[tokio::test]
async fn forged_issuer_foreign_tenant_and_unknown_issuers_are_401_without_fetching() {
    let app = spawn_app().await;
    assert_eq!(
        app.fetches(),
        (1, 1),
        "each issuer's JWKS fetched once at start"
    );
    // Signed with acme-idp's key, claiming to be ops-idp (a global-admin issuer).
    assert_eq!(
        app.publish(&acme_token(OPS, "globex", &["admin"]), &broadcast())
            .await,
        401
    );
    // acme-idp vouching for a tenant not in its list.
    assert_eq!(
        app.publish(&acme_token(ACME, "globex", &["admin"]), &users("globex"))
            .await,
        401
    );
    // A flood of unknown issuers.
    for i in 0..50 {
        let token = acme_token(&format!("https://idp-{i}.example"), "acme", &["admin"]);
        assert_eq!(app.publish(&token, &users("acme")).await, 401);
    }
    let (acme, ops) = app.fetches();
    assert_eq!(acme, 1, "nothing refetched acme-idp");
    assert!(
        ops <= 2,
        "the forged kid may refresh ops-idp once, rate-limited: {ops}"
    );
    assert!(app.queue.0.lock().unwrap().is_empty());
}

/// Both issuers may vouch for `acme` (ops-idp allows sharing), so both can name
/// `acme`/`alice`; a connection of acme-idp's `alice` still refreshes with acme-idp tokens
/// only: another issuer's token is another identity (`identity_mismatch`), and the old
/// expiry stands.
#[tokio::test]
async fn refresh_with_another_issuers_token_for_the_same_user_is_refused() {
    let app = spawn_app().await;
    let connected = app
        .verifier
        .verify(&acme_token(ACME, "acme", &[]))
        .await
        .unwrap();
    assert_eq!(connected.issuer.as_deref(), Some(ACME));
    let roster = Arc::new(MemoryRosterStore::new());
    let id = ConnectionId::parse("c-1").unwrap();
    connect(
        roster.as_ref(),
        &ConnectConfig::default(),
        &id,
        &connected,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    let deps = ActionDeps {
        roster: roster.clone(),
        history: Arc::new(MemoryHistoryStore::new(10)),
        history_config: HistoryConfig::default(),
        verifier: Some(app.verifier.clone()),
        push: None,
    };
    let refresh = |token: String| json!({"action": "refresh", "token": token}).to_string();

    let other = ops_token_as("acme", "alice", &[]);
    let claims = app.verifier.verify(&other).await.unwrap();
    assert_eq!(
        (&claims.tenant, &claims.user),
        (&connected.tenant, &connected.user)
    );
    let outcome = handle_client_frame(&deps, &refresh(other), &id, &connected).await;
    assert_eq!(outcome.refreshed, None);
    assert_eq!(
        serde_json::from_str::<Value>(&outcome.frames[0]).unwrap(),
        json!({"type": "error", "error": "identity_mismatch"})
    );

    let own = acme_token(ACME, "acme", &[]);
    let outcome = handle_client_frame(&deps, &refresh(own), &id, &connected).await;
    let fresh = outcome
        .refreshed
        .expect("the same issuer's token refreshes");
    assert_eq!(fresh.issuer.as_deref(), Some(ACME));
}
