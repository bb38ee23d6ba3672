//! `message.settled`: emitted once, by the receipt write that makes the receipt final, with
//! the receipt's JSON; never with receipts off, never again for a copy of the same work,
//! and a failing sink never changes delivery.

use async_trait::async_trait;

use super::receipts::{acme, config, rig_items as items};
use super::*;
use crate::events::{Event, EventError, EventKind, EventSink, MemoryEventSink};
use crate::receipts::{Progress, ReceiptStatus, Terminal};

/// A rig with receipts on and `message.settled` going to the returned sink.
fn rig_events(poster: ScriptedPoster, config: PublisherConfig) -> (Rig, Arc<MemoryEventSink>) {
    let sink = Arc::new(MemoryEventSink::new());
    let rig = rig_with(poster, config).with_receipts(None);
    let publisher = rig.publisher.clone().with_events(sink.clone());
    (Rig { publisher, ..rig }, sink)
}

fn users(id: &str, users: &[&str]) -> Value {
    json!({"id": id, "target": {"type":"users","tenant":"acme","users": users}, "data": 1})
}

/// The one `message.settled` of `sink`, checked against the stored receipt of `key`: its
/// data is the receipt's JSON at `status`.
async fn settled_once(
    rig: &Rig,
    sink: &MemoryEventSink,
    key: &ReceiptKey,
    status: ReceiptStatus,
) -> Event {
    let events = sink.events();
    assert_eq!(events.len(), 1, "exactly one event: {events:?}");
    let event = events.into_iter().next().unwrap();
    assert_eq!(event.kind, EventKind::MessageSettled);
    assert_eq!(event.tenant, key.tenant);
    let receipt = rig.receipt(key).await;
    assert_eq!(receipt.status(), status, "{receipt:?}");
    assert_eq!(
        event.data,
        receipt.to_json(),
        "the data is the final receipt"
    );
    assert_eq!(event.data["status"], status.as_str());
    assert_eq!(
        event.id,
        Event::message_settled(key.tenant.as_ref(), &key.id, Value::Null, event.timestamp).id
    );
    assert_eq!(event.to_json()["type"], "message.settled");
    event
}

/// `c-ok` and `c-broken` of alice, `c-broken` always failing with `error`.
async fn one_broken(rig: &Rig, error: PostError) {
    rig.connect("acme", "alice", "c-ok").await;
    rig.connect("acme", "alice", "c-broken").await;
    rig.poster.always_fail("c-broken", error);
}

/// The event's `(matched, delivered, gone, failed)`.
fn counts(event: &Event) -> [i64; 4] {
    ["matched", "delivered", "gone", "failed"].map(|name| event.data[name].as_i64().unwrap())
}

#[tokio::test]
async fn a_delivered_users_message_settles_once_with_its_counts() {
    let (rig, sink) = rig_events(ScriptedPoster::new(), config());
    rig.connect("acme", "alice", "c-alice-1").await;
    rig.connect("acme", "alice", "c-alice-2").await;
    rig.connect("acme", "bob", "c-bob-1").await;
    rig.poster.always_fail("c-bob-1", PostError::Gone);
    let outcome = rig.publish("q-1", users("m-1", &["alice", "bob"])).await;
    assert_eq!(outcome.reports[0].events, 1);
    assert_eq!(outcome.reports[0].event_errors, 0);
    let event = settled_once(&rig, &sink, &acme("m-1"), ReceiptStatus::Delivered).await;
    assert_eq!(counts(&event), [3, 2, 1, 0]);
    assert_eq!(event.data["tenant"], "acme");
    assert_eq!(event.data["target"]["users"], json!(["alice", "bob"]));
}

#[tokio::test]
async fn a_paged_tenant_message_settles_only_after_its_last_page() {
    let (rig, sink) = rig_events(
        ScriptedPoster::new(),
        PublisherConfig {
            page_size: 10,
            ..config()
        },
    );
    connect_many(&rig, "acme", 45).await;
    let body = json!({"id":"m-2","target":{"type":"tenant","tenant":"acme"},"data":1});
    rig.publish("q-2", body).await;
    let mut pages = 1;
    loop {
        let next = items(&rig);
        if next.is_empty() {
            break;
        }
        assert!(
            sink.events().is_empty(),
            "settled before page {}",
            pages + 1
        );
        let outcome = rig.publisher.handle_batch(&next).await;
        pages += outcome.reports.len();
        assert!(pages < 20, "pages never end");
    }
    assert_eq!(pages, 5);
    let event = settled_once(&rig, &sink, &acme("m-2"), ReceiptStatus::Delivered).await;
    assert_eq!(counts(&event), [45, 45, 0, 0]);
    assert_eq!(rig.poster.delivered().len(), 45);
}

