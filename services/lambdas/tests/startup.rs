#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Each Lambda's start-up: its dependency builder refuses a missing or invalid variable,
//! naming it, and builds from a complete environment (no AWS call is made at init).

use switchboard_lambdas::{
    authorizer, connect, default, disconnect, events, publish_api, publisher,
};

type Env = &'static [(&'static str, &'static str)];

/// The environment of `pairs` (the first pair of a name wins).
fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
        .collect();
    move |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
}

const REGION: (&str, &str) = ("AWS_REGION", "eu-west-1");
const SECRET: (&str, &str) = ("JWT_HS256_SECRET", "startup-test-secret-of-32-bytes!!");
const CALLBACK: (&str, &str) = (
    "CALLBACK_URL",
    "https://abc.execute-api.eu-west-1.amazonaws.com/main",
);
const QUEUE: (&str, &str) = (
    "QUEUE_URL",
    "https://sqs.eu-west-1.amazonaws.com/123456789012/envelopes",
);
const DLQ: (&str, &str) = (
    "DLQ_URL",
    "https://sqs.eu-west-1.amazonaws.com/123456789012/dead-letters",
);

fn names(error: impl std::fmt::Display, variable: &str) {
    let text = error.to_string();
    assert!(text.contains(variable), "{text:?} does not name {variable}");
}

#[tokio::test]
async fn authorizer_needs_a_key_source() {
    names(
        authorizer::build(lookup(&[REGION])).await.unwrap_err(),
        "JWT_",
    );
    authorizer::build(lookup(&[REGION, SECRET])).await.unwrap();
}

#[tokio::test]
async fn connect_checks_its_ttl() {
    let error = connect::build(lookup(&[REGION, ("CONNECTION_TTL_SECS", "soon")]))
        .await
        .err()
        .unwrap();
    names(error, "CONNECTION_TTL_SECS");
    connect::build(lookup(&[REGION, ("ROSTER_TABLE", "Roster")]))
        .await
        .unwrap();
}

#[tokio::test]
async fn disconnect_checks_its_endpoint() {
    let error = disconnect::build(lookup(&[REGION, ("DYNAMODB_ENDPOINT", "not a url")]))
        .await
        .err()
        .unwrap();
    names(error, "DYNAMODB_ENDPOINT");
    disconnect::build(lookup(&[REGION])).await.unwrap();
}

#[tokio::test]
async fn default_needs_its_callback_url() {
    names(
        default::build(lookup(&[REGION])).await.err().unwrap(),
        "CALLBACK_URL",
    );
    // `refresh` verifies tokens as the authorizer does: the same key source is required.
    names(
        default::build(lookup(&[REGION, CALLBACK]))
            .await
            .err()
            .unwrap(),
        "JWT_",
    );
    default::build(lookup(&[REGION, CALLBACK, SECRET]))
        .await
        .unwrap();
}

/// Everything the publisher needs.
const PUBLISHER: Env = &[REGION, CALLBACK, DLQ, QUEUE];

/// The publisher's environment plus `extra`.
fn publisher_env(extra: (&'static str, &'static str)) -> Vec<(&'static str, &'static str)> {
    [PUBLISHER, &[extra]].concat()
}

/// The publisher refuses to build with `extra`, naming its variable.
async fn publisher_refuses(extra: (&'static str, &'static str)) {
    let error = publisher::build(lookup(&publisher_env(extra)))
        .await
        .err()
        .unwrap();
    names(error, extra.0);
}

#[tokio::test]
async fn publisher_needs_its_queues_and_checks_the_fan_out_settings() {
    names(
        publisher::build(lookup(&[REGION, CALLBACK, DLQ]))
            .await
            .err()
            .unwrap(),
        "QUEUE_URL",
    );
    for bad in [
        ("FANOUT_SHARD_SIZE", "0"),
        ("HISTORY_TTL_SECS", "-1"),
        ("RECEIPT_TTL_SECS", "604801"),
    ] {
        publisher_refuses(bad).await;
    }
    let (publisher, _) = publisher::build(lookup(&publisher_env(("FANOUT_RATE", "500"))))
        .await
        .unwrap();
    assert_eq!(publisher.config().fanout_rate, 500);
}

