#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The events function end to end: real DynamoDB Streams records of the roster table
//! (`tests/fixtures/stream/*.json`, recorded on DynamoDB Local by `record.py` there: INSERT,
//! MODIFY, REMOVE, a TTL REMOVE, another writer's item) with their connection id and
//! sequence number varied, each following the roster write it reports (a roster table on
//! DynamoDB Local, written by `DynamoRosterStore`), the online store on DynamoDB Local (the
//! history table), the real `EventBridgeSink` against a fake EventBridge and the real
//! `SqsQueue` against the fake SQS. Needs `eval "$(bash scripts/dynamodb-local.sh start)"`.

#[path = "support/dynamodb_local.rs"]
mod dynamodb_local;
#[allow(dead_code)]
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use support::eventbridge::{fake_eventbridge, EventBridge};
use support::{fake_sqs, Sqs};
use switchboard_aws::config::dynamodb_client_from;
use switchboard_aws::dynamo::DynamoOnlineStore;
use switchboard_aws::testkit::sdk_config;
use switchboard_aws::{
    create_history_table, create_table, delete_table, DynamoRosterStore, EventBridgeSink, SqsQueue,
};
use switchboard_core::events::PresenceEvents;
use switchboard_core::roster::{ConnectionRecord, RosterStore};
use switchboard_lambdas::emf::testkit::{parse_document, MemorySink};
use switchboard_lambdas::emf::Metrics;
use switchboard_lambdas::events::{BatchResponse, EventsFunction};
use switchboard_model::{ConnectionId, TenantId};
use time::OffsetDateTime;

const BUS: &str = "switchboard-test-events";
const CHECKS: &str = "/123456789012/offline-checks";
/// The connection of the recorded fixtures.
const FIXTURE_CONNECTION: &str = "L0SM9cOFvHcCIhw=";
const USER: &str = "alice@example.com";

struct Harness {
    function: EventsFunction,
    metrics: Metrics,
    emf: Arc<MemorySink>,
    bus: EventBridge,
    sqs: Sqs,
    dynamo: aws_sdk_dynamodb::Client,
    table: String,
    roster: DynamoRosterStore,
    roster_table: String,
    next_sequence: u64,
}

async fn harness() -> Harness {
    let dynamo = dynamodb_client_from(&sdk_config(None), Some(&dynamodb_local::endpoint()));
    let table = dynamodb_local::table_name("events");
    create_history_table(&dynamo, &table).await.unwrap();
    let roster_table = dynamodb_local::table_name("events-roster");
    create_table(&dynamo, &roster_table).await.unwrap();
    let (bus, bus_addr) = fake_eventbridge().await;
    let (sqs, sqs_addr) = fake_sqs().await;
    let sink =
        EventBridgeSink::from_sdk_config(&sdk_config(Some(&format!("http://{bus_addr}"))), BUS);
    let function = EventsFunction {
        presence: PresenceEvents::new(
            Arc::new(DynamoOnlineStore::new(dynamo.clone(), table.clone())),
            Arc::new(sink),
        ),
        roster: DynamoRosterStore::new(dynamo.clone(), roster_table.clone(), 1),
        checks: Arc::new(SqsQueue::from_sdk_config(
            &sdk_config(Some(&format!("http://{sqs_addr}"))),
            format!("http://{sqs_addr}{CHECKS}"),
        )),
        offline_delay: Duration::from_secs(7),
    };
    let emf = Arc::new(MemorySink::new());
    Harness {
        function,
        metrics: Metrics::new("Switchboard/Test", emf.clone()).unwrap(),
        emf,
        bus,
        sqs,
        roster: DynamoRosterStore::new(dynamo.clone(), roster_table.clone(), 1),
        dynamo,
        table,
        roster_table,
        next_sequence: 100,
    }
}

/// The one record of fixture `name`.
fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/stream/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["Records"][0].clone()
}

impl Harness {
    /// Fixture `name` about `connection` (of the same tenant and user), with the next
    /// sequence number.
    fn record(&mut self, name: &str, connection: &str) -> Value {
        self.record_of(name, USER, connection)
    }

