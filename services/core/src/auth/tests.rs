//! The attack suite (every way a token can be wrong, each with its error), the
//! acceptance cases, and the JWKS URL cache against a local HTTP server.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use switchboard_model::{TenantId, UserId};

use super::*;

const SECRET: &[u8] = b"an-hs256-test-secret-of-32-bytes!";
const RSA1_PRIVATE: &[u8] = include_bytes!("testdata/rsa1_private.pem");
const RSA1_PUBLIC: &[u8] = include_bytes!("testdata/rsa1_public.pem");
const RSA2_PRIVATE: &[u8] = include_bytes!("testdata/rsa2_private.pem");
const EC1_PRIVATE: &[u8] = include_bytes!("testdata/ec1_private.pem");
const JWKS: &str = include_str!("testdata/jwks.json");
const JWKS_ROTATED: &str = include_str!("testdata/jwks_rotated.json");

fn jwks_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/auth/testdata/jwks.json")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Valid claims for tenant `acme`, user `alice`, expiring in 10 minutes.
fn claims() -> Value {
    json!({"sub": "alice", "tenant": "acme", "roles": ["publisher"], "exp": now() + 600})
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn hs(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET),
        None,
        claims,
    )
}

fn rs(kid: &str, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(RSA1_PRIVATE).unwrap();
    sign(Algorithm::RS256, &key, Some(kid), claims)
}

fn rs2(kid: &str, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(RSA2_PRIVATE).unwrap();
    sign(Algorithm::RS256, &key, Some(kid), claims)
}

fn es(kid: &str, claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(EC1_PRIVATE).unwrap();
    sign(Algorithm::ES256, &key, Some(kid), claims)
}

/// A token with an arbitrary header and an empty or given signature.
fn raw(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        signature
    )
}

async fn hs_verifier() -> Verifier {
    Verifier::new(AuthConfig::with_hs256_secret(SECRET))
        .await
        .unwrap()
}

async fn verifier_with(edit: impl FnOnce(&mut AuthConfig)) -> Verifier {
    let mut config = AuthConfig::with_hs256_secret(SECRET);
    edit(&mut config);
    Verifier::new(config).await.unwrap()
}

async fn jwks_verifier() -> Verifier {
    let config = AuthConfig {
        keys: KeySource::JwksFile(jwks_path()),
        ..AuthConfig::default()
    };
    Verifier::new(config).await.unwrap()
}

// ---------------------------------------------------------------- acceptance

#[tokio::test]
async fn accepts_hs256_rs256_and_es256() {
    let claims = claims();
    let expected = Claims {
        tenant: TenantId::parse("acme").unwrap(),
        user: UserId::parse("alice").unwrap(),
        roles: vec!["publisher".into()],
        // The single key source's admins are global (today's behaviour).
        admin_scope: switchboard_model::AdminScope::Global,
        exp: claims["exp"].as_i64(),
        issuer: None,
    };
    assert_eq!(
        hs_verifier().await.verify(&hs(&claims)).await,
        Ok(expected.clone())
    );
    let jwks = jwks_verifier().await;
    assert_eq!(
        jwks.verify(&rs("rsa-1", &claims)).await,
        Ok(expected.clone())
    );
    assert_eq!(jwks.verify(&es("ec-1", &claims)).await, Ok(expected));
}

#[tokio::test]
async fn roles_as_array_or_space_separated_string() {
    let v = hs_verifier().await;
    let array = with(claims(), "roles", json!(["admin", "publisher"]));
    assert_eq!(
        v.verify(&hs(&array)).await.unwrap().roles,
        ["admin", "publisher"]
    );
    let text = with(claims(), "roles", json!("admin  publisher"));
    assert_eq!(
        v.verify(&hs(&text)).await.unwrap().roles,
        ["admin", "publisher"]
    );
    let none = without(claims(), "roles");
    assert!(v.verify(&hs(&none)).await.unwrap().roles.is_empty());
    let bad = with(claims(), "roles", json!(42));
    assert!(matches!(
        v.verify(&hs(&bad)).await,
        Err(AuthError::InvalidClaim(c, _)) if c == "roles"
    ));
}

#[tokio::test]
async fn tenant_and_roles_from_configured_claims() {
    let v = verifier_with(|c| {
        c.tenant_claim = "custom:tenant_id".into();
        c.roles_claim = "cognito:groups".into();
    })
    .await;
    let token = hs(&json!({
        "sub": "bob", "custom:tenant_id": "globex", "cognito:groups": ["admin"],
        "exp": now() + 60
    }));
    let claims = v.verify(&token).await.unwrap();
    assert_eq!(claims.tenant.as_str(), "globex");
    assert_eq!(claims.user.as_str(), "bob");
    assert_eq!(claims.roles, ["admin"]);
    // The default claim name no longer counts.
    assert_eq!(
        v.verify(&hs(&self::claims())).await,
        Err(AuthError::MissingClaim("custom:tenant_id".into()))
    );
}