#[tokio::test]
async fn a_broadcast_settles_once_after_every_segment() {
    let (rig, sink) = rig_events(
        ScriptedPoster::new(),
        PublisherConfig {
            page_size: 7,
            scan_segments: 3,
            ..config()
        },
    );
    connect_many(&rig, "acme", 20).await;
    connect_many(&rig, "globex", 20).await;
    let body = json!({"id":"m-all","target":{"type":"broadcast"},"data":1});
    let reports = rig.run(vec![message("q-all", body)]).await;
    assert_eq!(reports.iter().map(|r| r.events).sum::<u32>(), 1);
    let key = ReceiptKey::new(None, "m-all");
    let event = settled_once(&rig, &sink, &key, ReceiptStatus::Delivered).await;
    assert_eq!(event.tenant, None);
    assert_eq!(event.data["tenant"], Value::Null);
    assert_eq!(counts(&event), [40, 40, 0, 0]);
}

#[tokio::test]
async fn a_message_that_reached_nobody_settles_unmatched() {
    let (rig, sink) = rig_events(ScriptedPoster::new(), config());
    rig.publish("q-3", users("m-3", &["nobody"])).await;
    let event = settled_once(&rig, &sink, &acme("m-3"), ReceiptStatus::Unmatched).await;
    assert_eq!(counts(&event), [0, 0, 0, 0]);
}

#[tokio::test]
async fn an_expired_message_settles_expired() {
    let (rig, sink) = rig_events(ScriptedPoster::new(), config());
    rig.connect("acme", "alice", "c-alice-1").await;
    let body = json!({"id":"m-4","target":{"type":"users","tenant":"acme","users":["alice"]},
        "data":1,"expiresAt":"2020-01-01T00:00:00Z"});
    let outcome = rig.publish("q-4", body).await;
    assert_eq!(outcome.reports[0].outcome, Outcome::Expired);
    assert!(rig.poster.delivered().is_empty());
    settled_once(&rig, &sink, &acme("m-4"), ReceiptStatus::Expired).await;
}

#[tokio::test]
async fn an_oversized_frame_settles_dead() {
    let (rig, sink) = rig_events(ScriptedPoster::new(), config());
    rig.connect("acme", "alice", "c-alice-1").await;
    let big = "x".repeat(MAX_FRAME_BYTES);
    let body =
        json!({"id":"m-5","target":{"type":"users","tenant":"acme","users":["alice"]},"data":big});
    let outcome = rig.publish("q-5", body).await;
    assert_eq!(outcome.reports[0].outcome, Outcome::DeadLettered);
    settled_once(&rig, &sink, &acme("m-5"), ReceiptStatus::Dead).await;
}

#[tokio::test]
async fn a_connection_failing_for_good_settles_dead_with_the_counts() {
    let (rig, sink) = rig_events(ScriptedPoster::new(), config());
    one_broken(&rig, PostError::Fatal("413".into())).await;
    rig.publish("q-6", users("m-6", &["alice"])).await;
    assert_eq!(rig.dlq.letters().len(), 1);
    let event = settled_once(&rig, &sink, &acme("m-6"), ReceiptStatus::Dead).await;
    assert_eq!(counts(&event), [2, 1, 0, 1]);
}

#[tokio::test]
async fn failures_past_the_last_attempt_settle_dead_once_and_never_while_retrying() {
    let (rig, sink) = rig_events(ScriptedPoster::new(), config());
    one_broken(&rig, PostError::Transient("503".into())).await;
    rig.publish("q-7", users("m-7", &["alice"])).await;
    let mut attempts = 1;
    loop {
        let next = items(&rig);
        if next.is_empty() {
            break;
        }
        // Partial while a retry item is outstanding: not final, nothing emitted.
        assert!(sink.events().is_empty(), "settled at attempt {attempts}");
        rig.publisher.handle_batch(&next).await;
        attempts += 1;
        assert!(attempts < 20, "retries never end");
    }
    assert_eq!(attempts, MAX_WORK_ATTEMPTS);
    let event = settled_once(&rig, &sink, &acme("m-7"), ReceiptStatus::Dead).await;
    assert_eq!(counts(&event), [2, 1, 0, 1]);
}

