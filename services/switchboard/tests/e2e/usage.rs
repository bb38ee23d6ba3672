//! Usage per tenant per minute through `serve` (docs/design.md: Usage): after a scripted
//! run — known publishes to known users with known live connections, refusals (403, 413),
//! a repeated id, a 400 and a 401 that count as neither — the minute buckets of
//! `GET /v1/tenants/{t}/usage` hold exactly the expected counts, equal to the receipts';
//! a tenant admin cannot read another tenant's usage (404), a publisher none (403); bad
//! ranges are 400. Tokens come from a `JWT_ISSUERS_FILE`: a global-admin issuer for every
//! tenant, and acme's own issuer whose admins administer acme only.

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio_tungstenite::tungstenite::Message;

use super::harness::{
    assert_refused, eventually, expires_in, serve_refused, signed_token, Backend, Client,
    TestServer, SECRET,
};

/// Global admins, any tenant (ES256, `ec-1`).
const OPS_IDP: &str = "https://ops-idp.example";
/// acme's own issuer: its admins administer acme only (RS256, `rsa-1`).
const ACME_IDP: &str = "https://acme-idp.example";

fn issuers_file() -> PathBuf {
    super::harness::issuers_file(|dir| {
        json!([
            {"issuer": OPS_IDP, "jwksFile": dir.join("ec-1.json"), "tenants": "*",
             "globalAdmin": true, "allowSharedTenants": true},
            {"issuer": ACME_IDP, "jwksFile": dir.join("rsa-1.json"), "tenants": ["acme"]},
        ])
    })
}

fn idp_token(iss: &str, tenant: &str, user: &str, roles: &[&str]) -> String {
    let claims = json!({"iss": iss, "sub": user, "tenant": tenant, "roles": roles,
                        "exp": expires_in(600)});
    signed_token(if iss == ACME_IDP { "rsa-1" } else { "ec-1" }, &claims)
}

fn ops(tenant: &str, user: &str, roles: &[&str]) -> String {
    idp_token(OPS_IDP, tenant, user, roles)
}

