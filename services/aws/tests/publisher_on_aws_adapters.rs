#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The core publisher on the AWS adapters: `DynamoRosterStore` on DynamoDB Local and
//! `ApiGatewayPoster` posting to a local management endpoint (API Gateway's
//! `@connections` wire format on 127.0.0.1). Every target type reaches exactly its
//! connections; the same user id in two tenants never crosses; a 410 removes the item.
//!
//! Needs `DYNAMODB_ENDPOINT` (scripts/test.sh starts DynamoDB Local); never skips.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use switchboard_aws::config::{dynamodb_client, DynamoConfig, LocalDefaults};
use switchboard_aws::{create_table, load_sdk_config, ApiGatewayPoster, DynamoRosterStore};
use switchboard_core::publisher::{Publisher, PublisherConfig, PublisherPorts};
use switchboard_core::queue::InboundMessage;
use switchboard_core::roster::RosterStore;
use switchboard_core::testkit::{run_to_completion, RecordingQueue};
use switchboard_model::TenantId;

type Posts = Arc<Mutex<Vec<(String, Value)>>>;

/// A management endpoint that records every post; connection ids starting with `gone`
/// answer 410 `GoneException`, as API Gateway does for closed connections.
async fn management_endpoint() -> (String, Posts) {
    let posts: Posts = Arc::default();
    let sink = posts.clone();
    let app = Router::new().route(
        "/main/@connections/{id}",
        post(move |Path(id): Path<String>, body: String| {
            let sink = sink.clone();
            async move {
                if id.starts_with("gone") {
                    return (
                        StatusCode::GONE,
                        [("x-amzn-errortype", "GoneException")],
                        r#"{"message":null}"#,
                    )
                        .into_response();
                }
                sink.lock()
                    .unwrap()
                    .push((id, serde_json::from_str(&body).unwrap()));
                StatusCode::OK.into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/main", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (endpoint, posts)
}

async fn dynamo_store() -> DynamoRosterStore {
    let endpoint = std::env::var("DYNAMODB_ENDPOINT").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1:"),
        "DYNAMODB_ENDPOINT must point at DynamoDB Local on 127.0.0.1: run scripts/test.sh"
    );
    let config = DynamoConfig {
        roster_table: format!("publisher-{}", uuid::Uuid::new_v4()),
        // Never made: only the roster is on DynamoDB here.
        history_table: switchboard_aws::dynamo::DEFAULT_HISTORY_TABLE.into(),
        scan_segments: 3,
        endpoint: Some(endpoint),
        local: LocalDefaults {
            region: true,
            credentials: true,
        },
    };
    let client = dynamodb_client(&config).await;
    create_table(&client, &config.roster_table).await.unwrap();
    DynamoRosterStore::new(client, config.roster_table.clone(), config.scan_segments)
}

fn message(id: &str, target: Value) -> InboundMessage {
    InboundMessage {
        message_id: format!("sqs-{id}"),
        body: json!({"id": id, "target": target, "data": {"for": id}}).to_string(),
        receive_count: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_delivers_every_target_through_dynamodb_and_the_management_api() {
    let store = Arc::new(dynamo_store().await);
    let connections = [
        ("acme", "alice", "acmeAlice1"),
        ("acme", "alice", "acmeAlice2"),
        ("acme", "bob", "acmeBob1"),
        ("acme", "carol", "goneCarol1"),
        ("globex", "alice", "globexAlice1"),
        ("globex", "dave", "globexDave1"),
    ];
    for (tenant, user, id) in connections {
        let record = switchboard_core::testkit::record(tenant, user, id);
        store.put(&record).await.unwrap();
    }
    let (endpoint, posts) = management_endpoint().await;
    let sdk = load_sdk_config(LocalDefaults {
        region: true,
        credentials: true,
    })
    .await;
    let dead_letters = Arc::new(RecordingQueue::new());
    let work = Arc::new(RecordingQueue::new());
    let publisher = Publisher::new(
        PublisherPorts {
            roster: store.clone(),
            poster: Arc::new(ApiGatewayPoster::new(&sdk, &endpoint)),
            dead_letters: dead_letters.clone(),
            work_queue: work.clone(),
        },
        PublisherConfig {
            // The fixtures connected just now; their 410s are meant as final.
            gone_grace: Duration::ZERO,
            ..PublisherConfig::default()
        },
    );

    // A tenant-wide message meets the gone connection (410): its item is deleted.
    let outcome = publisher
        .handle_batch(&[message("to-acme", json!({"type":"tenant","tenant":"acme"}))])
        .await;
    let report = &outcome.reports[0];
    assert_eq!((report.delivered, report.gone, report.failed), (3, 1, 0));
    let acme: BTreeSet<String> = store
        .list_tenant(&TenantId::parse("acme").unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.connection_id.to_string())
        .collect();
    assert!(!acme.contains("goneCarol1"));
    assert_eq!(acme.len(), 3);

    let cases = [
        (
            json!({"type":"users","tenant":"acme","users":["alice"]}),
            vec!["acmeAlice1", "acmeAlice2"],
        ),
        (
            json!({"type":"users","tenant":"globex","users":["alice","dave"]}),
            vec!["globexAlice1", "globexDave1"],
        ),
        (
            json!({"type":"connections","tenant":"acme","connectionIds":["acmeBob1","globexDave1"]}),
            vec!["acmeBob1"],
        ),
        (
            json!({"type":"tenant","tenant":"globex"}),
            vec!["globexAlice1", "globexDave1"],
        ),
        (
            json!({"type":"broadcast"}),
            vec![
                "acmeAlice1",
                "acmeAlice2",
                "acmeBob1",
                "globexAlice1",
                "globexDave1",
            ],
        ),
    ];
    for (n, (target, expected)) in cases.into_iter().enumerate() {
        posts.lock().unwrap().clear();
        let id = format!("m{n}");
        // Every work item the message leads to (a broadcast's other scan segments).
        run_to_completion(&publisher, &work, vec![message(&id, target.clone())], 100).await;
        let received = posts.lock().unwrap().clone();
        let to: BTreeSet<&str> = received.iter().map(|(c, _)| c.as_str()).collect();
        let expected: BTreeSet<&str> = expected.into_iter().collect();
        assert_eq!(to, expected, "target {target}");
        assert_eq!(received.len(), expected.len(), "each connection once");
        for (_, frame) in &received {
            assert_eq!(frame, &json!({"id": id, "data": {"for": id}}));
        }
    }

    assert!(dead_letters.letters().is_empty());
}
