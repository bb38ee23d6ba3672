use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use super::harness::{eventually, token, Backend, Client, DeadRoster, TestServer};

/// The `/metrics` series of posts with `result`.
fn posts_total(result: &str) -> String {
    format!("switchboard_posts_total{{result=\"{result}\"}}")
}

/// The `/metrics` series of messages with `outcome`.
fn messages_total(outcome: &str) -> String {
    format!("switchboard_messages_total{{outcome=\"{outcome}\"}}")
}

fn ids_of(frames: &[Value]) -> BTreeSet<String> {
    frames
        .iter()
        .map(|f| f["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

pub async fn every_target_reaches_exactly_its_connections(backend: Backend) {
    let server = TestServer::start(backend).await;
    // alice exists in both tenants: the same user id, two different people.
    let mut acme_alice_1 = Client::connect(&server, &token("acme", "alice", &[])).await;
    let mut acme_alice_2 = Client::connect_subprotocol(&server, &token("acme", "alice", &[])).await;
    let mut acme_bob = Client::connect(&server, &token("acme", "bob", &[])).await;
    let mut globex_alice =
        Client::connect_subprotocol(&server, &token("globex", "alice", &[])).await;
    assert_eq!(acme_alice_2.subprotocol.as_deref(), Some("bearer"));
    assert_eq!(acme_alice_1.subprotocol, None);

    let acme_publisher = token("acme", "backend", &["publisher"]);
    let globex_publisher = token("globex", "backend", &["publisher"]);
    let admin = token("ops", "root", &["admin"]);
    let sends = [
        (
            &acme_publisher,
            json!({"id":"to-acme-alice","target":{"type":"users","tenant":"acme","users":["alice"]},"data":{"n":1}}),
        ),
        (
            &globex_publisher,
            json!({"id":"to-globex-alice","target":{"type":"users","tenant":"globex","users":["alice"]},"data":{"n":2}}),
        ),
        (
            &acme_publisher,
            json!({"id":"to-acme","target":{"type":"tenant","tenant":"acme"},"data":[1,2]}),
        ),
        (
            &acme_publisher,
            json!({"id":"to-bob-conn","target":{"type":"connections","tenant":"acme","connectionIds":[acme_bob.connection_id, globex_alice.connection_id]},"data":"direct"}),
        ),
        (
            &admin,
            json!({"id":"to-all","target":{"type":"broadcast"},"data":null}),
        ),
    ];
    for (token, envelope) in &sends {
        let (status, body) = server.publish(token, envelope).await;
        assert_eq!(status, 202, "{envelope} -> {body}");
        assert_eq!(body["id"], envelope["id"]);
    }
    // Each message is processed independently: wait for each client to have seen the
    // broadcast, then the end marker, and compare the whole set of frames received.
    let (status, _) = server
        .publish(
            &admin,
            &json!({"id":"end","target":{"type":"broadcast"},"data":"end"}),
        )
        .await;
    assert_eq!(status, 202);
    let expectations = [
        (
            &mut acme_alice_1,
            vec!["to-acme-alice", "to-acme", "to-all"],
        ),
        (
            &mut acme_alice_2,
            vec!["to-acme-alice", "to-acme", "to-all"],
        ),
        (&mut acme_bob, vec!["to-acme", "to-bob-conn", "to-all"]),
        (&mut globex_alice, vec!["to-globex-alice", "to-all"]),
    ];
    for (client, expected) in expectations {
        // The end marker may overtake earlier messages (messages are independent), so
        // collect until the marker, then briefly keep collecting.
        let mut frames = client.frames_until("end").await;
        while ids_of(&frames).len() < expected.len() {
            let frame = client.next_json().await;
            frames.push(frame);
        }
        let expected: BTreeSet<String> = expected.into_iter().map(String::from).collect();
        assert_eq!(
            ids_of(&frames),
            expected,
            "connection {}",
            client.connection_id
        );
        assert_eq!(frames.len(), expected.len(), "no duplicates");
        for frame in &frames {
            // Recorded messages carry their cursor; a `connections` target is never
            // recorded, so its frame is exactly {id, data}.
            let keys: Vec<&String> = frame.as_object().unwrap().keys().collect();
            let expected_keys = if frame["id"] == "to-bob-conn" {
                vec!["data", "id"]
            } else {
                vec!["cursor", "data", "id"]
            };
            assert_eq!(keys, expected_keys, "frame: {frame}");
        }
        let first = frames.iter().find(|f| f["id"] == "to-all").unwrap();
        assert_eq!(
            (&first["id"], &first["data"]),
            (&json!("to-all"), &json!(null))
        );
    }
}

pub async fn bad_tokens_are_refused_with_401_and_no_roster_entry(backend: Backend) {
    let server = TestServer::start(backend).await;
    let wrong_key = {
        let good = token("acme", "alice", &[]);
        let (head, _sig) = good.rsplit_once('.').unwrap();
        format!("{head}.c2lnbmF0dXJlLWZyb20tYW5vdGhlci1rZXk")
    };
    let urls = [
        server.ws_url(),
        format!("{}?token=", server.ws_url()),
        format!("{}?token=not.a.jwt", server.ws_url()),
        format!("{}?token={wrong_key}", server.ws_url()),
    ];
    for url in urls {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 401, "{url}");
            }
            other => panic!("{url}: expected 401, got {other:?}"),
        }
    }
    assert_eq!(server.metric("switchboard_connections").await, 0.0);
    assert_eq!(
        server.metric("switchboard_connections_opened_total").await,
        0.0
    );
    assert!(server.metric("switchboard_handshakes_refused_total").await >= 3.0);
    // Nothing in the roster: a tenant-wide message matches no connection.
    let admin = token("acme", "root", &["admin"]);
    let mut listener = Client::connect(&server, &token("other", "x", &[])).await;
    let (status, _) = server
        .publish(
            &admin,
            &json!({"id":"t","target":{"type":"tenant","tenant":"acme"},"data":1}),
        )
        .await;
    assert_eq!(status, 202);
    let (status, _) = server
        .publish(
            &admin,
            &json!({"id":"end","target":{"type":"tenant","tenant":"other"},"data":1}),
        )
        .await;
    assert_eq!(status, 202);
    assert!(listener.frames_until("end").await.is_empty());
    eventually(
        Duration::from_secs(5),
        "both messages processed",
        || async { server.metric(&messages_total("delivered")).await >= 2.0 },
    )
    .await;
    assert_eq!(server.metric(&posts_total("delivered")).await, 1.0);
}