const BUS: (&str, &str) = ("EVENT_BUS_NAME", "switchboard-events");
const ROSTER: (&str, &str) = ("ROSTER_TABLE", "Roster");
const HISTORY: (&str, &str) = ("HISTORY_TABLE", "History");
const CHECKS: (&str, &str) = (
    "EVENTS_QUEUE_URL",
    "https://sqs.eu-west-1.amazonaws.com/123456789012/offline-checks",
);

#[tokio::test]
async fn the_events_function_needs_its_bus_queue_and_tables_and_checks_the_delay() {
    let complete: Env = &[REGION, ROSTER, HISTORY, BUS, CHECKS];
    for missing in [
        "ROSTER_TABLE",
        "HISTORY_TABLE",
        "EVENT_BUS_NAME",
        "EVENTS_QUEUE_URL",
    ] {
        let env: Vec<(&str, &str)> = complete
            .iter()
            .copied()
            .filter(|(name, _)| *name != missing)
            .collect();
        names(events::build(lookup(&env)).await.err().unwrap(), missing);
    }
    let refused: [Env; 6] = [
        &[
            REGION,
            ROSTER,
            HISTORY,
            BUS,
            ("EVENTS_QUEUE_URL", "not a url"),
        ],
        &[REGION, ROSTER, HISTORY, CHECKS, ("EVENT_BUS_NAME", "a bus")],
        &[
            REGION,
            ROSTER,
            HISTORY,
            BUS,
            CHECKS,
            ("EVENTS_OFFLINE_DELAY_SECS", "901"),
        ],
        &[
            REGION,
            ROSTER,
            HISTORY,
            BUS,
            CHECKS,
            ("EVENTS_OFFLINE_DELAY_SECS", "-1"),
        ],
        &[
            REGION,
            ROSTER,
            HISTORY,
            BUS,
            CHECKS,
            ("EVENTS_OFFLINE_DELAY_SECS", "soon"),
        ],
        &[REGION, HISTORY, BUS, CHECKS, ("ROSTER_TABLE", "a b")],
    ];
    for env in refused {
        let (name, _) = env[env.len() - 1];
        names(events::build(lookup(env)).await.err().unwrap(), name);
    }
    let (function, _) = events::build(lookup(complete)).await.unwrap();
    assert_eq!(function.offline_delay.as_secs(), 3);
    let (function, _) = events::build(lookup(&[
        REGION,
        ROSTER,
        HISTORY,
        BUS,
        CHECKS,
        ("EVENTS_OFFLINE_DELAY_SECS", "900"),
    ]))
    .await
    .unwrap();
    assert_eq!(function.offline_delay.as_secs(), 900);
    // The publisher's `message.settled` goes to the same bus: a bad name stops it too.
    publisher_refuses(("EVENT_BUS_NAME", "a bus")).await;
    publisher::build(lookup(&publisher_env(BUS))).await.unwrap();
}

#[tokio::test]
async fn publish_api_needs_keys_and_its_queue() {
    names(
        publish_api::build(lookup(&[REGION, SECRET]))
            .await
            .err()
            .unwrap(),
        "QUEUE_URL",
    );
    names(
        publish_api::build(lookup(&[REGION, QUEUE]))
            .await
            .err()
            .unwrap(),
        "JWT_",
    );
    names(
        publish_api::build(lookup(&[
            REGION,
            QUEUE,
            SECRET,
            ("RECEIPT_TTL_SECS", "forever"),
        ]))
        .await
        .err()
        .unwrap(),
        "RECEIPT_TTL_SECS",
    );
    let _router = publish_api::build(lookup(&[REGION, QUEUE, SECRET]))
        .await
        .unwrap();
}

/// A fresh VAPID key pair's variables, and the subject.
fn vapid_env() -> Vec<(&'static str, String)> {
    let keys = switchboard_core::webpush::VapidKeyPair::generate().unwrap();
    vec![
        ("VAPID_PUBLIC_KEY", keys.public_key),
        ("VAPID_PRIVATE_KEY", keys.private_key),
        ("VAPID_SUBJECT", "mailto:ops@example.com".to_string()),
    ]
}

