//! The JWKS URL cache against a local HTTP server: hits, refetch on an unknown `kid`
//! (at most once per interval), an endpoint down, nothing listening, garbage served.

use super::*;

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
