#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The authorizer driven with real-shaped API Gateway WebSocket REQUEST authorizer events
//! (tests/fixtures/*.json; `__TOKEN__` is replaced by a freshly minted token).

use std::time::Duration;

use lambda_runtime::Diagnostic;
use serde_json::{json, Value};
use switchboard_core::auth::{mint_hs256, AuthConfig, Verifier};
use switchboard_lambdas::authorizer::{authorize_json, Unauthorized};
use switchboard_model::{TenantId, UserId};

const SECRET: &[u8] = b"lambda-authorizer-test-secret-32b";
const METHOD_ARN: &str = "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/main/$connect";

fn fixture(name: &str, token: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text.replace("__TOKEN__", token)).unwrap()
}

fn token() -> String {
    mint_hs256(
        SECRET,
        &TenantId::parse("acme").unwrap(),
        &UserId::parse("alice").unwrap(),
        &["admin".to_string(), "publisher".to_string()],
        Duration::from_secs(300),
    )
}

async fn verifier() -> Verifier {
    Verifier::new(AuthConfig::with_hs256_secret(SECRET))
        .await
        .unwrap()
}

fn allow_response() -> Value {
    json!({
        "principalId": "alice",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{
                "Action": ["execute-api:Invoke"],
                "Effect": "Allow",
                "Resource": [METHOD_ARN]
            }]
        },
        "context": {"tenant": "acme", "user": "alice", "roles": "admin publisher"},
        "usageIdentifierKey": null
    })
}

#[tokio::test]
async fn query_token_is_allowed_with_context() {
    let response = authorize_json(&verifier().await, fixture("query_token.json", &token()))
        .await
        .unwrap();
    assert_eq!(serde_json::to_value(response).unwrap(), allow_response());
}

#[tokio::test]
async fn subprotocol_token_is_allowed_with_context() {
    let response = authorize_json(
        &verifier().await,
        fixture("subprotocol_token.json", &token()),
    )
    .await
    .unwrap();
    assert_eq!(serde_json::to_value(response).unwrap(), allow_response());
}

#[tokio::test]
async fn no_token_is_unauthorized() {
    let result = authorize_json(&verifier().await, fixture("no_token.json", "")).await;
    assert_eq!(result.unwrap_err(), Unauthorized);
}

#[tokio::test]
async fn bad_token_is_unauthorized() {
    let result = authorize_json(&verifier().await, fixture("bad_token.json", "")).await;
    assert_eq!(result.unwrap_err(), Unauthorized);
    // A token signed with another secret, in the subprotocol.
    let other = mint_hs256(
        b"some-other-secret-some-other-secret",
        &TenantId::parse("acme").unwrap(),
        &UserId::parse("alice").unwrap(),
        &[],
        Duration::from_secs(300),
    );
    let result = authorize_json(&verifier().await, fixture("subprotocol_token.json", &other)).await;
    assert_eq!(result.unwrap_err(), Unauthorized);
}

#[tokio::test]
async fn unparseable_event_or_missing_method_arn_is_unauthorized() {
    let v = verifier().await;
    assert_eq!(
        authorize_json(&v, json!("nonsense")).await.unwrap_err(),
        Unauthorized
    );
    let mut event = fixture("query_token.json", &token());
    event.as_object_mut().unwrap().remove("methodArn");
    assert_eq!(authorize_json(&v, event).await.unwrap_err(), Unauthorized);
}

#[test]
fn refusal_reaches_api_gateway_as_exactly_unauthorized() {
    let diagnostic = Diagnostic::from(Unauthorized);
    assert_eq!(diagnostic.error_message, "Unauthorized");
    assert_eq!(Unauthorized.to_string(), "Unauthorized");
}

/// The binary refuses to start without keys or with an unusable JWKS file.
#[test]
fn binary_fails_at_init_without_a_usable_key_source() {
    let run = |envs: &[(&str, &str)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_authorizer"));
        command.env_clear();
        for (k, v) in envs {
            command.env(k, v);
        }
        command.output().unwrap()
    };
    let output = run(&[]);
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("JWT_HS256_SECRET"), "{text}");

    let output = run(&[("JWT_JWKS_FILE", "/nonexistent/jwks.json")]);
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("/nonexistent/jwks.json"), "{text}");
}