/// `base` plus `extra` (owned values).
fn lookup_with(base: Env, extra: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    move |k: &str| {
        extra
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.clone())
            .or_else(|| lookup(base)(k))
    }
}

fn memory_devices() -> std::sync::Arc<dyn switchboard_core::devices::DeviceStore> {
    std::sync::Arc::new(switchboard_core::devices::MemoryDeviceStore::new(100))
}

#[test]
fn web_push_is_off_without_vapid_variables_and_on_with_all_three() {
    use switchboard_lambdas::push::web_push;
    assert!(web_push(lookup(&[REGION]), memory_devices)
        .unwrap()
        .is_none());
    let env = vapid_env();
    let public_key = env[0].1.clone();
    let push = web_push(
        lookup_with(&[("PUSH_MAX_DEVICES_PER_USER", "5")], env),
        memory_devices,
    )
    .unwrap()
    .expect("push on");
    assert_eq!(push.config.vapid.unwrap().public_key(), public_key);
    assert_eq!(push.config.max_devices_per_user, 5);
    assert_eq!(
        push.config.endpoint_policy,
        switchboard_core::devices::EndpointPolicy::Public,
        "no dev mode on AWS: loopback endpoints are refused"
    );
}

/// A half-set VAPID configuration (or keys that do not match) stops each function that
/// uses Web Push at init, naming the variable, and never shows the private key.
#[tokio::test]
async fn a_half_set_or_mismatched_vapid_configuration_stops_each_push_function() {
    let without_private: Vec<_> = vapid_env()
        .into_iter()
        .filter(|(n, _)| *n != "VAPID_PRIVATE_KEY")
        .collect();
    let mut mismatched = vapid_env();
    mismatched[0].1 = vapid_env()[0].1.clone();
    let private_key = mismatched[1].1.clone();
    for (env, variable) in [
        (without_private, "VAPID_PRIVATE_KEY"),
        (mismatched, "VAPID_PUBLIC_KEY"),
    ] {
        let errors = [
            publisher::build(lookup_with(&[REGION, CALLBACK, DLQ, QUEUE], env.clone()))
                .await
                .err()
                .unwrap()
                .to_string(),
            default::build(lookup_with(&[REGION, CALLBACK, SECRET], env.clone()))
                .await
                .err()
                .unwrap()
                .to_string(),
            publish_api::build(lookup_with(&[REGION, QUEUE, SECRET], env.clone()))
                .await
                .err()
                .unwrap()
                .to_string(),
        ];
        for error in errors {
            names(&error, variable);
            assert!(!error.contains(&private_key), "{error}");
        }
    }
}

/// The publish API's router serves the VAPID public key when push is on, 404 when off;
/// `default` hands the socket actions its device store only when push is on.
#[tokio::test]
async fn the_push_routes_and_socket_actions_follow_the_vapid_variables() {
    use tower::ServiceExt;
    let get_key = |router: axum::Router| async move {
        let response = router
            .oneshot(
                http::Request::get("/v1/push/vapid-public-key")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        )
    };
    let off = publish_api::build(lookup(&[REGION, QUEUE, SECRET]))
        .await
        .unwrap();
    assert_eq!(get_key(off).await.0, 404);
    let env = vapid_env();
    let public_key = env[0].1.clone();
    let on = publish_api::build(lookup_with(&[REGION, QUEUE, SECRET], env.clone()))
        .await
        .unwrap();
    let (status, body) = get_key(on).await;
    assert_eq!(
        (status, body["publicKey"].as_str()),
        (200, Some(public_key.as_str()))
    );

    let deps = default::build(lookup(&[REGION, CALLBACK, SECRET]))
        .await
        .unwrap();
    assert!(deps.actions.push.is_none());
    let deps = default::build(lookup_with(&[REGION, CALLBACK, SECRET], env))
        .await
        .unwrap();
    assert!(deps.actions.push.is_some());
}