    /// Fixture `name` about `connection` of `user`, with the next sequence number.
    fn record_of(&mut self, name: &str, user: &str, connection: &str) -> Value {
        let text = fixture(name)
            .to_string()
            .replace(FIXTURE_CONNECTION, connection)
            .replace(USER, user);
        let mut record: Value = serde_json::from_str(&text).unwrap();
        self.next_sequence += 1;
        record["dynamodb"]["SequenceNumber"] = json!(format!("{:021}", self.next_sequence));
        record["eventID"] = json!(support::uuid());
        record
    }

    /// `connection` connects: its roster item is written, and the stream's INSERT is
    /// answered.
    async fn connect(&mut self, connection: &str) -> Value {
        self.connect_as(USER, connection).await
    }

    /// `connection` of `user` connects.
    async fn connect_as(&mut self, user: &str, connection: &str) -> Value {
        let record = ConnectionRecord::from_raw(
            connection,
            "acme",
            user,
            vec!["reader".into()],
            OffsetDateTime::now_utc(),
            7_200,
        )
        .unwrap();
        self.roster.put(&record).await.unwrap();
        self.record_of("insert", user, connection)
    }

    /// `connection`'s roster item is deleted (by `$disconnect`, or by TTL with `fixture`
    /// `remove_ttl`), and the stream's REMOVE is answered.
    async fn disconnect_by(&mut self, fixture: &str, connection: &str) -> Value {
        let tenant = TenantId::parse("acme").unwrap();
        let id = ConnectionId::parse(connection).unwrap();
        self.roster.remove(&tenant, &id).await.unwrap();
        self.record(fixture, connection)
    }

    async fn disconnect(&mut self, connection: &str) -> Value {
        self.disconnect_by("remove", connection).await
    }

    /// `connection` connects and the function handles its INSERT alone, successfully.
    async fn connect_handled(&mut self, connection: &str) {
        let insert = self.connect(connection).await;
        assert_eq!(self.invoke(&[insert]).await, ok());
    }

    /// `connection`'s item is removed (`fixture`: `remove` or `remove_ttl`) and the function
    /// handles the REMOVE alone, successfully.
    async fn disconnect_handled(&mut self, fixture: &str, connection: &str) {
        let remove = self.disconnect_by(fixture, connection).await;
        assert_eq!(self.invoke(&[remove]).await, ok());
    }

    async fn invoke(&self, records: &[Value]) -> BatchResponse {
        self.function
            .handle(&self.metrics, &json!({ "Records": records }), None)
            .await
            .unwrap()
    }

    /// Hands the offline checks queued so far to the function, as the SQS trigger would
    /// once their delay passed.
    async fn run_checks(&self) -> BatchResponse {
        let bodies: Vec<String> = self.sqs.take(CHECKS).into_iter().map(|s| s.body).collect();
        assert!(!bodies.is_empty(), "no offline check was queued");
        let event = serde_json::to_value(support::event(&bodies)).unwrap();
        self.function
            .handle(&self.metrics, &event, None)
            .await
            .unwrap()
    }