#[tokio::test]
async fn leeway_honoured_at_the_boundary() {
    // Leeway 30 s; 2 s margins keep the test independent of a second ticking over.
    let v = verifier_with(|c| c.leeway_secs = 30).await;
    let inside = with(claims(), "exp", json!(now() - 28));
    assert!(v.verify(&hs(&inside)).await.is_ok());
    let outside = with(claims(), "exp", json!(now() - 32));
    assert_eq!(v.verify(&hs(&outside)).await, Err(AuthError::Expired));

    let inside = with(claims(), "nbf", json!(now() + 28));
    assert!(v.verify(&hs(&inside)).await.is_ok());
    let outside = with(claims(), "nbf", json!(now() + 32));
    assert_eq!(v.verify(&hs(&outside)).await, Err(AuthError::NotYetValid));
}

#[tokio::test]
async fn iss_and_aud_checked_only_when_configured() {
    let v = hs_verifier().await;
    let extra = with(
        with(claims(), "iss", json!("someone")),
        "aud",
        json!("something"),
    );
    assert!(v.verify(&hs(&extra)).await.is_ok());

    let v = verifier_with(|c| {
        c.issuer = Some("https://idp.example".into());
        c.audience = vec!["app".into()];
    })
    .await;
    let good = with(
        with(claims(), "iss", json!("https://idp.example")),
        "aud",
        json!(["other", "app"]),
    );
    assert!(v.verify(&hs(&good)).await.is_ok());
}

#[tokio::test]
async fn minted_token_verifies() {
    let tenant = TenantId::parse("acme").unwrap();
    let user = UserId::parse("carol").unwrap();
    let token = mint_hs256(
        SECRET,
        &tenant,
        &user,
        &["admin".into()],
        Duration::from_secs(60),
    );
    let claims = hs_verifier().await.verify(&token).await.unwrap();
    assert_eq!(
        (claims.tenant, claims.user, claims.roles),
        (tenant.clone(), user.clone(), vec!["admin".to_string()])
    );

    let mut config = AuthConfig::with_hs256_secret(SECRET);
    config.tenant_claim = "custom:tenant_id".into();
    config.issuer = Some("iss".into());
    config.audience = vec!["aud".into()];
    let token = mint_hs256_with(
        SECRET,
        &MintOptions::from_config(&config),
        &tenant,
        &user,
        &[],
        Duration::from_secs(60),
    );
    assert!(Verifier::new(config)
        .await
        .unwrap()
        .verify(&token)
        .await
        .is_ok());
}

// ---------------------------------------------------------------- attack suite

#[tokio::test]
async fn rejects_alg_none() {
    let header = json!({"alg": "none", "typ": "JWT"});
    assert_eq!(
        hs_verifier()
            .await
            .verify(&raw(&header, &claims(), ""))
            .await,
        Err(AuthError::WrongAlgorithm("none".into()))
    );
    let header = json!({"alg": "none", "typ": "JWT", "kid": "rsa-1"});
    assert_eq!(
        jwks_verifier()
            .await
            .verify(&raw(&header, &claims(), ""))
            .await,
        Err(AuthError::WrongAlgorithm("none".into()))
    );
    let header = json!({"typ": "JWT"});
    assert_eq!(
        hs_verifier()
            .await
            .verify(&raw(&header, &claims(), ""))
            .await,
        Err(AuthError::WrongAlgorithm("".into()))
    );
}

#[tokio::test]
async fn rejects_hs256_signed_with_the_rsa_public_key() {
    // Key confusion: the RSA public key's PEM used as an HMAC secret.
    let forged = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(RSA1_PUBLIC),
        Some("rsa-1"),
        &claims(),
    );
    assert_eq!(
        jwks_verifier().await.verify(&forged).await,
        Err(AuthError::WrongAlgorithm("HS256".into()))
    );
}

#[tokio::test]
async fn rejects_rs256_token_on_an_hs256_verifier() {
    assert_eq!(
        hs_verifier().await.verify(&rs("rsa-1", &claims())).await,
        Err(AuthError::WrongAlgorithm("RS256".into()))
    );
}