/// The next text frame, as sent (its bytes are what `bytesSent` counts).
async fn next_text(client: &mut Client) -> String {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), client.socket.next())
            .await
            .expect("a frame within 10 s")
            .expect("socket open")
            .expect("frame");
        match message {
            Message::Text(text) => return text.as_str().to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

async fn get(
    server: &TestServer,
    token: &str,
    path: &str,
    query: &[(&str, String)],
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(server.http(path))
        .bearer_auth(token)
        .query(query)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn at(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// The last ten minutes and the next two, `unit` buckets.
fn around_now(unit: &str) -> Vec<(&'static str, String)> {
    let now = OffsetDateTime::now_utc();
    vec![
        ("from", at(now - time::Duration::minutes(10))),
        ("to", at(now + time::Duration::minutes(2))),
        ("unit", unit.to_string()),
    ]
}

const COUNTS: [&str; 9] = [
    "publishesAccepted",
    "publishesRefused",
    "matched",
    "delivered",
    "gone",
    "pushed",
    "bytesSent",
    "connectionMinutes",
    "peakConnections",
];

/// The buckets summed (peak: the largest).
fn total(answer: &Value) -> Value {
    let mut total = serde_json::Map::new();
    for name in COUNTS {
        let values = answer["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b[name].as_u64().unwrap());
        let value = if name == "peakConnections" {
            values.max().unwrap_or(0)
        } else {
            values.sum()
        };
        total.insert(name.into(), json!(value));
    }
    Value::Object(total)
}

pub async fn usage_counts_a_scripted_run_exactly(backend: Backend) {
    let file = issuers_file();
    let path = file.display().to_string();
    let server = TestServer::start_raw(backend, &[], &[("JWT_ISSUERS_FILE", &path)]).await;
    let mut acme = vec![
        Client::connect(&server, &ops("acme", "alice", &[])).await,
        Client::connect(&server, &ops("acme", "alice", &[])).await,
        Client::connect(&server, &ops("acme", "bob", &[])).await,
    ];
    let mut carol = Client::connect(&server, &ops("globex", "carol", &[])).await;
    let publisher = ops("acme", "backend", &["publisher"]);
    let global = ops("ops", "root", &["admin"]);
    let acme_admin = idp_token(ACME_IDP, "acme", "boss", &["admin"]);

    let mut bytes = 0;
    let to_two = json!({"id":"u-1","target":{"type":"users","tenant":"acme","users":["alice","bob"]},"data":"one"});
    assert_eq!(server.publish(&publisher, &to_two).await.0, 202);
    for client in &mut acme {
        bytes += next_text(client).await.len();
    }
    let to_all = json!({"id":"u-2","target":{"type":"tenant","tenant":"acme"},"data":{"n":2}});
    assert_eq!(server.publish(&publisher, &to_all).await.0, 202);
    for client in &mut acme {
        bytes += next_text(client).await.len();
    }
    // Neither: a repeated id (200), no envelope (400), no valid token (401).
    assert_eq!(server.publish(&publisher, &to_two).await.0, 200);
    let invalid = json!({"target":{"type":"nope"},"data":1});
    assert_eq!(server.publish(&publisher, &invalid).await.0, 400);
    assert_eq!(server.publish("not-a-token", &to_all).await.0, 401);
    // Refused, counted for acme (the caller's tenant, not the one it aimed at).
    let elsewhere = json!({"target":{"type":"tenant","tenant":"globex"},"data":1});
    assert_eq!(server.publish(&publisher, &elsewhere).await.0, 403);
    let huge = json!({"target":{"type":"tenant","tenant":"acme"},"data":"x".repeat(140_000)});
    assert_eq!(server.publish(&publisher, &huge).await.0, 413);
    // globex: one message by a global admin.
    let to_carol =
        json!({"id":"u-3","target":{"type":"users","tenant":"globex","users":["carol"]},"data":3});
    assert_eq!(server.publish(&global, &to_carol).await.0, 202);
    let carol_bytes = next_text(&mut carol).await.len();

    let mut receipts = Vec::new();
    for id in ["u-1", "u-2"] {
        let path = format!("/v1/messages/{id}");
        eventually(Duration::from_secs(10), "delivered", || async {
            get(&server, &publisher, &path, &[]).await.1["status"] == "delivered"
        })
        .await;
        receipts.push(get(&server, &publisher, &path, &[]).await.1);
    }
    let from_receipts = |name: &str| {
        receipts
            .iter()
            .map(|r| r[name].as_u64().unwrap())
            .sum::<u64>()
    };

    let (status, answer) = get(
        &server,
        &acme_admin,
        "/v1/tenants/acme/usage",
        &around_now("minute"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (&answer["tenant"], &answer["unit"]),
        (&json!("acme"), &json!("minute"))
    );
    assert!(answer["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["start"].as_str().unwrap().ends_with(":00Z")));
    let expected = json!({
        "publishesAccepted": 2, "publishesRefused": 2, "matched": 6, "delivered": 6,
        "gone": 0, "pushed": 0, "bytesSent": bytes, "connectionMinutes": 0, "peakConnections": 0,
    });
    assert_eq!(total(&answer), expected);
    for name in ["matched", "delivered", "gone"] {
        assert_eq!(
            total(&answer)[name],
            from_receipts(name),
            "{name} as the receipts say"
        );
    }
    let (_, by_day) = get(
        &server,
        &global,
        "/v1/tenants/acme/usage",
        &around_now("day"),
    )
    .await;
    assert_eq!(total(&by_day), expected, "days sum the minutes");

    let (status, answer) = get(
        &server,
        &global,
        "/v1/tenants/globex/usage",
        &around_now("hour"),
    )
    .await;
    assert_eq!(status, 200);
    let globex = total(&answer);
    assert_eq!(
        (
            &globex["publishesAccepted"],
            &globex["delivered"],
            &globex["bytesSent"]
        ),
        (&json!(1), &json!(1), &json!(carol_bytes))
    );

    // Who may read: acme's admin not globex's usage (404), a publisher none (403).
    let (status, answer) = get(
        &server,
        &acme_admin,
        "/v1/tenants/globex/usage",
        &around_now("minute"),
    )
    .await;
    assert_eq!((status, &answer["error"]), (404, &json!("not_found")));
    let (status, _) = get(
        &server,
        &publisher,
        "/v1/tenants/acme/usage",
        &around_now("minute"),
    )
    .await;
    assert_eq!(status, 403);

    // Bad ranges: out of order, longer than the retention (35 days by default), unparsable.
    let now = OffsetDateTime::now_utc();
    for (from, to) in [
        (at(now), at(now - time::Duration::minutes(1))),
        (at(now - time::Duration::days(36)), at(now)),
        ("yesterday".to_string(), at(now)),
    ] {
        let (status, answer) = get(
            &server,
            &global,
            "/v1/tenants/acme/usage",
            &[("from", from), ("to", to)],
        )
        .await;
        assert_eq!(
            (status, &answer["error"]),
            (400, &json!("invalid_request")),
            "{answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_counts_a_scripted_run_exactly_on_the_memory_roster() {
    usage_counts_a_scripted_run_exactly(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_counts_a_scripted_run_exactly_on_the_dynamodb_roster() {
    usage_counts_a_scripted_run_exactly(Backend::Dynamodb).await;
}

/// `serve` samples its connections once a minute: two connections held over the first
/// sample are two connection-minutes and a peak of two (the wait is the sampler's minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_samples_connections_once_a_minute() {
    let file = issuers_file();
    let path = file.display().to_string();
    let server = TestServer::start_raw(Backend::Memory, &[], &[("JWT_ISSUERS_FILE", &path)]).await;
    let _held = [
        Client::connect(&server, &ops("acme", "alice", &[])).await,
        Client::connect(&server, &ops("acme", "bob", &[])).await,
    ];
    let admin = idp_token(ACME_IDP, "acme", "boss", &["admin"]);
    let query = around_now("hour");
    eventually(Duration::from_secs(75), "a sample", || async {
        let answer = get(&server, &admin, "/v1/tenants/acme/usage", &query)
            .await
            .1;
        total(&answer)["connectionMinutes"] != 0
    })
    .await;
    let (_, answer) = get(&server, &admin, "/v1/tenants/acme/usage", &query).await;
    let counts = total(&answer);
    assert_eq!(
        (&counts["connectionMinutes"], &counts["peakConnections"]),
        (&json!(2), &json!(2)),
        "{answer}"
    );
}

/// A retention out of 1–400 days refuses start-up, naming the variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_usage_retention_refuses_to_start() {
    for days in ["0", "401", "a month"] {
        let (status, stderr) = serve_refused(
            &[
                "--listen",
                "127.0.0.1:0",
                "--management-listen",
                "127.0.0.1:0",
            ],
            &[("JWT_HS256_SECRET", SECRET), ("USAGE_RETENTION_DAYS", days)],
        );
        assert_refused(status, &stderr, "USAGE_RETENTION_DAYS");
        assert!(stderr.contains("USAGE_RETENTION_DAYS"), "{days}: {stderr}");
    }
}
