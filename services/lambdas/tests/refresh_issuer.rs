#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The issuer of a connection on AWS (docs/design.md: Token expiry and refresh): the real
//! authorizer puts the token's issuer in its context, and the real `$default` handler,
//! reading that context back, accepts a `refresh` from the same issuer only. The roster is
//! in memory (the refusal happens before any roster write; the DynamoDB path of `refresh`
//! is tests/default_refresh.rs).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_core::auth::{mint_hs256_with, AuthConfig, MintOptions, Verifier};
use switchboard_core::connection::{connect, ActionDeps, ConnectConfig};
use switchboard_core::history::{HistoryConfig, MemoryHistoryStore, ResumeLimits};
use switchboard_core::roster::MemoryRosterStore;
use switchboard_core::testkit::ScriptedPoster;
use switchboard_lambdas::authorizer::authorize_json;
use switchboard_lambdas::default::{self, DefaultDeps};
use switchboard_lambdas::websocket::{self, WebsocketEvent};
use switchboard_model::{TenantId, UserId};

const SECRET: &[u8] = b"refresh-issuer-test-secret-of-32b";
const ISSUER: &str = "https://idp-a.example";
const METHOD_ARN: &str = "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/main/$connect";

/// A fixture event, `__TOKEN__` replaced by `token`.
fn fixture(name: &str, token: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text.replace("__TOKEN__", token)).unwrap()
}

fn token(ttl_secs: u64) -> String {
    let options = MintOptions {
        issuer: Some(ISSUER.into()),
        ..MintOptions::default()
    };
    mint_hs256_with(
        SECRET,
        &options,
        &TenantId::parse("acme").unwrap(),
        &UserId::parse("alice").unwrap(),
        &[],
        Duration::from_secs(ttl_secs),
    )
}

/// A `$default` event whose authorizer context is `context`, with `body`.
fn default_event(context: &Value, body: String) -> WebsocketEvent {
    let mut event = fixture("default_message.json", "");
    event["requestContext"]["authorizer"] = context.clone();
    event["body"] = json!(body);
    serde_json::from_value(event).unwrap()
}

#[tokio::test]
async fn the_authorizer_context_carries_the_issuer_and_default_refresh_requires_it() {
    let config = AuthConfig {
        issuer: Some(ISSUER.into()),
        ..AuthConfig::with_hs256_secret(SECRET)
    };
    let verifier = Arc::new(Verifier::new(config).await.unwrap());

    // The authorizer: the context names the issuer.
    let request = fixture("query_token.json", &token(60));
    assert_eq!(request["methodArn"], METHOD_ARN);
    let allowed = authorize_json(&Verifier::clone(&verifier).into(), request)
        .await
        .unwrap();
    let context = serde_json::to_value(&allowed.context).unwrap();
    assert_eq!(context["issuer"], ISSUER, "{context}");

    // `$connect` as the roster would have it.
    let connected = default_event(&context, String::new());
    let claims = websocket::claims(&connected).unwrap();
    assert_eq!(claims.issuer.as_deref(), Some(ISSUER));
    let roster = Arc::new(MemoryRosterStore::new());
    let id = websocket::connection_id(&connected).unwrap();
    connect(
        roster.as_ref(),
        &ConnectConfig::default(),
        &id,
        &claims,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    let deps = DefaultDeps {
        actions: ActionDeps {
            roster,
            history: Arc::new(MemoryHistoryStore::new(10)),
            history_config: HistoryConfig::default(),
            verifier: Some(verifier),
            push: None,
        },
        poster: Arc::new(ScriptedPoster::new()),
        resume: ResumeLimits::default(),
    };
    let refresh = json!({"action": "refresh", "token": token(3_600)}).to_string();
    let reply = |context: Value| {
        let deps = &deps;
        let refresh = refresh.clone();
        async move {
            let response = default::handle(deps, &default_event(&context, refresh))
                .await
                .unwrap();
            serde_json::from_str::<Value>(response.body.as_deref().unwrap()).unwrap()
        }
    };

    // A connection of another issuer (same tenant and user), or one whose context does not
    // say (an older authorizer): the token is of another identity.
    let mut other = context.clone();
    other["issuer"] = json!("https://idp-b.example");
    let mut unsaid = context.clone();
    unsaid.as_object_mut().unwrap().remove("issuer");
    for context in [other, unsaid] {
        assert_eq!(
            reply(context).await,
            json!({"type": "error", "error": "identity_mismatch"})
        );
    }
    // The authorizer's own context: refreshed.
    let answer = reply(context).await;
    assert_eq!(answer["type"], "refreshed", "{answer}");
}