#[tokio::test]
async fn rejects_tampered_payload() {
    let v = hs_verifier().await;
    let token = hs(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    let evil = with(claims(), "tenant", json!("globex"));
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(evil.to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(v.verify(&tampered).await, Err(AuthError::BadSignature));

    let token = rs("rsa-1", &claims());
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(evil.to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(
        jwks_verifier().await.verify(&tampered).await,
        Err(AuthError::BadSignature)
    );
}

#[tokio::test]
async fn rejects_tampered_signature() {
    fn flip_signature(token: &str) -> String {
        let (message, signature) = token.rsplit_once('.').unwrap();
        let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature)
            .unwrap();
        bytes[5] ^= 0x01;
        format!("{message}.{}", b64(&bytes))
    }
    assert_eq!(
        hs_verifier()
            .await
            .verify(&flip_signature(&hs(&claims())))
            .await,
        Err(AuthError::BadSignature)
    );
    let jwks = jwks_verifier().await;
    assert_eq!(
        jwks.verify(&flip_signature(&rs("rsa-1", &claims()))).await,
        Err(AuthError::BadSignature)
    );
    assert_eq!(
        jwks.verify(&flip_signature(&es("ec-1", &claims()))).await,
        Err(AuthError::BadSignature)
    );
}

#[tokio::test]
async fn rejects_token_signed_with_other_key() {
    assert_eq!(
        jwks_verifier().await.verify(&rs2("rsa-1", &claims())).await,
        Err(AuthError::BadSignature)
    );
    let other = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"another-secret-another-secret-!!"),
        None,
        &claims(),
    );
    assert_eq!(
        hs_verifier().await.verify(&other).await,
        Err(AuthError::BadSignature)
    );
}

#[tokio::test]
async fn rejects_expired_beyond_leeway() {
    let expired = with(claims(), "exp", json!(now() - 31 - 60));
    assert_eq!(
        hs_verifier().await.verify(&hs(&expired)).await,
        Err(AuthError::Expired)
    );
}

#[tokio::test]
async fn rejects_nbf_in_the_future() {
    let early = with(claims(), "nbf", json!(now() + 120));
    assert_eq!(
        hs_verifier().await.verify(&hs(&early)).await,
        Err(AuthError::NotYetValid)
    );
}

#[tokio::test]
async fn rejects_missing_exp() {
    assert_eq!(
        hs_verifier()
            .await
            .verify(&hs(&without(claims(), "exp")))
            .await,
        Err(AuthError::MissingClaim("exp".into()))
    );
    let text_exp = with(claims(), "exp", json!("tomorrow"));
    assert_eq!(
        hs_verifier().await.verify(&hs(&text_exp)).await,
        Err(AuthError::MissingClaim("exp".into()))
    );
}

#[tokio::test]
async fn rejects_wrong_or_missing_issuer() {
    let v = verifier_with(|c| c.issuer = Some("https://idp.example".into())).await;
    let wrong = with(claims(), "iss", json!("https://evil.example"));
    assert_eq!(v.verify(&hs(&wrong)).await, Err(AuthError::WrongIssuer));
    assert_eq!(
        v.verify(&hs(&claims())).await,
        Err(AuthError::MissingClaim("iss".into()))
    );
}

#[tokio::test]
async fn rejects_wrong_or_missing_audience() {
    let v = verifier_with(|c| c.audience = vec!["app".into()]).await;
    let wrong = with(claims(), "aud", json!("other-app"));
    assert_eq!(v.verify(&hs(&wrong)).await, Err(AuthError::WrongAudience));
    let wrong = with(claims(), "aud", json!(["x", "y"]));
    assert_eq!(v.verify(&hs(&wrong)).await, Err(AuthError::WrongAudience));
    assert_eq!(
        v.verify(&hs(&claims())).await,
        Err(AuthError::MissingClaim("aud".into()))
    );
}

#[tokio::test]
async fn rejects_missing_tenant_or_sub() {
    let v = hs_verifier().await;
    assert_eq!(
        v.verify(&hs(&without(claims(), "tenant"))).await,
        Err(AuthError::MissingClaim("tenant".into()))
    );
    assert_eq!(
        v.verify(&hs(&without(claims(), "sub"))).await,
        Err(AuthError::MissingClaim("sub".into()))
    );
    assert!(matches!(
        v.verify(&hs(&with(claims(), "tenant", json!(7)))).await,
        Err(AuthError::InvalidClaim(c, _)) if c == "tenant"
    ));
}

#[tokio::test]
async fn rejects_tenant_containing_hash() {
    assert!(matches!(
        hs_verifier().await.verify(&hs(&with(claims(), "tenant", json!("acme#evil")))).await,
        Err(AuthError::InvalidClaim(c, _)) if c == "tenant"
    ));
}