#[tokio::test]
async fn a_failing_connection_ended_before_its_retry_settles_partial() {
    let (rig, sink) = rig_events(ScriptedPoster::new(), config());
    one_broken(&rig, PostError::Transient("503".into())).await;
    rig.publish("q-8", users("m-8", &["alice"])).await;
    assert!(
        sink.events().is_empty(),
        "partial with a retry pending is not final"
    );
    // Its token expires before the retry item runs: the item closes it instead of
    // posting, and nothing is pending any more while the post still counts as failed.
    let retry: Vec<InboundMessage> = items(&rig)
        .into_iter()
        .map(|mut item| {
            let mut work = WorkItem::from_body(&item.body).unwrap().unwrap();
            if let Work::Connections { connections } = &mut work.work {
                for recipient in connections {
                    recipient.token_expires_at = Some(1);
                }
            }
            item.body = work.to_body();
            item
        })
        .collect();
    assert_eq!(retry.len(), 1);
    rig.publisher.handle_batch(&retry).await;
    assert_eq!(rig.poster.closed(), ["c-broken"]);
    let event = settled_once(&rig, &sink, &acme("m-8"), ReceiptStatus::Partial).await;
    assert_eq!(counts(&event), [2, 1, 0, 1]);
}

#[tokio::test]
async fn a_retry_that_gets_through_settles_delivered_after_it() {
    let (rig, sink) = rig_events(ScriptedPoster::new(), config());
    rig.connect("acme", "alice", "c-flaky").await;
    let flaky = Err(PostError::Transient("503".into()));
    rig.poster
        .script("c-flaky", vec![flaky.clone(), flaky, Ok(())]);
    rig.publish("q-9", users("m-9", &["alice"])).await;
    assert!(sink.events().is_empty());
    rig.run(items(&rig)).await;
    let event = settled_once(&rig, &sink, &acme("m-9"), ReceiptStatus::Delivered).await;
    assert_eq!(counts(&event), [1, 1, 0, 0]);
}

#[tokio::test]
async fn a_copy_of_the_same_work_emits_nothing_more() {
    let (rig, sink) = rig_events(
        ScriptedPoster::new(),
        PublisherConfig {
            page_size: 2,
            ..config()
        },
    );
    connect_many(&rig, "acme", 3).await;
    let body = json!({"id":"m-10","target":{"type":"tenant","tenant":"acme"},"data":1});
    rig.publish("q-10", &body).await;
    let last_page = items(&rig);
    assert_eq!(last_page.len(), 1);
    rig.publisher.handle_batch(&last_page).await;
    assert_eq!(sink.events().len(), 1);
    // The queue delivers the message and its last page again.
    let again = rig.publish("q-10", &body).await;
    let page_again = rig.publisher.handle_batch(&last_page).await;
    for report in again.reports.iter().chain(&page_again.reports) {
        assert_eq!(report.outcome, Outcome::Duplicate);
        assert_eq!(report.events, 0);
    }
    settled_once(&rig, &sink, &acme("m-10"), ReceiptStatus::Delivered).await;
}

#[tokio::test]
async fn with_receipts_off_nothing_is_emitted() {
    let sink = Arc::new(MemoryEventSink::new());
    let rig = rig();
    let publisher = rig.publisher.clone().with_events(sink.clone());
    rig.connect("acme", "alice", "c-alice-1").await;
    let outcome = publisher
        .handle_batch(&[message("q-11", users("m-11", &["alice"]))])
        .await;
    assert_eq!(outcome.reports[0].outcome, Outcome::Delivered);
    assert_eq!(outcome.reports[0].events, 0);
    assert!(sink.events().is_empty());
}

/// A sink that refuses every event, or never answers.
struct Refusing {
    hang: bool,
}

#[async_trait]
impl EventSink for Refusing {
    async fn emit(&self, events: Vec<Event>) -> Result<(), EventError> {
        if self.hang {
            std::future::pending::<()>().await;
        }
        Err(EventError::Unavailable {
            failed: events.len(),
            reason: "down".into(),
        })
    }
}

