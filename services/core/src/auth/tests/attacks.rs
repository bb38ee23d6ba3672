//! The attack suite: every way a token can be wrong, each refused with its error.

use super::*;

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