#[tokio::test]
async fn rejects_user_of_129_chars() {
    let v = hs_verifier().await;
    assert!(v
        .verify(&hs(&with(claims(), "sub", json!("u".repeat(128)))))
        .await
        .is_ok());
    assert!(matches!(
        v.verify(&hs(&with(claims(), "sub", json!("u".repeat(129))))).await,
        Err(AuthError::InvalidClaim(c, _)) if c == "sub"
    ));
    assert!(matches!(
        v.verify(&hs(&with(claims(), "sub", json!("a\u{0}b")))).await,
        Err(AuthError::InvalidClaim(c, _)) if c == "sub"
    ));
}

#[tokio::test]
async fn rejects_token_over_8_kib() {
    let big = with(claims(), "padding", json!("x".repeat(8 * 1024)));
    let token = hs(&big);
    assert!(token.len() > MAX_TOKEN_BYTES);
    assert_eq!(
        hs_verifier().await.verify(&token).await,
        Err(AuthError::TooLarge(token.len()))
    );
    // Rejected before parsing: garbage of that size gives the same answer.
    let garbage = "!".repeat(MAX_TOKEN_BYTES + 1);
    assert_eq!(
        hs_verifier().await.verify(&garbage).await,
        Err(AuthError::TooLarge(MAX_TOKEN_BYTES + 1))
    );
}

#[tokio::test]
async fn rejects_unknown_kid() {
    let v = jwks_verifier().await;
    assert_eq!(
        v.verify(&rs("nope", &claims())).await,
        Err(AuthError::UnknownKid(Some("nope".into())))
    );
    let key = EncodingKey::from_rsa_pem(RSA1_PRIVATE).unwrap();
    // Two keys in the set: a token without `kid` cannot pick one.
    assert_eq!(
        v.verify(&sign(Algorithm::RS256, &key, None, &claims()))
            .await,
        Err(AuthError::UnknownKid(None))
    );
}

#[tokio::test]
async fn rejects_es256_key_with_rs256_header() {
    // kid names the EC key; the header claims RS256 (signed with an RSA key).
    assert_eq!(
        jwks_verifier().await.verify(&rs("ec-1", &claims())).await,
        Err(AuthError::WrongAlgorithm("RS256".into()))
    );
    // And the other way round.
    assert_eq!(
        jwks_verifier().await.verify(&es("rsa-1", &claims())).await,
        Err(AuthError::WrongAlgorithm("ES256".into()))
    );
}

