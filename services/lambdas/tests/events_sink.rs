#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `EventBridgeSink` against the fake EventBridge: events go in requests EventBridge accepts
//! (the fake refuses more than 10 entries or 256 KB), refused entries alone are sent again,
//! and an EventBridge that does not answer costs at most the timeout per request.

#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::eventbridge::fake_eventbridge;
use switchboard_aws::testkit::sdk_config;
use switchboard_aws::EventBridgeSink;
use switchboard_core::events::{Event, EventError, EventKind, EventSink};
use switchboard_model::{TenantId, UserId};
use time::OffsetDateTime;

fn events(count: u64, padding: usize) -> Vec<Event> {
    let acme = TenantId::parse("acme").unwrap();
    (1..=count)
        .map(|n| {
            let user = UserId::parse(format!("user-{n}")).unwrap();
            let mut event = Event::user(
                EventKind::UserOnline,
                &acme,
                &user,
                1,
                n,
                OffsetDateTime::now_utc(),
            );
            event.data["padding"] = json!("x".repeat(padding));
            event
        })
        .collect()
}

#[tokio::test]
async fn events_go_in_requests_of_ten_and_under_256_kb_and_only_refused_entries_again() {
    let (bus, addr) = fake_eventbridge().await;
    let sink =
        EventBridgeSink::from_sdk_config(&sdk_config(Some(&format!("http://{addr}"))), "bus");
    sink.emit(events(25, 0)).await.unwrap();
    assert_eq!((bus.requests(), bus.taken().len()), (3, 25));

    // 60 KB each: four to a request.
    bus.clear();
    sink.emit(events(9, 60 * 1024)).await.unwrap();
    assert_eq!((bus.requests(), bus.taken().len()), (3 + 3, 9));

    // Two refusals in the first request: those two alone go again.
    bus.clear();
    bus.refuse_entries(2);
    sink.emit(events(12, 0)).await.unwrap();
    assert_eq!(bus.taken().len(), 12);
    assert_eq!(bus.requests(), 6 + 2 + 1);
    let versions: Vec<u64> = bus
        .details()
        .iter()
        .map(|d| d["data"]["version"].as_u64().unwrap())
        .collect();
    let mut sorted = versions.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=12).collect::<Vec<_>>(), "each event once");
}

#[tokio::test]
async fn entries_refused_three_times_are_an_error_counting_them() {
    let (bus, addr) = fake_eventbridge().await;
    let sink =
        EventBridgeSink::from_sdk_config(&sdk_config(Some(&format!("http://{addr}"))), "bus");
    bus.refuse_entries(3 * 5);
    match sink.emit(events(5, 0)).await {
        Err(EventError::Unavailable { failed, reason }) => {
            assert_eq!(failed, 5);
            assert!(reason.contains("InternalFailure"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(bus.taken().is_empty());
    assert_eq!(bus.requests(), 3);
}

#[tokio::test]
async fn an_eventbridge_that_does_not_answer_costs_the_timeout_per_attempt() {
    let (bus, addr) = fake_eventbridge().await;
    bus.set_latency(Duration::from_secs(30));
    let sink =
        EventBridgeSink::from_sdk_config(&sdk_config(Some(&format!("http://{addr}"))), "bus")
            .with_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let error = sink.emit(events(1, 0)).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(error, EventError::Unavailable { failed: 1, .. }),
        "{error}"
    );
    // Three attempts of 200 ms, two backoffs of at most 100 and 200 ms.
    assert!(took < Duration::from_secs(2), "{took:?}");
}
