//! Several issuers (docs/design.md: Identity per issuer): each token verifies with its own
//! issuer's keys and tenants, never another's; fetches stay per issuer.

use super::*;

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