pub async fn client_actions_follow_the_spec(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut client = Client::connect(&server, &token("acme", "alice", &[])).await;
    assert_eq!(
        client.request(r#"{"action":"ping"}"#).await,
        json!({"type":"pong"})
    );
    assert_eq!(
        client.request(r#"{"action":"whoami"}"#).await,
        json!({"type":"whoami","connectionId":client.connection_id,"tenant":"acme","user":"alice"})
    );
    assert_eq!(
        client.request(r#"{"action":"dance"}"#).await,
        json!({"type":"error","error":"unknown_action"})
    );
    assert_eq!(
        client.request("not json").await,
        json!({"type":"error","error":"unknown_action"})
    );
    // Still open after unknown actions.
    assert_eq!(
        client.request(r#"{"action":"ping"}"#).await,
        json!({"type":"pong"})
    );
}

pub async fn closing_removes_the_connection(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut client = Client::connect(&server, &token("acme", "alice", &[])).await;
    let id = client.connection_id.clone();
    assert_eq!(server.metric("switchboard_connections").await, 1.0);
    client.socket.close(None).await.unwrap();
    eventually(Duration::from_secs(5), "connection gone", || async {
        server.metric("switchboard_connections").await == 0.0
    })
    .await;
    let status = reqwest::get(server.management(&format!("/main/@connections/{id}")))
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 410);
    // The roster entry is gone: a message to it matches nothing (no 410 cleanup needed).
    let publisher = token("acme", "backend", &["publisher"]);
    let (status, _) = server
        .publish(
            &publisher,
            &json!({"target":{"type":"users","tenant":"acme","users":["alice"]},"data":1}),
        )
        .await;
    assert_eq!(status, 202);
    eventually(Duration::from_secs(5), "message processed", || async {
        server.metric(&messages_total("delivered")).await >= 1.0
    })
    .await;
    assert_eq!(server.metric(&posts_total("gone")).await, 0.0);
    assert_eq!(server.metric(&posts_total("delivered")).await, 0.0);
}

pub async fn management_api_works_with_the_official_sdk(backend: Backend) {
    use aws_sdk_apigatewaymanagement::error::SdkError;
    use aws_sdk_apigatewaymanagement::operation::get_connection::GetConnectionError;
    use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
    use aws_sdk_apigatewaymanagement::primitives::Blob;

    let server = TestServer::start(backend).await;
    let mut client = Client::connect(&server, &token("acme", "alice", &[])).await;
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
        .region(aws_sdk_apigatewaymanagement::config::Region::new(
            "us-east-1",
        ))
        .credentials_provider(aws_sdk_apigatewaymanagement::config::Credentials::new(
            "local", "local", None, None, "test",
        ))
        .endpoint_url(server.management("/main"))
        .build();
    let sdk = aws_sdk_apigatewaymanagement::Client::from_conf(config);

    sdk.post_to_connection()
        .connection_id(&client.connection_id)
        .data(Blob::new(r#"{"hello":"sdk"}"#))
        .send()
        .await
        .expect("post_to_connection");
    assert_eq!(client.next_json().await, json!({"hello":"sdk"}));

    let info = sdk
        .get_connection()
        .connection_id(&client.connection_id)
        .send()
        .await
        .expect("get_connection");
    assert!(info.connected_at().is_some());
    assert!(info.last_active_at().is_some());
    assert_eq!(
        info.identity().and_then(|i| i.source_ip()),
        Some("127.0.0.1")
    );

    let unknown = sdk
        .post_to_connection()
        .connection_id("NoSuchConnection")
        .data(Blob::new("x"))
        .send()
        .await;
    match unknown {
        Err(SdkError::ServiceError(e)) => assert!(
            matches!(e.err(), PostToConnectionError::GoneException(_)),
            "{e:?}"
        ),
        other => panic!("expected GoneException, got {other:?}"),
    }
    let unknown = sdk
        .get_connection()
        .connection_id("NoSuchConnection")
        .send()
        .await;
    match unknown {
        Err(SdkError::ServiceError(e)) => {
            assert!(matches!(e.err(), GetConnectionError::GoneException(_)))
        }
        other => panic!("expected GoneException, got {other:?}"),
    }

    sdk.delete_connection()
        .connection_id(&client.connection_id)
        .send()
        .await
        .expect("delete_connection");
    assert!(client.close_code().await.is_some(), "the socket closes");
    eventually(Duration::from_secs(5), "connection removed", || async {
        server.metric("switchboard_connections").await == 0.0
    })
    .await;
    assert!(sdk
        .delete_connection()
        .connection_id(&client.connection_id)
        .send()
        .await
        .is_err());
}

pub async fn publish_api_answers_each_case(backend: Backend) {
    let server = TestServer::start(backend).await;
    let publisher = token("acme", "backend", &["publisher"]);
    let reader = token("acme", "someone", &[]);
    let ok = json!({"target":{"type":"tenant","tenant":"acme"},"data":1});

    let (status, body) = server.publish(&publisher, &ok).await;
    assert_eq!(status, 202);
    assert!(body["id"].as_str().is_some_and(|id| !id.is_empty()));

    let (status, body) = server
        .publish(
            &publisher,
            &json!({"target":{"type":"users","tenant":"acme","users":[]},"data":1}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_envelope");
    assert!(
        body["message"].as_str().unwrap().contains("target.users"),
        "{body}"
    );

    let (status, body) = server.publish("not-a-token", &ok).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let response = reqwest::Client::new()
        .post(server.http("/v1/messages"))
        .json(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);

    let (status, body) = server
        .publish(
            &publisher,
            &json!({"target":{"type":"tenant","tenant":"globex"},"data":1}),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
    let (status, _) = server
        .publish(&publisher, &json!({"target":{"type":"broadcast"},"data":1}))
        .await;
    assert_eq!(status, 403);
    let (status, _) = server.publish(&reader, &ok).await;
    assert_eq!(status, 403);

    let big = "x".repeat(130 * 1024);
    let (status, body) = server
        .publish(
            &publisher,
            &json!({"target":{"type":"tenant","tenant":"acme"},"data":big}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("payload_too_large"))
    );
    let huge = "x".repeat(2 * 1024 * 1024);
    let (status, body) = server
        .publish(
            &publisher,
            &json!({"target":{"type":"tenant","tenant":"acme"},"data":huge}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("payload_too_large"))
    );
    assert!(body["message"].is_string());
}

pub async fn graceful_shutdown_closes_sockets_with_1001(backend: Backend) {
    // The real binary: SIGTERM and its exit status are the interface under test.
    let mut server = TestServer::start_process(backend, &[], &[]);
    let mut client = Client::connect(&server, &token("acme", "alice", &[])).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(client.close_code().await, Some(1001));
    let exit = server
        .wait_exit(Duration::from_secs(15))
        .expect("exits within the drain bound");
    assert!(exit.success(), "{exit:?}");
}

/// With the roster unreachable every attempt fails: the message is redelivered after the
/// visibility timeout, then moved to the dead letters after 5 receives; an admin sees it
/// and can redrive it.
pub async fn failing_roster_redelivers_then_dead_letters() {
    let dead = DeadRoster::unreachable();
    let server = TestServer::start_with(Backend::Memory, &dead.args(&[]), &dead.envs(&[])).await;
    let admin = token("acme", "root", &["admin"]);
    let publisher = token("acme", "backend", &["publisher"]);
    let (status, body) = server
        .publish(
            &publisher,
            &json!({"id":"doomed","target":{"type":"tenant","tenant":"acme"},"data":1}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    eventually(Duration::from_secs(60), "dead-lettered", || async {
        server.metric("switchboard_dead_letters").await == 1.0
    })
    .await;
    assert_eq!(server.metric("switchboard_redeliveries_total").await, 4.0);
    assert_eq!(server.metric(&messages_total("retry")).await, 5.0);

    let http = reqwest::Client::new();
    let forbidden = http
        .get(server.http("/v1/dead-letters"))
        .bearer_auth(&publisher)
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status().as_u16(), 403);
    let letters: Value = http
        .get(server.http("/v1/dead-letters"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(letters["next"].is_null(), "{letters}");
    let letters = letters["items"].as_array().unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter["receiveCount"], 5);
    assert!(
        letter["error"].as_str().unwrap().contains("roster"),
        "{letter}"
    );
    assert!(letter["deadAt"].is_string() && letter["id"].is_string());
    let body: Value = serde_json::from_str(letter["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["id"], "doomed");

    let redriven: Value = http
        .post(server.http("/v1/dead-letters/redrive"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(redriven, json!({"redriven": 1}));
    // Back on the queue, it fails again and returns to the dead letters.
    eventually(Duration::from_secs(60), "dead-lettered again", || async {
        server.metric("switchboard_redeliveries_total").await == 8.0
            && server.metric("switchboard_dead_letters").await == 1.0
    })
    .await;
}

/// A connection ends (1001) when its roster item expires, as API Gateway ends connections
/// at their 2-hour limit: a socket publishers can no longer find is never left open.
pub async fn connections_close_when_their_roster_item_expires(backend: Backend) {
    let server = TestServer::start_with(backend, &["--connection-ttl-secs", "2"], &[]).await;
    let mut client = Client::connect(&server, &token("acme", "alice", &[])).await;
    let started = std::time::Instant::now();
    assert_eq!(client.close_code().await, Some(1001));
    assert!(started.elapsed() < Duration::from_secs(5));
    eventually(Duration::from_secs(5), "connection removed", || async {
        server.metric("switchboard_connections").await == 0.0
    })
    .await;
}

/// With a tiny shard size the server delivers tenant messages and broadcasts page by page
/// through work items on its in-process queue: each client still gets each message once.
pub async fn paged_fan_out_reaches_each_connection_once(backend: Backend) {
    paged_fan_out(backend, &[]).await;
}

/// The same with a post rate limit (`FANOUT_RATE`): a batch then runs one page item and hands
/// the others back to the queue (docs/design.md: Fan-out at any size, "One page per batch"), and
/// still every client gets each message once.
pub async fn rate_limited_paged_fan_out_reaches_each_connection_once(backend: Backend) {
    paged_fan_out(backend, &[("FANOUT_RATE", "200")]).await;
}

async fn paged_fan_out(backend: Backend, envs: &[(&str, &str)]) {
    let mut envs = envs.to_vec();
    envs.extend([("FANOUT_SHARD_SIZE", "3"), ("SCAN_SEGMENTS", "2")]);
    let server = TestServer::start_with(backend, &[], &envs).await;
    let mut acme = Vec::new();
    for i in 0..8 {
        acme.push(Client::connect(&server, &token("acme", &format!("u{}", i % 3), &[])).await);
    }
    let mut globex = Vec::new();
    for i in 0..3 {
        globex.push(Client::connect(&server, &token("globex", &format!("g{i}"), &[])).await);
    }
    let publisher = token("acme", "backend", &["publisher"]);
    let admin = token("ops", "root", &["admin"]);
    for (token, envelope) in [
        (
            &publisher,
            json!({"id":"to-acme","target":{"type":"tenant","tenant":"acme"},"data":1}),
        ),
        (
            &admin,
            json!({"id":"to-all","target":{"type":"broadcast"},"data":2}),
        ),
    ] {
        let (status, body) = server.publish(token, &envelope).await;
        assert_eq!(status, 202, "{body}");
    }
    // The end marker goes to each client by its connection id, after the others arrived.
    for (clients, expected) in [
        (&mut acme, vec!["to-acme", "to-all"]),
        (&mut globex, vec!["to-all"]),
    ] {
        for client in clients.iter_mut() {
            let mut got = Vec::new();
            while got.len() < expected.len() {
                let frame = client.next_json().await;
                got.push(frame["id"].as_str().unwrap_or_default().to_string());
            }
            got.sort();
            assert_eq!(got, expected, "each message once, nobody else's");
        }
    }
    // Nothing arrives twice: one more broadcast is the next frame everyone sees.
    let (status, _) = server
        .publish(
            &admin,
            &json!({"id":"end","target":{"type":"broadcast"},"data":"end"}),
        )
        .await;
    assert_eq!(status, 202);
    for client in acme.iter_mut().chain(globex.iter_mut()) {
        assert_eq!(
            client.next_json().await["id"],
            "end",
            "no duplicate before the marker"
        );
    }
}