#[tokio::test]
async fn rejects_malformed_tokens() {
    let v = hs_verifier().await;
    for token in ["", "abc", "a.b", "a.b.c.d", "!!!.b.c", "bm90LWpzb24.b.c"] {
        assert!(
            matches!(v.verify(token).await, Err(AuthError::Malformed(_))),
            "{token:?}"
        );
    }
    // Correctly signed, but the payload is not JSON.
    let message = format!("{}.{}", b64(br#"{"alg":"HS256"}"#), b64(b"not json"));
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(SECRET),
        Algorithm::HS256,
    )
    .unwrap();
    assert!(matches!(
        v.verify(&format!("{message}.{signature}")).await,
        Err(AuthError::Malformed(_))
    ));
    let crit = json!({"alg": "HS256", "crit": ["exp"]});
    assert!(matches!(
        v.verify(&raw(&crit, &claims(), "x")).await,
        Err(AuthError::Malformed(_))
    ));
}

// ---------------------------------------------------------------- start-up

#[tokio::test]
async fn refuses_to_build_without_keys_or_with_bad_jwks_file() {
    assert_eq!(
        Verifier::new(AuthConfig::default()).await.unwrap_err(),
        AuthError::NoKeySource
    );
    let missing = AuthConfig {
        keys: KeySource::JwksFile("/nonexistent/jwks.json".into()),
        ..AuthConfig::default()
    };
    assert!(matches!(
        Verifier::new(missing).await,
        Err(AuthError::InvalidJwks(_))
    ));
    let dir = std::env::temp_dir().join(format!("switchboard-jwks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, body) in [
        ("garbage.json", "not json"),
        ("empty.json", r#"{"keys": []}"#),
        (
            "oct.json",
            r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]}"#,
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        let config = AuthConfig {
            keys: KeySource::JwksFile(path),
            ..AuthConfig::default()
        };
        assert!(
            matches!(Verifier::new(config).await, Err(AuthError::InvalidJwks(_))),
            "{name}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------- JWKS URL

/// A local JWKS endpoint that counts fetches and can be taken down.
struct JwksServer {
    url: String,
    fetches: Arc<AtomicUsize>,
    up: Arc<AtomicBool>,
    body: Arc<RwLock<String>>,
}

impl JwksServer {
    async fn start(body: &str) -> Self {
        let fetches = Arc::new(AtomicUsize::new(0));
        let up = Arc::new(AtomicBool::new(true));
        let body = Arc::new(RwLock::new(body.to_string()));
        let (f, u, b) = (fetches.clone(), up.clone(), body.clone());
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let (f, u, b) = (f.clone(), u.clone(), b.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    if u.load(Ordering::SeqCst) {
                        (http::StatusCode::OK, b.read().unwrap().clone())
                    } else {
                        (http::StatusCode::SERVICE_UNAVAILABLE, String::new())
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{addr}/jwks.json"),
            fetches,
            up,
            body,
        }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    async fn verifier(&self, min_refresh_interval: Duration) -> Verifier {
        let config = AuthConfig {
            keys: KeySource::JwksUrl(self.url.clone()),
            jwks_min_refresh_interval: min_refresh_interval,
            ..AuthConfig::default()
        };
        Verifier::new(config).await.unwrap()
    }
}

#[tokio::test]
async fn jwks_url_second_verification_is_a_cache_hit() {
    let server = JwksServer::start(JWKS).await;
    let v = server.verifier(Duration::from_millis(100)).await;
    assert_eq!(server.fetches(), 1, "fetched once at start-up");
    assert!(v.verify(&rs("rsa-1", &claims())).await.is_ok());
    assert!(v.verify(&es("ec-1", &claims())).await.is_ok());
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(v.verify(&rs("rsa-1", &claims())).await.is_ok());
    assert_eq!(server.fetches(), 1);
}

#[tokio::test]
async fn jwks_url_unknown_kid_refetches_once_then_verifies_rotated_key() {
    let server = JwksServer::start(JWKS).await;
    let v = server.verifier(Duration::from_millis(100)).await;
    assert!(v.verify(&rs("rsa-1", &claims())).await.is_ok());
    *server.body.write().unwrap() = JWKS_ROTATED.to_string();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let claims = v.verify(&rs2("rsa-2", &claims())).await.unwrap();
    assert_eq!(claims.user.as_str(), "alice");
    assert_eq!(server.fetches(), 2);
    assert!(v.verify(&rs2("rsa-2", &self::claims())).await.is_ok());
    assert_eq!(server.fetches(), 2);
}

#[tokio::test]
async fn jwks_url_flood_of_unknown_kids_fetches_at_most_once_per_interval() {
    let server = JwksServer::start(JWKS).await;
    let interval = Duration::from_millis(400);
    let v = server.verifier(interval).await;
    assert_eq!(server.fetches(), 1);
    tokio::time::sleep(interval + Duration::from_millis(50)).await;

    for round in 0..2 {
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let v = v.clone();
                let token = rs(&format!("unknown-{round}-{i}"), &claims());
                tokio::spawn(async move { v.verify(&token).await })
            })
            .collect();
        for task in tasks {
            assert!(matches!(
                task.await.unwrap(),
                Err(AuthError::UnknownKid(Some(_)))
            ));
        }
    }
    assert_eq!(server.fetches(), 2, "one refresh for both floods");

    tokio::time::sleep(interval + Duration::from_millis(50)).await;
    let _ = v.verify(&rs("still-unknown", &claims())).await;
    let _ = v.verify(&rs("still-unknown-2", &claims())).await;
    assert_eq!(server.fetches(), 3, "one more after the interval");
}

#[tokio::test]
async fn jwks_url_endpoint_down_fails_then_recovers() {
    let server = JwksServer::start(JWKS).await;
    server.up.store(false, Ordering::SeqCst);
    let interval = Duration::from_millis(150);
    let v = server.verifier(interval).await;
    let token = rs("rsa-1", &claims());
    assert!(matches!(
        v.verify(&token).await,
        Err(AuthError::JwksUnavailable(_))
    ));
    server.up.store(true, Ordering::SeqCst);
    tokio::time::sleep(interval + Duration::from_millis(50)).await;
    assert!(v.verify(&token).await.is_ok());

    // Down again: cached keys keep working.
    server.up.store(false, Ordering::SeqCst);
    tokio::time::sleep(interval + Duration::from_millis(50)).await;
    assert!(v.verify(&token).await.is_ok());
}

#[tokio::test]
async fn jwks_url_nothing_listening_is_an_error_not_a_panic() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = AuthConfig {
        keys: KeySource::JwksUrl(format!("http://{addr}/jwks.json")),
        jwks_min_refresh_interval: Duration::from_millis(10),
        ..AuthConfig::default()
    };
    let v = Verifier::new(config).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(matches!(
        v.verify(&rs("rsa-1", &claims())).await,
        Err(AuthError::JwksUnavailable(_))
    ));
}

#[tokio::test]
async fn jwks_url_serving_garbage_is_unavailable() {
    let server = JwksServer::start("<html>oops</html>").await;
    let v = server.verifier(Duration::from_millis(50)).await;
    assert!(matches!(
        v.verify(&rs("rsa-1", &claims())).await,
        Err(AuthError::JwksUnavailable(_))
    ));
}

// ---------------------------------------------------------------- issuers (docs/design.md: Identity per issuer)

const ISS_A: &str = "https://a.example";
const ISS_B: &str = "https://b.example";

/// A JWKS document holding one public key of `JWKS_ROTATED` (`rsa-1`, `rsa-2` or
/// `ec-1`) published under the `kid` `as_kid`.
fn jwks_with(source_kid: &str, as_kid: &str) -> String {
    let doc: Value = serde_json::from_str(JWKS_ROTATED).unwrap();
    let mut key = doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == source_kid)
        .unwrap()
        .clone();
    key["kid"] = json!(as_kid);
    json!({ "keys": [key] }).to_string()
}

pub(super) fn issuer(iss: &str, keys: IssuerKeys, tenants: &[&str]) -> IssuerConfig {
    IssuerConfig {
        issuer: iss.to_string(),
        keys,
        audience: Vec::new(),
        tenants: if tenants == ["*"] {
            AllowedTenants::Any
        } else {
            AllowedTenants::Only(
                tenants
                    .iter()
                    .map(|t| TenantId::parse(*t).unwrap())
                    .collect(),
            )
        },
        tenant_claim: None,
        roles_claim: None,
        global_admin: false,
        allow_shared_tenants: false,
    }
}

async fn issuers_verifier(issuers: Vec<IssuerConfig>, min_refresh_interval: Duration) -> Verifier {
    let config = AuthConfig {
        keys: KeySource::Issuers(IssuersConfig {
            path: "issuers.json".into(),
            issuers,
        }),
        jwks_min_refresh_interval: min_refresh_interval,
        ..AuthConfig::default()
    };
    Verifier::new(config).await.unwrap()
}

/// Claims of user alice in `tenant` from `iss`, with `roles`.
fn issued(iss: &str, tenant: &str, roles: &[&str]) -> Value {
    json!({"iss": iss, "sub": "alice", "tenant": tenant, "roles": roles, "exp": now() + 600})
}

/// Issuer A (`rsa-1`'s key as `a-1`, tenant acme) and issuer B (`rsa-2`'s key as `b-1`,
/// tenant globex), each behind its own JWKS server.
async fn two_issuers(interval: Duration) -> (JwksServer, JwksServer, Verifier) {
    let a = JwksServer::start(&jwks_with("rsa-1", "a-1")).await;
    let b = JwksServer::start(&jwks_with("rsa-2", "b-1")).await;
    let v = issuers_verifier(
        vec![
            issuer(ISS_A, IssuerKeys::JwksUrl(a.url.clone()), &["acme"]),
            issuer(ISS_B, IssuerKeys::JwksUrl(b.url.clone()), &["globex"]),
        ],
        interval,
    )
    .await;
    (a, b, v)
}

#[tokio::test]
async fn issuer_tokens_verify_with_their_own_keys_and_tenants() {
    let (a, b, v) = two_issuers(Duration::from_secs(60)).await;
    assert_eq!(
        (a.fetches(), b.fetches()),
        (1, 1),
        "one fetch each at start-up"
    );
    let claims = v
        .verify(&rs("a-1", &issued(ISS_A, "acme", &["admin"])))
        .await
        .unwrap();
    assert_eq!(claims.tenant.as_str(), "acme");
    assert_eq!(claims.admin_scope, switchboard_model::AdminScope::Tenant);
    assert!(claims.may_administer(&claims.tenant));
    assert!(!claims.is_global_admin());
    assert!(v
        .verify(&rs2("b-1", &issued(ISS_B, "globex", &[])))
        .await
        .is_ok());
    assert_eq!((a.fetches(), b.fetches()), (1, 1));
    assert!(format!("{v:?}").contains(ISS_A));
}

#[tokio::test]
async fn rejects_token_signed_by_issuer_a_claiming_issuer_b() {
    let (_a, b, v) = two_issuers(Duration::from_secs(60)).await;
    // A's key and A's kid, `iss` B: B's keys have no such kid.
    assert_eq!(
        v.verify(&rs("a-1", &issued(ISS_B, "globex", &["admin"])))
            .await,
        Err(AuthError::UnknownKid(Some("a-1".into())))
    );
    // A's key under B's kid: B's key does not match the signature.
    assert_eq!(
        v.verify(&rs("b-1", &issued(ISS_B, "globex", &["admin"])))
            .await,
        Err(AuthError::BadSignature)
    );
    // Without a kid (B has one key, so it is selected): still B's key.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = None;
    let token = jsonwebtoken::encode(
        &header,
        &issued(ISS_B, "globex", &[]),
        &EncodingKey::from_rsa_pem(RSA1_PRIVATE).unwrap(),
    )
    .unwrap();
    assert_eq!(v.verify(&token).await, Err(AuthError::BadSignature));
    assert!(b.fetches() <= 2, "at most one rate-limited refresh");
}

#[tokio::test]
async fn rejects_tenant_not_in_the_issuers_list() {
    let (_a, _b, v) = two_issuers(Duration::from_secs(60)).await;
    assert_eq!(
        v.verify(&rs("a-1", &issued(ISS_A, "globex", &["publisher"])))
            .await,
        Err(AuthError::TenantNotAllowed {
            issuer: ISS_A.into(),
            tenant: "globex".into()
        })
    );
}

#[tokio::test]
async fn two_issuers_publishing_the_same_kid_never_verify_each_others_tokens() {
    let a = JwksServer::start(&jwks_with("rsa-1", "shared")).await;
    let b = JwksServer::start(&jwks_with("rsa-2", "shared")).await;
    let v = issuers_verifier(
        vec![
            issuer(ISS_A, IssuerKeys::JwksUrl(a.url.clone()), &["*"]),
            issuer(ISS_B, IssuerKeys::JwksUrl(b.url.clone()), &["*"]),
        ],
        Duration::from_secs(60),
    )
    .await;
    assert!(v
        .verify(&rs("shared", &issued(ISS_A, "acme", &[])))
        .await
        .is_ok());
    assert!(v
        .verify(&rs2("shared", &issued(ISS_B, "acme", &[])))
        .await
        .is_ok());
    // Whichever verified first, the cache never lets one issuer's key serve the other.
    assert_eq!(
        v.verify(&rs("shared", &issued(ISS_B, "acme", &[]))).await,
        Err(AuthError::BadSignature)
    );
    assert_eq!(
        v.verify(&rs2("shared", &issued(ISS_A, "acme", &[]))).await,
        Err(AuthError::BadSignature)
    );
    assert_eq!((a.fetches(), b.fetches()), (1, 1));
}

#[tokio::test]
async fn a_flood_of_unknown_issuers_causes_no_fetch() {
    let (a, b, v) = two_issuers(Duration::from_millis(1)).await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let v = v.clone();
            let token = rs(
                "a-1",
                &issued(&format!("https://evil-{i}.example"), "acme", &[]),
            );
            tokio::spawn(async move { v.verify(&token).await })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(
            task.await.unwrap(),
            Err(AuthError::UnknownIssuer(format!(
                "https://evil-{i}.example"
            )))
        );
    }
    // No `iss`, a non-string one, a near miss of a known one: refused the same way.
    let missing = without(issued(ISS_A, "acme", &[]), "iss");
    assert_eq!(
        v.verify(&rs("a-1", &missing)).await,
        Err(AuthError::MissingClaim("iss".into()))
    );
    let number = with(issued(ISS_A, "acme", &[]), "iss", json!(7));
    assert!(matches!(
        v.verify(&rs("a-1", &number)).await,
        Err(AuthError::InvalidClaim(c, _)) if c == "iss"
    ));
    let near = issued(&format!("{ISS_A}/"), "acme", &[]);
    assert!(matches!(
        v.verify(&rs("a-1", &near)).await,
        Err(AuthError::UnknownIssuer(_))
    ));
    let long = issued(&"x".repeat(4000), "acme", &[]);
    assert_eq!(
        v.verify(&rs("a-1", &long)).await,
        Err(AuthError::UnknownIssuer("x".repeat(128)))
    );
    assert_eq!(
        (a.fetches(), b.fetches()),
        (1, 1),
        "no fetch for any of them"
    );
}

#[tokio::test]
async fn rotation_of_one_issuer_does_not_refetch_the_other() {
    let interval = Duration::from_millis(300);
    let (a, b, v) = two_issuers(interval).await;
    tokio::time::sleep(interval + Duration::from_millis(50)).await;

    // A rotates to a new key: its first token with the new kid refetches A only.
    *a.body.write().unwrap() = jwks_with("ec-1", "a-2");
    let claims = v
        .verify(&es("a-2", &issued(ISS_A, "acme", &[])))
        .await
        .unwrap();
    assert_eq!(claims.tenant.as_str(), "acme");
    assert_eq!((a.fetches(), b.fetches()), (2, 1));
    assert!(v
        .verify(&rs2("b-1", &issued(ISS_B, "globex", &[])))
        .await
        .is_ok());
    assert_eq!((a.fetches(), b.fetches()), (2, 1));

    // A is now rate-limited; B's own refresh budget is untouched.
    let _ = v.verify(&es("a-3", &issued(ISS_A, "acme", &[]))).await;
    assert_eq!(a.fetches(), 2, "A waits for its interval");
    let _ = v.verify(&rs2("b-2", &issued(ISS_B, "globex", &[]))).await;
    assert_eq!((a.fetches(), b.fetches()), (2, 2), "B refreshes on its own");
}

#[tokio::test]
async fn issuer_rules_apply_per_issuer() {
    let jwks_file = jwks_path();
    let mut acme = issuer(ISS_A, IssuerKeys::JwksFile(jwks_file.clone()), &["acme"]);
    acme.audience = vec!["app-a".into()];
    acme.tenant_claim = Some("custom:tenant_id".into());
    acme.roles_claim = Some("cognito:groups".into());
    let mut ops = issuer(ISS_B, IssuerKeys::JwksFile(jwks_file), &["*"]);
    ops.global_admin = true;
    let v = issuers_verifier(vec![acme, ops], Duration::from_secs(60)).await;

    let token_a = |aud: Option<&str>| {
        let mut c = json!({
            "iss": ISS_A, "sub": "bob", "custom:tenant_id": "acme",
            "cognito:groups": ["admin"], "exp": now() + 600
        });
        if let Some(aud) = aud {
            c["aud"] = json!(aud);
        }
        rs("rsa-1", &c)
    };
    let claims = v.verify(&token_a(Some("app-a"))).await.unwrap();
    assert_eq!(claims.tenant.as_str(), "acme");
    assert_eq!(claims.roles, ["admin"]);
    assert!(!claims.is_global_admin());
    assert_eq!(
        v.verify(&token_a(Some("app-b"))).await,
        Err(AuthError::WrongAudience)
    );
    assert_eq!(
        v.verify(&token_a(None)).await,
        Err(AuthError::MissingClaim("aud".into()))
    );
    // B: default claim names, no audience check, any tenant, global admins.
    let claims = v
        .verify(&es(
            "ec-1",
            &with(issued(ISS_B, "anyone", &["admin"]), "aud", json!("x")),
        ))
        .await
        .unwrap();
    assert!(claims.is_global_admin());
    assert!(claims.may_administer(&TenantId::parse("globex").unwrap()));
}

#[tokio::test]
async fn issuer_key_confusion_and_alg_none_are_refused() {
    let v = issuers_verifier(
        vec![issuer(ISS_A, IssuerKeys::JwksFile(jwks_path()), &["*"])],
        Duration::from_secs(60),
    )
    .await;
    // HS256 "signed" with the RSA public key, naming A and its RSA kid.
    let confused = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(RSA1_PUBLIC),
        Some("rsa-1"),
        &issued(ISS_A, "acme", &["admin"]),
    );
    assert!(matches!(
        v.verify(&confused).await,
        Err(AuthError::WrongAlgorithm(_))
    ));
    let none = raw(
        &json!({"alg": "none", "kid": "rsa-1"}),
        &issued(ISS_A, "acme", &["admin"]),
        "",
    );
    assert!(v.verify(&none).await.is_err());
}

#[tokio::test]
async fn issuer_with_unusable_jwks_file_fails_at_start_naming_it() {
    let config = AuthConfig {
        keys: KeySource::Issuers(IssuersConfig {
            path: "issuers.json".into(),
            issuers: vec![issuer(
                ISS_A,
                IssuerKeys::JwksFile("/nonexistent/a.json".into()),
                &["*"],
            )],
        }),
        ..AuthConfig::default()
    };
    let error = Verifier::new(config).await.unwrap_err().to_string();
    assert!(
        error.contains(ISS_A) && error.contains("/nonexistent/a.json"),
        "{error}"
    );
}
