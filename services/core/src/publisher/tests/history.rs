//! History: messages recorded once per stream before any post, frames carrying the
//! cursor, per-tenant retention, and redelivery when recording fails.

use super::*;
use crate::history::{Cursor, HistoryConfig, HistoryStore, MemoryHistoryStore, Stream};

fn with_history(rig: Rig) -> (Rig, Arc<MemoryHistoryStore>) {
    let store = Arc::new(MemoryHistoryStore::new(100));
    let publisher = rig
        .publisher
        .clone()
        .with_history(store.clone(), &HistoryConfig::default());
    (Rig { publisher, ..rig }, store)
}

async fn stream_ids(store: &MemoryHistoryStore, stream: Stream) -> Vec<String> {
    store
        .read_after(&stream, &Cursor::floor_at(0), 100)
        .await
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.id)
        .collect()
}

#[tokio::test]
async fn messages_are_recorded_once_per_stream_and_frames_carry_the_cursor() {
    let (rig, store) = with_history(rig());
    rig.populate().await;
    rig.run(vec![
        message("1", json!({"id":"to-users","target":{"type":"users","tenant":"acme","users":["alice","bob","alice"]},"data":1})),
        message("2", json!({"id":"to-acme","target":{"type":"tenant","tenant":"acme"},"data":2})),
        message("3", json!({"id":"to-all","target":{"type":"broadcast"},"data":3})),
        message("4", json!({"id":"to-conn","target":{"type":"connections","tenant":"acme","connectionIds":["acme-bob-1"]},"data":4})),
    ])
    .await;
    let acme = TenantId::parse("acme").unwrap();
    let user = |u: &str| Stream::User(acme.clone(), UserId::parse(u).unwrap());
    assert_eq!(stream_ids(&store, user("alice")).await, ["to-users"]);
    assert_eq!(stream_ids(&store, user("bob")).await, ["to-users"]);
    assert_eq!(
        stream_ids(&store, Stream::Tenant(acme.clone())).await,
        ["to-acme"]
    );
    assert_eq!(stream_ids(&store, Stream::Global).await, ["to-all"]);
    for (connection, frame) in rig.poster.delivered() {
        let frame: Value = serde_json::from_str(&frame).unwrap();
        let keys: Vec<&String> = frame.as_object().unwrap().keys().collect();
        if frame["id"] == "to-conn" {
            assert_eq!(keys, ["data", "id"], "connections targets are not recorded");
        } else {
            let cursor = frame["cursor"].as_str().unwrap();
            assert!(Cursor::parse(cursor).is_ok(), "{connection}: {frame}");
        }
    }
    // Every recipient of one message got the same cursor (pages included).
    let all: std::collections::BTreeSet<String> = rig
        .poster
        .delivered()
        .iter()
        .filter(|(_, f)| f.contains("\"to-all\""))
        .map(|(_, f)| f.clone())
        .collect();
    assert_eq!(all.len(), 1);
}

#[tokio::test]
async fn nothing_is_recorded_with_history_off() {
    let store = Arc::new(MemoryHistoryStore::new(100));
    let rig = rig();
    let publisher = rig.publisher.clone().with_history(
        store.clone(),
        &HistoryConfig {
            ttl: Duration::ZERO,
            ..HistoryConfig::default()
        },
    );
    let rig = Rig { publisher, ..rig };
    rig.populate().await;
    rig.run(vec![message(
        "1",
        json!({"target":{"type":"broadcast"},"data":1}),
    )])
    .await;
    assert!(stream_ids(&store, Stream::Global).await.is_empty());
    assert!(!rig.poster.delivered()[0].1.contains("cursor"));
}

/// A tenant's `historyTtlSecs` sets its entries' `expiresAt` (what both stores keep
/// them by); a broadcast keeps `HISTORY_TTL_SECS`.
#[tokio::test]
async fn a_tenants_history_ttl_sets_its_entries_expiry() {
    let (rig, store) = with_history(rig());
    let tenants = crate::tenants::Tenants::from_table(
        crate::tenants::SettingsTable::parse(r#"{"tenants":{"acme":{"historyTtlSecs":60}}}"#)
            .unwrap(),
    );
    let publisher = rig.publisher.clone().with_history_ttls(tenants);
    let rig = Rig { publisher, ..rig };
    rig.populate().await;
    rig.run(vec![
        message(
            "1",
            json!({"id":"to-acme","target":{"type":"tenant","tenant":"acme"},"data":1}),
        ),
        message(
            "2",
            json!({"id":"to-all","target":{"type":"broadcast"},"data":2}),
        ),
    ])
    .await;
    let kept = |stream: Stream| {
        let store = store.clone();
        async move {
            let read = store
                .read_after(&stream, &Cursor::floor_at(0), 10)
                .await
                .unwrap();
            read.entries[0].expires_at - time::OffsetDateTime::now_utc().unix_timestamp()
        }
    };
    let acme = kept(Stream::Tenant(TenantId::parse("acme").unwrap())).await;
    assert!((58..=60).contains(&acme), "{acme}");
    let all = kept(Stream::Global).await;
    assert!((298..=300).contains(&all), "{all}");
}

struct FailingHistory;

#[async_trait::async_trait]
impl HistoryStore for FailingHistory {
    async fn append(
        &self,
        _: &crate::history::HistoryEntry,
        _: &[Stream],
    ) -> Result<(), crate::history::HistoryError> {
        Err(crate::history::HistoryError::Unavailable("down".into()))
    }
    async fn read_after(
        &self,
        _: &Stream,
        _: &str,
        _: usize,
    ) -> Result<crate::history::StreamRead, crate::history::HistoryError> {
        Err(crate::history::HistoryError::Unavailable("down".into()))
    }
}

#[tokio::test]
async fn a_message_that_cannot_be_recorded_is_redelivered_before_any_post() {
    let rig = rig();
    let publisher = rig
        .publisher
        .clone()
        .with_history(Arc::new(FailingHistory), &HistoryConfig::default());
    let rig = Rig { publisher, ..rig };
    rig.populate().await;
    let outcome = rig
        .publish(
            "m",
            json!({"target":{"type":"tenant","tenant":"acme"},"data":1}),
        )
        .await;
    assert_eq!(outcome.failed_message_ids, ["m"]);
    assert!(rig.poster.delivered().is_empty());
}

#[tokio::test]
async fn the_frame_limit_counts_the_cursor() {
    let (rig, store) = with_history(rig());
    rig.populate().await;
    // Fits without a cursor, not with one.
    let overhead = r#"{"id":"m","data":""}"#.len();
    let data = "x".repeat(MAX_FRAME_BYTES - overhead);
    let outcome = rig
        .publish(
            "m",
            json!({"id":"m","target":{"type":"tenant","tenant":"acme"},"data":data}),
        )
        .await;
    assert_eq!(outcome.reports[0].outcome, Outcome::DeadLettered);
    assert!(
        stream_ids(&store, Stream::Tenant(TenantId::parse("acme").unwrap()))
            .await
            .is_empty()
    );
}
