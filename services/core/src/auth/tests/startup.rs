//! Start-up: a verifier without keys, or with an unusable JWKS file, refuses to build.

use super::*;

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