async fn with_failing_sink(hang: bool) {
    let rig = rig_with(ScriptedPoster::new(), config()).with_receipts(None);
    let publisher = rig
        .publisher
        .clone()
        .with_events(Arc::new(Refusing { hang }));
    rig.connect("acme", "alice", "c-alice-1").await;
    let outcome = publisher
        .handle_batch(&[message("q-12", users("m-12", &["alice"]))])
        .await;
    let report = &outcome.reports[0];
    assert_eq!(report.outcome, Outcome::Delivered);
    assert!(outcome.failed_message_ids.is_empty(), "never redelivered");
    assert_eq!((report.events, report.event_errors), (0, 1));
    assert_eq!(rig.poster.delivered().len(), 1);
    let receipt = rig.receipt(&acme("m-12")).await;
    assert_eq!(receipt.status(), ReceiptStatus::Delivered);
}

#[tokio::test]
async fn a_refusing_sink_is_counted_and_never_changes_delivery() {
    with_failing_sink(false).await;
}

#[tokio::test]
async fn a_sink_that_never_answers_is_given_up_on_and_counted() {
    with_failing_sink(true).await;
}

#[test]
fn only_the_write_that_makes_the_receipt_final_settles_it() {
    let target = switchboard_model::Target::Tenant {
        tenant: TenantId::parse("acme").unwrap(),
    };
    let now = OffsetDateTime::now_utc();
    let receipt = |started: bool, pending: i64| Receipt {
        started,
        pending,
        ..Receipt::queued(acme("m"), &target, now, Duration::from_secs(60))
    };
    let message_done = Progress {
        started: true,
        ..Progress::default()
    };
    let item_done = Progress::pending(-1);
    let part_dead = Progress {
        terminal: Some(Terminal::Dead),
        ..Progress::default()
    };
    // (what was written, the totals it answered, settles?)
    let cases = [
        (&message_done, receipt(true, 0), true),
        (&message_done, receipt(true, 2), false),
        (&item_done, receipt(true, 0), true),
        (&item_done, receipt(true, 1), false),
        // Every page done before the message's own unit: it settles it later.
        (&item_done, receipt(false, 0), false),
        // Writes that cannot end anything never settle, even on a final receipt.
        (&part_dead, receipt(true, 0), false),
        (&Progress::pending(1), receipt(true, 0), false),
        (&Progress::default(), receipt(true, 0), false),
    ];
    for (n, (progress, totals, settles)) in cases.into_iter().enumerate() {
        assert_eq!(progress.settles(&totals), settles, "case {n}: {progress:?}");
    }
}

#[tokio::test]
async fn a_copy_of_an_expired_message_settles_nothing_more() {
    let (rig, sink) = rig_events(ScriptedPoster::new(), config());
    rig.connect("acme", "alice", "c-alice-1").await;
    let body = json!({"id":"m-13","target":{"type":"users","tenant":"acme","users":["alice"]},
        "data":1,"expiresAt":"2020-01-01T00:00:00Z"});
    rig.publish("q-13", &body).await;
    let again = rig.publish("q-13", &body).await;
    assert_eq!(again.reports[0].outcome, Outcome::Duplicate);
    settled_once(&rig, &sink, &acme("m-13"), ReceiptStatus::Expired).await;
}

#[tokio::test]
async fn a_late_copy_of_a_delivered_message_neither_expires_it_nor_settles_it_again() {
    let (rig, sink) = rig_events(ScriptedPoster::new(), config());
    rig.connect("acme", "alice", "c-alice-1").await;
    let expires_at = OffsetDateTime::now_utc() + time::Duration::milliseconds(300);
    let at = expires_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let body = json!({"id":"m-14","target":{"type":"users","tenant":"acme","users":["alice"]},
        "data":1,"expiresAt":at});
    let first = rig.publish("q-14", &body).await;
    assert_eq!(first.reports[0].outcome, Outcome::Delivered);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The queue delivers it again (its acknowledgement was lost) after `expiresAt`.
    let again = rig.publish("q-14", &body).await;
    assert_eq!(again.reports[0].outcome, Outcome::Duplicate);
    settled_once(&rig, &sink, &acme("m-14"), ReceiptStatus::Delivered).await;
}