    /// The user's online item (`O#acme` / `alice@example.com`), read consistently.
    async fn online_item(&self) -> HashMap<String, AttributeValue> {
        self.dynamo
            .get_item()
            .table_name(&self.table)
            .key("PK", AttributeValue::S("O#acme".into()))
            .key("SK", AttributeValue::S(USER.into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_default()
    }

    fn last_emf(&self) -> Value {
        parse_document(self.emf.lines().last().unwrap()).unwrap()
    }

    async fn cleanup(self) {
        delete_table(&self.dynamo, &self.table).await.unwrap();
        delete_table(&self.dynamo, &self.roster_table)
            .await
            .unwrap();
    }
}

fn ok() -> BatchResponse {
    BatchResponse::default()
}

fn sequences(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            r["dynamodb"]["SequenceNumber"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn failures(response: &BatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

/// (type, connections, version) of an event's detail.
fn summary(detail: &Value) -> (String, u64, u64) {
    assert_eq!(detail["data"]["tenant"], "acme");
    assert_eq!(detail["data"]["user"], USER);
    (
        detail["type"].as_str().unwrap().to_string(),
        detail["data"]["connections"].as_u64().unwrap(),
        detail["data"]["version"].as_u64().unwrap(),
    )
}

fn summaries(bus: &EventBridge) -> Vec<(String, u64, u64)> {
    bus.details().iter().map(summary).collect()
}

fn online(connections: u64, version: u64) -> (String, u64, u64) {
    ("user.online".into(), connections, version)
}

fn offline(version: u64) -> (String, u64, u64) {
    ("user.offline".into(), 0, version)
}

#[tokio::test]
async fn an_insert_puts_user_online_v1_on_the_bus_and_a_second_connection_v2() {
    let mut h = harness().await;
    let first = h.connect(FIXTURE_CONNECTION).await;
    assert_eq!(h.invoke(std::slice::from_ref(&first)).await, ok());
    let taken = h.bus.taken();
    assert_eq!(taken.len(), 1);
    let entry = &taken[0];
    assert_eq!(entry["Source"], "switchboard");
    assert_eq!(entry["DetailType"], "user.online");
    assert_eq!(entry["EventBusName"], BUS);
    // The event's time is when the roster item was written.
    assert_eq!(
        entry["Time"].as_f64().map(|t| t as i64),
        first["dynamodb"]["ApproximateCreationDateTime"].as_i64()
    );
    let detail = &h.bus.details()[0];
    assert!(detail["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(summary(detail), online(1, 1));
    let emf = h.last_emf();
    assert_eq!(emf["Target"], "stream");
    assert_eq!(
        (emf["Online"].as_f64(), emf["EventsPut"].as_f64()),
        (Some(1.0), Some(1.0))
    );

    let second = h.connect("Second0000000A=").await;
    assert_eq!(h.invoke(&[second]).await, ok());
    assert_eq!(summaries(&h.bus), [online(1, 1), online(2, 2)]);
    h.cleanup().await;
}

#[tokio::test]
async fn a_remove_queues_a_delayed_check_and_the_check_puts_user_offline() {
    let mut h = harness().await;
    h.connect_handled(FIXTURE_CONNECTION).await;
    h.disconnect_handled("remove", FIXTURE_CONNECTION).await;
    // Nothing offline yet: only a check, delayed by EVENTS_OFFLINE_DELAY_SECS.
    assert_eq!(summaries(&h.bus), [online(1, 1)]);
    let sent = h.sqs.take(CHECKS);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].delay_seconds, 7);
    let body: Value = serde_json::from_str(&sent[0].body).unwrap();
    assert_eq!(body, json!({"tenant": "acme", "user": USER, "version": 2}));
    h.sqs.requeue(sent);

    assert_eq!(h.run_checks().await, ok());
    assert_eq!(summaries(&h.bus), [online(1, 1), offline(2)]);
    let emf = h.last_emf();
    assert_eq!(emf["Target"], "offline");
    assert_eq!(
        (emf["Offline"].as_f64(), emf["EventsPut"].as_f64()),
        (Some(1.0), Some(1.0))
    );
    assert_eq!(
        h.online_item().await["st"],
        AttributeValue::S("offline".into())
    );
    h.cleanup().await;
}

#[tokio::test]
async fn a_reconnect_inside_the_delay_makes_the_check_stale() {
    let mut h = harness().await;
    h.connect_handled(FIXTURE_CONNECTION).await;
    h.disconnect_handled("remove", FIXTURE_CONNECTION).await;
    h.connect_handled("Again000000000A=").await;
    assert_eq!(h.run_checks().await, ok());
    // The reconnect announced nothing (the backend still thinks the user online), and the
    // check found a newer version: no offline.
    assert_eq!(summaries(&h.bus), [online(1, 1)]);
    h.cleanup().await;
}

#[tokio::test]
async fn the_same_stream_batch_twice_repeats_only_same_id_events_and_changes_no_state() {
    let mut h = harness().await;
    let mut batch = vec![
        h.connect(FIXTURE_CONNECTION).await,
        h.connect("Second0000000A=").await,
    ];
    assert_eq!(h.invoke(&batch).await, ok());
    batch.push(h.disconnect(FIXTURE_CONNECTION).await);
    assert_eq!(h.invoke(&batch[2..]).await, ok());
    let first_ids: Vec<Value> = h.bus.details().iter().map(|d| d["id"].clone()).collect();
    assert_eq!(summaries(&h.bus), [online(1, 1), online(2, 2)]);
    let state = h.online_item().await;
    assert_eq!(state["v"], AttributeValue::N("3".into()));
    assert_eq!(state["n"], AttributeValue::N("1".into()));

    // The whole range again (a batch retried after the function timed out): the first
    // connection's INSERT comes after its REMOVE was applied.
    h.bus.clear();
    assert_eq!(h.invoke(&batch).await, ok());
    for detail in h.bus.details() {
        assert!(first_ids.contains(&detail["id"]), "a new event: {detail}");
    }
    assert_eq!(h.online_item().await, state);
    assert!(
        h.sqs.take(CHECKS).is_empty(),
        "the user still has a connection"
    );
    h.cleanup().await;
}

#[tokio::test]
async fn a_ttl_remove_ends_in_user_offline() {
    let mut h = harness().await;
    h.connect_handled(FIXTURE_CONNECTION).await;
    let expired = h.disconnect_by("remove_ttl", FIXTURE_CONNECTION).await;
    assert_eq!(
        expired["userIdentity"],
        json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"})
    );
    assert_eq!(h.invoke(&[expired]).await, ok());
    assert_eq!(h.run_checks().await, ok());
    assert_eq!(summaries(&h.bus), [online(1, 1), offline(2)]);
    h.cleanup().await;
}

#[tokio::test]
async fn modify_records_are_ignored_and_other_writers_items_skipped_without_failing() {
    let mut h = harness().await;
    let records = [
        h.record("modify", FIXTURE_CONNECTION),
        h.record("other_writer", FIXTURE_CONNECTION),
        h.connect(FIXTURE_CONNECTION).await,
    ];
    assert_eq!(h.invoke(&records).await, ok());
    assert_eq!(summaries(&h.bus), [online(1, 1)]);
    let emf = h.last_emf();
    assert_eq!(emf["Skipped"].as_f64(), Some(1.0));
    assert_eq!(emf["Online"].as_f64(), Some(1.0));
    h.cleanup().await;
}

#[tokio::test]
async fn a_failing_put_events_hands_back_the_record_and_the_rest_and_the_retry_emits() {
    let mut h = harness().await;
    let batch = [
        h.connect(FIXTURE_CONNECTION).await,
        h.connect("Second0000000A=").await,
    ];
    // Every attempt at the first event is refused: the sink's first try and two retries.
    h.bus.refuse_entries(3);
    let response = h.invoke(&batch).await;
    assert_eq!(failures(&response), sequences(&batch));
    assert!(h.bus.taken().is_empty());
    assert_eq!(h.bus.refused(), 3);
    let emf = h.last_emf();
    assert_eq!(emf["EventsFailed"].as_f64(), Some(1.0));
    assert_eq!(emf["ItemFailures"].as_f64(), Some(2.0));
    // The second record was not attempted: its connection is not in the online store.
    let state = h.online_item().await;
    assert_eq!(state["v"], AttributeValue::N("1".into()));

    // Lambda retries from the first sequence number reported.
    assert_eq!(h.invoke(&batch).await, ok());
    assert_eq!(summaries(&h.bus), [online(1, 1), online(2, 2)]);
    h.cleanup().await;
}

#[tokio::test]
async fn an_entry_refused_once_is_sent_again_and_taken() {
    let mut h = harness().await;
    h.bus.refuse_entries(1);
    h.connect_handled(FIXTURE_CONNECTION).await;
    assert_eq!(summaries(&h.bus), [online(1, 1)]);
    assert_eq!((h.bus.refused(), h.bus.requests()), (1, 2));
    h.cleanup().await;
}

#[tokio::test]
async fn a_failing_offline_check_is_handed_back_by_message_id() {
    let mut h = harness().await;
    h.connect_handled(FIXTURE_CONNECTION).await;
    h.disconnect_handled("remove", FIXTURE_CONNECTION).await;
    let sent = h.sqs.take(CHECKS);
    let event = support::event(&[sent[0].body.clone(), "not a check".to_string()]);
    let payload = serde_json::to_value(&event).unwrap();
    h.bus.refuse_entries(3);
    let response = h.function.handle(&h.metrics, &payload, None).await.unwrap();
    assert_eq!(
        failures(&response),
        [event.records[0].message_id.clone().unwrap()]
    );
    assert_eq!(h.last_emf()["Skipped"].as_f64(), Some(1.0));
    // SQS redelivers it: the offline is announced then (marked the first time: `Already`).
    let response = h.function.handle(&h.metrics, &payload, None).await.unwrap();
    assert_eq!(response, ok());
    assert_eq!(summaries(&h.bus), [online(1, 1), offline(2)]);
    h.cleanup().await;
}

#[tokio::test]
async fn a_connection_gone_before_its_insert_is_handled_announces_nothing() {
    let mut h = harness().await;
    let batch = [
        h.connect(FIXTURE_CONNECTION).await,
        h.disconnect(FIXTURE_CONNECTION).await,
    ];
    assert_eq!(h.invoke(&batch).await, ok());
    assert!(h.bus.taken().is_empty());
    assert!(h.sqs.take(CHECKS).is_empty());
    assert!(h.online_item().await.is_empty());
    h.cleanup().await;
}

#[tokio::test]
async fn a_users_failure_stops_its_later_records_not_another_users() {
    let mut h = harness().await;
    let batch = [
        h.connect(FIXTURE_CONNECTION).await,
        h.connect_as("bob", "Bob00000000000A=").await,
        h.connect("Second0000000A=").await,
    ];
    h.bus.refuse_matching(Some(USER));
    let response = h.invoke(&batch).await;
    // Lambda retries from the first failure: the whole batch is handed back.
    assert_eq!(failures(&response), sequences(&batch));
    // Bob's record ran (his users' records do not wait on Alice's); Alice's second record
    // did not (her first failed).
    let details = h.bus.details();
    assert_eq!(details.len(), 1);
    assert_eq!(details[0]["data"]["user"], "bob");
    assert_eq!(h.online_item().await["v"], AttributeValue::N("1".into()));

    h.bus.refuse_matching(None);
    assert_eq!(h.invoke(&batch).await, ok());
    let bob: Vec<Value> = h
        .bus
        .details()
        .into_iter()
        .filter(|d| d["data"]["user"] == "bob")
        .map(|d| d["id"].clone())
        .collect();
    assert_eq!(bob.len(), 2);
    assert_eq!(bob[0], bob[1], "Bob's event again, the same id");
    let alice: Vec<(String, u64, u64)> = h
        .bus
        .details()
        .iter()
        .filter(|d| d["data"]["user"] == USER)
        .map(summary)
        .collect();
    assert_eq!(alice, [online(1, 1), online(2, 2)]);
    h.cleanup().await;
}

#[tokio::test]
async fn records_not_started_for_lack_of_time_are_handed_back() {
    let mut h = harness().await;
    let batch = [
        h.connect(FIXTURE_CONNECTION).await,
        h.connect("Second0000000A=").await,
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    let response = h
        .function
        .handle(&h.metrics, &json!({ "Records": batch }), Some(deadline))
        .await
        .unwrap();
    assert_eq!(failures(&response), sequences(&batch));
    assert!(h.bus.taken().is_empty());
    assert!(h.online_item().await.is_empty());
    h.cleanup().await;
}

#[tokio::test]
async fn an_unknown_input_is_an_error_and_an_empty_batch_nothing() {
    let h = harness().await;
    let empty = h
        .function
        .handle(&h.metrics, &json!({"Records": []}), None)
        .await
        .unwrap();
    assert_eq!(empty, ok());
    for bad in [
        json!({}),
        json!({"Records": [{"eventSource": "aws:kinesis"}]}),
    ] {
        assert!(h.function.handle(&h.metrics, &bad, None).await.is_err());
    }
    h.cleanup().await;
}
