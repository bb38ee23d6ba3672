//! Acceptance: what a valid token may look like (algorithms, roles, configured claims,
//! leeway, `iss`/`aud`), and a minted token verifying.

use super::*;

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
