//! Web Push through the real binary (docs/design.md: Web Push): `serve --dev` with VAPID
//! keys made by the test, a fake push service on 127.0.0.1 (`testkit::push_service`, its
//! certificate in `SSL_CERT_FILE`), real sockets and real subscriptions whose key pairs the
//! test holds. A message reaches each user of its target once: a frame to those with a live
//! connection, a push to every device of those with none; the receipt counts both; a device
//! whose push service answers 410 is deleted at once and counted; a tenant target pages its
//! devices beside its roster pages. Each runs on the memory stores and on DynamoDB Local.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_core::testkit::push_service::{Answer, PushRequest, PushService};

use super::harness::{eventually, token, Backend, Client, TestServer};
use super::push_crypto::{check_vapid, Subscriber, VapidPair};

const TENANT: &str = "acme";

/// A `serve --dev` (loopback push endpoints allowed) with fresh VAPID keys, trusting the
/// fake push service's certificate, with `FANOUT_SHARD_SIZE` = `page_size`.
pub struct PushRig {
    pub push: PushService,
    pub vapid: VapidPair,
    pub server: TestServer,
    _cert_dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl PushRig {
    pub async fn start(backend: Backend, page_size: usize) -> Self {
        let push = PushService::start().await;
        let dir = std::env::temp_dir().join(format!("push-e2e-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("push-service.pem");
        std::fs::write(&cert, push.cert_pem()).unwrap();
        let vapid = VapidPair::generate();
        let shard = page_size.to_string();
        let server = TestServer::start_process(
            backend,
            &["--dev"],
            &[
                ("VAPID_PUBLIC_KEY", vapid.public.as_str()),
                ("VAPID_PRIVATE_KEY", vapid.private.as_str()),
                ("VAPID_SUBJECT", "mailto:ops@example.com"),
                ("SSL_CERT_FILE", cert.to_str().unwrap()),
                ("FANOUT_SHARD_SIZE", shard.as_str()),
            ],
        );
        Self {
            push,
            vapid,
            server,
            _cert_dir: TempDir(dir),
        }
    }

    /// A subscription of `user` whose endpoint is path `dev/<user>` on the push service.
    pub fn subscriber(&self, user: &str) -> Subscriber {
        Subscriber::new(self.push.endpoint(&format!("dev/{user}")))
    }

    /// Registers `subscriber` for `user` over HTTP with the user's own token: its id.
    pub async fn register_http(&self, user: &str, subscriber: &Subscriber) -> String {
        let response = reqwest::Client::new()
            .post(self.server.http("/v1/push/subscriptions"))
            .bearer_auth(token(TENANT, user, &[]))
            .json(&subscriber.subscription())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 201, "register {user}: {body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// The receipt of message `id`, read with the tenant's publisher token.
    pub async fn receipt(&self, id: &str) -> Value {
        reqwest::Client::new()
            .get(self.server.http(&format!("/v1/messages/{id}")))
            .bearer_auth(publisher())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    /// Waits for message `id`'s receipt to have `status` and `pushed` sends, then a little
    /// longer (a send past the expected count would show), and answers it.
    pub async fn settled(&self, id: &str, status: &str, pushed: usize) -> Value {
        eventually(
            Duration::from_secs(15),
            &format!("{id}: {status} with {pushed} pushed"),
            || async {
                let r = self.receipt(id).await;
                r["status"] == status && r["pushed"] == pushed
            },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.receipt(id).await
    }

    pub async fn publish(&self, envelope: &Value) {
        let (status, body) = self.server.publish(&publisher(), envelope).await;
        assert_eq!(status, 202, "{envelope} -> {body}");
    }
}

fn publisher() -> String {
    token(TENANT, "backend", &["publisher"])
}

/// Registers `subscriber` over `client`'s socket: its id.
async fn register_socket(client: &mut Client, subscriber: &Subscriber) -> String {
    let answer = client
        .request(
            &json!({"action":"push_subscribe","subscription":subscriber.subscription()})
                .to_string(),
        )
        .await;
    assert_eq!(answer["type"], "push_subscribed", "{answer}");
    answer["id"].as_str().unwrap().to_string()
}

/// The user of each request (`dev/<user>`), counted.
fn pushed_users(requests: &[PushRequest]) -> BTreeMap<String, usize> {
    let mut users = BTreeMap::new();
    for request in requests {
        let user = request.path.strip_prefix("dev/").unwrap().to_string();
        *users.entry(user).or_default() += 1;
    }
    users
}

/// Each client's next frame is message `id` (its cursor answered) and nothing follows it.
async fn each_framed_once(clients: &mut [(String, Client)], id: &str) -> Vec<String> {
    let mut cursors = Vec::new();
    for (user, client) in clients.iter_mut() {
        let frame = client.next_json().await;
        assert_eq!(frame["id"], id, "{user}: {frame}");
        cursors.push(frame["cursor"].as_str().unwrap_or_default().to_string());
        let pong = client.request(r#"{"action":"ping"}"#).await;
        assert_eq!(pong["type"], "pong", "{user} got {id} once: {pong}");
    }
    cursors
}

fn users_envelope(id: &str, users: &[String], push: Value) -> Value {
    json!({"id": id, "target": {"type":"users","tenant":TENANT,"users":users}, "data":{"n":id}, "push": push})
}

/// Checks one push request as a browser and its push service would: method, headers,
/// VAPID, and the payload decrypted with the subscription's own key: the notification of
/// message `id` at `cursor`.
fn check_request(
    rig: &PushRig,
    request: &PushRequest,
    subscriber: &Subscriber,
    id: &str,
    cursor: &str,
) {
    assert_eq!(request.method, "POST");
    assert_eq!(request.header("content-encoding"), Some("aes128gcm"));
    assert_eq!(request.header("ttl"), Some("86400"), "default ttl");
    assert!(
        matches!(request.header("urgency"), None | Some("normal")),
        "{:?}",
        request.header("urgency")
    );
    assert_eq!(request.header("topic"), Some(id), "a short id is the topic");
    let claims = check_vapid(
        request.header("authorization").unwrap_or_default(),
        &rig.vapid.public,
        &rig.push.origin(),
    )
    .unwrap_or_else(|e| panic!("{}: VAPID: {e}", request.path));
    assert_eq!(claims["sub"], "mailto:ops@example.com");
    let plain = subscriber
        .decrypt(&request.body)
        .unwrap_or_else(|e| panic!("{}: {e}", request.path));
    let payload: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(payload["id"], id, "{payload}");
    assert_eq!(payload["cursor"], cursor, "the frame's cursor: {payload}");
    assert_eq!(payload["tenant"], TENANT, "{payload}");
    assert_eq!(
        (
            &payload["title"],
            &payload["body"],
            &payload["url"],
            &payload["tag"]
        ),
        (
            &json!("Hello"),
            &json!("You have mail"),
            &json!("/inbox"),
            &json!("mail")
        ),
        "{payload}"
    );
}

/// 10 users, 6 with a live socket (each registering its device over that socket), 4
/// without (registered over HTTP): 6 frames and 4 pushes, nobody both; the receipt says
/// `delivered: 6, pushed: 4`. Then one device's push service answers 410: it is pushed
/// once more, deleted and counted `devicesPruned: 1`, and never sent to again; a message to
/// that user alone reaches nobody (`unmatched`). `when: "always"` pushes online users too.
pub async fn users_split_between_frames_and_pushes(backend: Backend) {
    let rig = PushRig::start(backend, 3).await;
    let users: Vec<String> = (0..10).map(|i| format!("u{i}")).collect();
    let subscribers: Vec<Subscriber> = users.iter().map(|u| rig.subscriber(u)).collect();
    let mut online = Vec::new();
    for (user, subscriber) in users.iter().zip(&subscribers).take(6) {
        let mut client = Client::connect(&rig.server, &token(TENANT, user, &[])).await;
        register_socket(&mut client, subscriber).await;
        online.push((user.clone(), client));
    }
    for (user, subscriber) in users.iter().zip(&subscribers).skip(6) {
        rig.register_http(user, subscriber).await;
    }
    let push = json!({"title":"Hello","body":"You have mail","url":"/inbox","tag":"mail"});

    rig.publish(&users_envelope("split-1", &users, push.clone()))
        .await;
    let cursors = each_framed_once(&mut online, "split-1").await;
    let receipt = rig.settled("split-1", "delivered", 4).await;
    assert_eq!(
        (
            &receipt["matched"],
            &receipt["delivered"],
            &receipt["pushed"],
            &receipt["pushFailed"],
            &receipt["devicesPruned"]
        ),
        (&json!(6), &json!(6), &json!(4), &json!(0), &json!(0)),
        "{receipt}"
    );
    let requests = rig.push.requests();
    let expected: BTreeMap<String, usize> = users[6..].iter().map(|u| (u.clone(), 1)).collect();
    assert_eq!(
        pushed_users(&requests),
        expected,
        "each offline user once, no online user"
    );
    for request in &requests {
        let n: usize = request.path["dev/u".len()..].parse().unwrap();
        check_request(&rig, request, &subscribers[n], "split-1", &cursors[0]);
    }
    assert!(cursors.iter().all(|c| !c.is_empty() && *c == cursors[0]));

    // u9's subscription is gone at its push service: one 410, then never again.
    rig.push.answer("dev/u9", Answer::status(410));
    rig.publish(&users_envelope("split-2", &users, push.clone()))
        .await;
    each_framed_once(&mut online, "split-2").await;
    let receipt = rig.settled("split-2", "delivered", 3).await;
    assert_eq!(
        (
            &receipt["delivered"],
            &receipt["pushed"],
            &receipt["pushFailed"],
            &receipt["devicesPruned"]
        ),
        (&json!(6), &json!(3), &json!(0), &json!(1)),
        "{receipt}"
    );
    assert_eq!(rig.push.requests_to("dev/u9").len(), 2);
    rig.publish(&users_envelope("split-3", &users, push.clone()))
        .await;
    each_framed_once(&mut online, "split-3").await;
    let receipt = rig.settled("split-3", "delivered", 3).await;
    assert_eq!(receipt["devicesPruned"], 0, "{receipt}");
    assert_eq!(
        rig.push.requests_to("dev/u9").len(),
        2,
        "the pruned device is not sent to"
    );
    let only_u9 = vec!["u9".to_string()];
    rig.publish(&users_envelope("split-4", &only_u9, push.clone()))
        .await;
    let receipt = rig.settled("split-4", "unmatched", 0).await;
    assert_eq!(
        (&receipt["matched"], &receipt["pushed"]),
        (&json!(0), &json!(0)),
        "{receipt}"
    );
    assert_eq!(
        rig.push.request_count(),
        4 + 4 + 3,
        "nothing sent for split-4"
    );

    // `always`: the online u0 gets its frame and a push; the offline u6 a push.
    let both = vec!["u0".to_string(), "u6".to_string()];
    let mut always = push.clone();
    always["when"] = json!("always");
    rig.publish(&users_envelope("always-1", &both, always))
        .await;
    each_framed_once(&mut online[..1], "always-1").await;
    let receipt = rig.settled("always-1", "delivered", 2).await;
    assert_eq!(receipt["delivered"], 1, "{receipt}");
    let last: Vec<PushRequest> = rig.push.requests().split_off(11);
    assert_eq!(
        pushed_users(&last),
        BTreeMap::from([("u0".to_string(), 1), ("u6".to_string(), 1)])
    );
}

/// A tenant target of 1,000 users with a device each, 600 of them online, pages of 100:
/// 600 frames and 400 pushes (exactly the offline users, once each) over several device
/// pages; the receipt counts both.
pub async fn tenant_target_pushes_to_every_offline_device(backend: Backend) {
    const USERS: usize = 1_000;
    const ONLINE: usize = 600;
    let rig = PushRig::start(backend, 100).await;
    let users: Vec<String> = (0..USERS).map(|i| format!("t{i:04}")).collect();
    let subscribers: Vec<Subscriber> = users.iter().map(|u| rig.subscriber(u)).collect();
    for chunk in users
        .iter()
        .zip(&subscribers)
        .collect::<Vec<_>>()
        .chunks(100)
    {
        futures::future::join_all(chunk.iter().map(|(u, s)| rig.register_http(u, s))).await;
    }
    let mut online = Vec::with_capacity(ONLINE);
    for chunk in users[..ONLINE].chunks(100) {
        let tokens: Vec<(String, String)> = chunk
            .iter()
            .map(|u| (u.clone(), token(TENANT, u, &[])))
            .collect();
        let server = &rig.server;
        let clients =
            futures::future::join_all(tokens.iter().map(|(_, t)| Client::connect(server, t))).await;
        online.extend(tokens.into_iter().map(|(u, _)| u).zip(clients));
    }
    let push = json!({"title":"Hello","body":"You have mail","url":"/inbox","tag":"mail"});
    rig.publish(
        &json!({"id":"all-1","target":{"type":"tenant","tenant":TENANT},"data":1,"push":push}),
    )
    .await;
    let frames = futures::future::join_all(online.iter_mut().map(|(user, client)| async move {
        let frame = client.next_json().await;
        let pong = client.request(r#"{"action":"ping"}"#).await;
        (user.clone(), frame["id"].clone(), pong["type"].clone())
    }))
    .await;
    for (user, id, pong) in &frames {
        assert!(id == "all-1" && pong == "pong", "{user}: {id} then {pong}");
    }
    let receipt = rig.settled("all-1", "delivered", USERS - ONLINE).await;
    assert_eq!(
        (
            &receipt["matched"],
            &receipt["delivered"],
            &receipt["pushed"],
            &receipt["pushFailed"]
        ),
        (
            &json!(ONLINE),
            &json!(ONLINE),
            &json!(USERS - ONLINE),
            &json!(0)
        ),
        "{receipt}"
    );
    let pushed = pushed_users(&rig.push.requests());
    let offline: BTreeSet<&String> = users[ONLINE..].iter().collect();
    assert_eq!(
        pushed.keys().collect::<BTreeSet<_>>(),
        offline,
        "exactly the offline users"
    );
    assert!(pushed.values().all(|n| *n == 1), "each pushed once");
}

/// Sends never hold back frames: with the push service taking 3 s to answer each push, a
/// `users` message that pushes to an offline user is followed by a `users` message to an
/// online user of the same tenant (the same ordering group), and a `tenant` message with
/// `push` by a `tenant` message without: each later frame arrives within 1.5 s, not after
/// the earlier message's sends. (Margins of seconds: an ordering check, not a timing
/// measurement.)
pub async fn slow_sends_never_hold_back_the_next_frames(backend: Backend) {
    let rig = PushRig::start(backend, 100).await;
    rig.push.set_delay(Duration::from_secs(3));
    let mut online = Client::connect(&rig.server, &token(TENANT, "u0", &[])).await;
    rig.register_http("u6", &rig.subscriber("u6")).await;
    let push = json!({"title":"Hello","body":"You have mail"});
    let users = |id: &str, users: &[&str], push: Option<&Value>| {
        let mut envelope =
            json!({"id":id,"target":{"type":"users","tenant":TENANT,"users":users},"data":id});
        if let Some(push) = push {
            envelope["push"] = push.clone();
        }
        envelope
    };
    let tenant = |id: &str, push: Option<&Value>| {
        let mut envelope = json!({"id":id,"target":{"type":"tenant","tenant":TENANT},"data":id});
        if let Some(push) = push {
            envelope["push"] = push.clone();
        }
        envelope
    };
    for (slow, next) in [
        (
            users("slow-users", &["u0", "u6"], Some(&push)),
            users("next-users", &["u0"], None),
        ),
        (
            tenant("slow-tenant", Some(&push)),
            tenant("next-tenant", None),
        ),
    ] {
        rig.publish(&slow).await;
        let started = std::time::Instant::now();
        rig.publish(&next).await;
        let id = next["id"].as_str().unwrap();
        let frames = online.frames_until(id).await;
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_millis(1_500),
            "the frame of {id} waited {waited:?} behind the sends of {} (held 3 s by the push service); before it: {frames:?}",
            slow["id"]
        );
        rig.settled(slow["id"].as_str().unwrap(), "delivered", 1)
            .await;
    }
}

/// A backlog of sends never holds back a frame: with the push service taking 3 s to answer,
/// 10 `users` messages push to 100 offline devices (more send work than the queue runs at
/// once), then a message to an online user of the same tenant: its frame arrives within
/// 1.5 s, not after a send. (Margins of seconds: an ordering check, not a measurement.)
pub async fn a_backlog_of_sends_never_holds_back_a_frame(backend: Backend) {
    let rig = PushRig::start(backend, 100).await;
    rig.push.set_delay(Duration::from_secs(3));
    let mut online = Client::connect(&rig.server, &token(TENANT, "u0", &[])).await;
    let offline: Vec<String> = (0..100).map(|i| format!("o{i:02}")).collect();
    let subscribers: Vec<Subscriber> = offline.iter().map(|u| rig.subscriber(u)).collect();
    futures::future::join_all(
        offline
            .iter()
            .zip(&subscribers)
            .map(|(u, s)| rig.register_http(u, s)),
    )
    .await;
    let push = json!({"title":"Hello","body":"You have mail"});
    for (i, users) in offline.chunks(10).enumerate() {
        rig.publish(&users_envelope(
            &format!("backlog-{i}"),
            users,
            push.clone(),
        ))
        .await;
    }
    rig.push.wait_for_requests(1, Duration::from_secs(10)).await;
    let started = std::time::Instant::now();
    rig.publish(
        &json!({"id":"after","target":{"type":"users","tenant":TENANT,"users":["u0"]},"data":1}),
    )
    .await;
    let frame = online.next_json().await;
    let waited = started.elapsed();
    assert_eq!(frame["id"], "after");
    assert!(
        waited < Duration::from_millis(1_500),
        "the frame waited {waited:?} behind sends the push service holds 3 s"
    );
}

/// Each scenario on the memory stores and on DynamoDB Local.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::super::harness::Backend::Memory).await;
                }
            )*
        }

        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::super::harness::Backend::Dynamodb).await;
                }
            )*
        }
    };
}

on_both_stores!(
    users_split_between_frames_and_pushes,
    tenant_target_pushes_to_every_offline_device,
    slow_sends_never_hold_back_the_next_frames,
    a_backlog_of_sends_never_holds_back_a_frame,
);
