//! History, `resume` and presence through the real binary (each scenario runs on both
//! rosters; with `--roster dynamodb` history lives in DynamoDB Local too).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{json, Value};

use super::harness::{token, Backend, Client, TestServer};

/// A client that reconnects and resumes gets exactly what it missed — to its user, its
/// tenant and everyone — oldest first, then `resumed` complete; never a `connections`
/// message, another user's or another tenant's.
pub async fn resume_after_a_reconnect_gets_exactly_what_was_missed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = token("acme", "alice", &[]);
    let publisher = token("acme", "backend", &["publisher"]);
    let globex = token("globex", "backend", &["publisher"]);
    let admin = token("ops", "root", &["admin"]);

    let mut client = Client::connect(&server, &alice).await;
    let (status, _) = server
        .publish(
            &publisher,
            &json!({"id":"first","target":{"type":"users","tenant":"acme","users":["alice"]},"data":0}),
        )
        .await;
    assert_eq!(status, 202);
    let first = client.next_json().await;
    assert_eq!(first["id"], "first");
    let since = first["cursor"]
        .as_str()
        .expect("a recorded frame carries its cursor")
        .to_string();
    let _ = client.socket.close(None).await;
    drop(client);

    // Away: three for alice, and three that are not hers to replay.
    let bob_conn = Client::connect(&server, &token("acme", "bob", &[])).await;
    for (token, envelope) in [
        (
            &publisher,
            json!({"id":"to-alice","target":{"type":"users","tenant":"acme","users":["alice"]},"data":1}),
        ),
        (
            &publisher,
            json!({"id":"to-bob","target":{"type":"users","tenant":"acme","users":["bob"]},"data":2}),
        ),
        (
            &publisher,
            json!({"id":"to-acme","target":{"type":"tenant","tenant":"acme"},"data":3}),
        ),
        (
            &globex,
            json!({"id":"to-globex","target":{"type":"tenant","tenant":"globex"},"data":4}),
        ),
        (
            &publisher,
            json!({"id":"to-bob-conn","target":{"type":"connections","tenant":"acme","connectionIds":[bob_conn.connection_id]},"data":5}),
        ),
        (
            &admin,
            json!({"id":"to-all","target":{"type":"broadcast"},"data":6}),
        ),
    ] {
        let (status, body) = server.publish(token, &envelope).await;
        assert_eq!(status, 202, "{body}");
        // One at a time, so the expected order is the publish order.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut client = Client::connect(&server, &alice).await;
    client
        .send(&json!({"action":"resume","since":since}).to_string())
        .await;
    let mut ids = Vec::new();
    let resumed = loop {
        let frame = client.next_json().await;
        if frame["type"] == "resumed" {
            break frame;
        }
        ids.push(frame["id"].as_str().unwrap().to_string());
    };
    assert_eq!(
        ids,
        ["to-alice", "to-acme", "to-all"],
        "oldest first, hers only"
    );
    assert_eq!(resumed, json!({"type":"resumed","count":3,"complete":true}));

    let invalid = client
        .request(r#"{"action":"resume","since":"not-a-cursor"}"#)
        .await;
    assert_eq!(invalid, json!({"type":"error","error":"invalid_cursor"}));
}

/// A cursor older than the retention resumes incomplete (the client must reload).
pub async fn resume_past_retention_is_incomplete(backend: Backend) {
    let server = TestServer::start_with(backend, &[], &[("HISTORY_TTL_SECS", "1")]).await;
    let alice = token("acme", "alice", &[]);
    let publisher = token("acme", "backend", &["publisher"]);
    let mut client = Client::connect(&server, &alice).await;
    let (status, _) = server
        .publish(
            &publisher,
            &json!({"id":"old","target":{"type":"tenant","tenant":"acme"},"data":0}),
        )
        .await;
    assert_eq!(status, 202);
    let since = client.next_json().await["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let resumed = client
        .request(&json!({"action":"resume","since":since}).to_string())
        .await;
    assert_eq!(
        resumed,
        json!({"type":"resumed","count":0,"complete":false})
    );
}

/// Four publishers at once while a client disconnects and resumes in a loop: after dedupe
/// by id it has every message exactly once — none missing.
pub async fn concurrent_publishers_and_a_resuming_client_lose_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = token("acme", "alice", &[]);
    let publisher = token("acme", "backend", &["publisher"]);
    const PER_PUBLISHER: usize = 40;
    let publishers: Vec<_> = (0..4)
        .map(|p| {
            let url = server.http("/v1/messages");
            let publisher = publisher.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                for n in 0..PER_PUBLISHER {
                    let target = if n % 2 == 0 {
                        json!({"type":"users","tenant":"acme","users":["alice"]})
                    } else {
                        json!({"type":"tenant","tenant":"acme"})
                    };
                    let response = http
                        .post(&url)
                        .bearer_auth(&publisher)
                        .json(&json!({"id": format!("p{p}-{n}"), "target": target, "data": n}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status().as_u16(), 202);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut since: Option<String> = None;
    let mut rounds = 0;
    let expected = 4 * PER_PUBLISHER;
    while seen.len() < expected && rounds < 200 {
        rounds += 1;
        // Frames flow from the first moment, so no `whoami` round trip here.
        let url = format!("{}?token={alice}", server.ws_url());
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("handshake");
        let mut client = Client {
            socket,
            connection_id: String::new(),
            subprotocol: None,
        };
        if let Some(cursor) = &since {
            client
                .send(&json!({"action":"resume","since":cursor}).to_string())
                .await;
        }
        // Read for a while (live frames and the replay alike), then drop the socket.
        let until = tokio::time::Instant::now() + Duration::from_millis(150);
        while let Ok(frame) = tokio::time::timeout_at(until, client.next_json()).await {
            if let Some(id) = frame["id"].as_str() {
                *seen.entry(id.to_string()).or_default() += 1;
                if let Some(cursor) = frame["cursor"].as_str() {
                    if since.as_deref().is_none_or(|s| cursor > s) {
                        since = Some(cursor.to_string());
                    }
                }
            } else if frame["type"] == "resumed" {
                assert_eq!(frame["complete"], true, "{frame}");
            }
        }
        let _ = client.socket.close(None).await;
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let ids: BTreeSet<&String> = seen.keys().collect();
    let missing: Vec<String> = (0..4)
        .flat_map(|p| (0..PER_PUBLISHER).map(move |n| format!("p{p}-{n}")))
        .filter(|id| !ids.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "missing after {rounds} rounds: {missing:?}"
    );
}

/// Presence follows a user's connections; a tenant pages; other tenants are refused.
pub async fn presence_follows_connections(backend: Backend) {
    let server = TestServer::start(backend).await;
    let publisher = token("acme", "backend", &["publisher"]);
    let http = reqwest::Client::new();
    let get = |path: String, token: String| {
        let http = http.clone();
        let url = server.http(&path);
        async move {
            let response = http.get(url).bearer_auth(token).send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let user_path = "/v1/tenants/acme/users/alice/presence".to_string();
    let (status, body) = get(user_path.clone(), publisher.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["online"], false);

    let one = Client::connect(&server, &token("acme", "alice", &[])).await;
    let mut two = Client::connect(&server, &token("acme", "alice", &[])).await;
    let (_, body) = get(user_path.clone(), publisher.clone()).await;
    assert_eq!(body["online"], true);
    let connections: BTreeSet<String> = body["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["connectionId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        connections,
        BTreeSet::from([one.connection_id.clone(), two.connection_id.clone()])
    );
    drop(one);
    let _ = two.socket.close(None).await;
    drop(two);
    super::harness::eventually(Duration::from_secs(10), "alice offline", || {
        let fetch = get(user_path.clone(), publisher.clone());
        async move { fetch.await.1["online"] == false }
    })
    .await;

    let (status, _) = get(
        "/v1/tenants/acme/presence".into(),
        token("globex", "backend", &["publisher"]),
    )
    .await;
    assert_eq!(status, 403, "a publisher of another tenant");
    let (status, _) = get(
        "/v1/tenants/acme/presence?limit=0".into(),
        publisher.clone(),
    )
    .await;
    assert_eq!(status, 400);
}

/// Tenant presence pages 2,500 live connections 1,000 at a time, each exactly once.
pub async fn presence_pages_a_large_tenant(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut sockets = Vec::new();
    for i in 0..2_500 {
        // 25 users of 100 connections each (the per-user limit).
        let url = format!(
            "{}?token={}",
            server.ws_url(),
            token("big", &format!("crowd-{}", i % 25), &[])
        );
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("handshake");
        sockets.push(socket);
    }
    let http = reqwest::Client::new();
    let publisher = token("big", "backend", &["publisher"]);
    let mut next: Option<String> = None;
    let mut sizes = Vec::new();
    let mut seen = BTreeSet::new();
    loop {
        let mut path = "/v1/tenants/big/presence?limit=1000".to_string();
        if let Some(next) = &next {
            path.push_str(&format!("&next={}", urlencode(next)));
        }
        let response = http
            .get(server.http(&path))
            .bearer_auth(&publisher)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.unwrap();
        let page = body["connections"].as_array().unwrap();
        sizes.push(page.len());
        seen.extend(
            page.iter()
                .map(|c| c["connectionId"].as_str().unwrap().to_string()),
        );
        match body["next"].as_str() {
            Some(token) => next = Some(token.to_string()),
            None => break,
        }
    }
    assert_eq!(&sizes[..3], [1_000, 1_000, 500], "{sizes:?}");
    assert_eq!(seen.len(), 2_500);
    drop(sockets);
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn short_token(tenant: &str, user: &str, secs: u64) -> String {
    switchboard_core::auth::mint_hs256(
        super::harness::SECRET.as_bytes(),
        &switchboard_model::TenantId::parse(tenant).unwrap(),
        &switchboard_model::UserId::parse(user).unwrap(),
        &[],
        Duration::from_secs(secs),
    )
}

/// A connection ends (4001) when its token expires; a `refresh` with a new token of the
/// same user keeps it open; a refresh for another user is refused and changes nothing.
pub async fn token_expiry_closes_unless_refreshed(backend: Backend) {
    let server = TestServer::start_with(backend, &[], &[("JWT_LEEWAY_SECS", "0")]).await;
    // Expires on its own.
    let mut lapsing = Client::connect(&server, &short_token("acme", "alice", 3)).await;
    // Refreshed in band, then a refused refresh for another user.
    let mut refreshed = Client::connect(&server, &short_token("acme", "bob", 3)).await;
    let reply = refreshed
        .request(&json!({"action":"refresh","token": short_token("acme", "bob", 60)}).to_string())
        .await;
    assert_eq!(reply["type"], "refreshed", "{reply}");
    assert!(reply["exp"].as_i64().unwrap() > time::OffsetDateTime::now_utc().unix_timestamp() + 50);
    let mut mismatched = Client::connect(&server, &short_token("acme", "carol", 3)).await;
    let reply = mismatched
        .request(
            &json!({"action":"refresh","token": short_token("acme", "mallory", 60)}).to_string(),
        )
        .await;
    assert_eq!(reply, json!({"type":"error","error":"identity_mismatch"}));

    assert_eq!(lapsing.close_code().await, Some(4001));
    assert_eq!(
        mismatched.close_code().await,
        Some(4001),
        "the old expiry stood"
    );
    // Past the first token's expiry, the refreshed connection still answers.
    let pong = refreshed.request(r#"{"action":"ping"}"#).await;
    assert_eq!(pong, json!({"type":"pong"}));
}
