#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The authorizer driven with real-shaped API Gateway WebSocket REQUEST authorizer events
//! (tests/fixtures/*.json; `__TOKEN__` is replaced by a freshly minted token).

use std::time::Duration;

use lambda_runtime::Diagnostic;
use serde_json::{json, Value};
use switchboard_core::auth::{mint_hs256, AuthConfig, Verifier};
use switchboard_lambdas::authorizer::{authorize_json, Authorizer, Unauthorized};
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

async fn verifier() -> Authorizer {
    Verifier::new(AuthConfig::with_hs256_secret(SECRET))
        .await
        .unwrap()
        .into()
}

/// The expected answer; `exp` is the minted token's (now + 300 s, read back from the
/// response after checking it is in that range).
fn allow_response(actual: &Value) -> Value {
    let exp = actual["context"]["exp"].as_i64().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        (now + 290..=now + 300).contains(&exp),
        "exp {exp}, now {now}"
    );
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
        "context": {"tenant": "acme", "user": "alice", "roles": "admin publisher",
                    "exp": exp, "adminScope": "global"},
        "usageIdentifierKey": null
    })
}

#[tokio::test]
async fn query_token_is_allowed_with_context() {
    let response = authorize_json(&verifier().await, fixture("query_token.json", &token()))
        .await
        .unwrap();
    let actual = serde_json::to_value(response).unwrap();
    assert_eq!(actual, allow_response(&actual));
}

#[tokio::test]
async fn subprotocol_token_is_allowed_with_context() {
    let response = authorize_json(
        &verifier().await,
        fixture("subprotocol_token.json", &token()),
    )
    .await
    .unwrap();
    let actual = serde_json::to_value(response).unwrap();
    assert_eq!(actual, allow_response(&actual));
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

fn token_with_roles(roles: &[String]) -> String {
    mint_hs256(
        SECRET,
        &TenantId::parse("acme").unwrap(),
        &UserId::parse("alice").unwrap(),
        roles,
        Duration::from_secs(300),
    )
}

/// A token with 10,000 roles is far over the 8 KiB token limit: a clear refusal
/// (`Unauthorized`, 401), never a 500 from an oversized authorizer result.
#[tokio::test]
async fn ten_thousand_role_token_is_refused() {
    let roles: Vec<String> = (0..10_000).map(|i| format!("group-{i}")).collect();
    let token = token_with_roles(&roles);
    assert!(token.len() > 8 * 1024);
    let result = authorize_json(&verifier().await, fixture("query_token.json", &token)).await;
    assert_eq!(result.unwrap_err(), Unauthorized);
}

/// The largest token accepted, packed with roles: allowed, the answer under 8 KB, the
/// roles Switchboard acts on kept.
#[tokio::test]
async fn token_packed_with_roles_is_allowed_under_8_kb() {
    let mut roles: Vec<String> = vec!["publisher".into()];
    let mut n = 0;
    loop {
        let mut more = roles.clone();
        more.push(format!("g{n}"));
        more.push("admin".into());
        if token_with_roles(&more).len() > 8 * 1024 {
            break;
        }
        roles.push(format!("g{n}"));
        n += 1;
    }
    roles.push("admin".into());
    let token = token_with_roles(&roles);
    assert!(
        token.len() <= 8 * 1024 && token.len() > 8_000,
        "{}",
        token.len()
    );
    let response = authorize_json(&verifier().await, fixture("query_token.json", &token))
        .await
        .unwrap();
    let json = serde_json::to_string(&response).unwrap();
    assert!(json.len() < 8 * 1024, "{} bytes", json.len());
    assert!(response.context.roles.starts_with("admin publisher g0 g1 "));
    assert!(response.context.roles.len() <= 2048);
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

    let output = run(&[("JWT_ISSUERS_FILE", "/nonexistent/issuers.json")]);
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains("JWT_ISSUERS_FILE") && text.contains("/nonexistent/issuers.json"),
        "{text}"
    );

    let output = run(&[
        ("JWT_ISSUERS_FILE", "/nonexistent/issuers.json"),
        ("JWT_HS256_SECRET", "lambda-authorizer-test-secret-32b"),
    ]);
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains("set only one of") && text.contains("JWT_ISSUERS_FILE"),
        "{text}"
    );
}
