#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failed expectation is the test failing
//! The behaviour every [`UsageStore`] adapter must show. Each check takes a fresh, empty
//! store made with [`RETENTION`].

use std::future::Future;
use std::time::Duration;

use switchboard_model::TenantId;
use time::OffsetDateTime;

use super::{Bucket, Counts, Unit, UsageStore};

/// The retention every store under test is made with.
pub const RETENTION: Duration = Duration::from_secs(86_400);

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

/// The start of the minute `ago` minutes before this one.
fn minute(ago: i64) -> OffsetDateTime {
    Unit::Minute.floor(OffsetDateTime::now_utc()) - time::Duration::minutes(ago)
}

fn counts(delivered: u64, peak: u64) -> Counts {
    Counts {
        publishes_accepted: 1,
        matched: delivered + 1,
        delivered,
        gone: 1,
        bytes_sent: delivered * 100,
        peak_connections: peak,
        ..Counts::default()
    }
}

async fn read(store: &dyn UsageStore, tenant: Option<&TenantId>) -> Vec<Bucket> {
    store
        .minutes(tenant, minute(120), minute(-1))
        .await
        .unwrap()
}

/// Adds to one minute sum up; the peak is the largest; every field comes back.
pub async fn adds_sum_and_peaks_rise(store: &dyn UsageStore) {
    let acme = tenant("acme");
    let at = minute(5) + time::Duration::seconds(17);
    store.add(Some(&acme), at, &counts(3, 7)).await.unwrap();
    store
        .add(Some(&acme), minute(5), &counts(2, 4))
        .await
        .unwrap();
    let every = Counts {
        publishes_accepted: 1,
        publishes_refused: 2,
        matched: 3,
        delivered: 4,
        gone: 5,
        pushed: 6,
        bytes_sent: 7,
        connection_minutes: 8,
        peak_connections: 9,
    };
    store.add(Some(&acme), minute(4), &every).await.unwrap();
    let buckets = read(store, Some(&acme)).await;
    let mut first = counts(3, 7);
    first.add(&counts(2, 4));
    assert_eq!(first.peak_connections, 7);
    assert_eq!(
        buckets,
        vec![
            Bucket {
                start: minute(5),
                counts: first
            },
            Bucket {
                start: minute(4),
                counts: every
            },
        ]
    );
}

/// `from` is inclusive, `to` exclusive, buckets come oldest first, only non-empty ones.
pub async fn ranges_are_half_open(store: &dyn UsageStore) {
    let acme = tenant("acme");
    for ago in [30, 20, 10] {
        store
            .add(Some(&acme), minute(ago), &counts(1, 0))
            .await
            .unwrap();
    }
    let starts = |buckets: Vec<Bucket>| buckets.into_iter().map(|b| b.start).collect::<Vec<_>>();
    let all = store
        .minutes(Some(&acme), minute(30), minute(9))
        .await
        .unwrap();
    assert_eq!(starts(all), vec![minute(30), minute(20), minute(10)]);
    let cut = store
        .minutes(Some(&acme), minute(30), minute(10))
        .await
        .unwrap();
    assert_eq!(starts(cut), vec![minute(30), minute(20)]);
    let inner = store
        .minutes(Some(&acme), minute(29), minute(11))
        .await
        .unwrap();
    assert_eq!(starts(inner), vec![minute(20)]);
    assert!(store
        .minutes(Some(&acme), minute(9), minute(0))
        .await
        .unwrap()
        .is_empty());
}

/// Tenants and the broadcasts' `*` are counted apart.
pub async fn tenants_are_apart(store: &dyn UsageStore) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    store
        .add(Some(&acme), minute(3), &counts(1, 0))
        .await
        .unwrap();
    store
        .add(Some(&globex), minute(3), &counts(2, 0))
        .await
        .unwrap();
    store.add(None, minute(3), &counts(3, 0)).await.unwrap();
    assert_eq!(read(store, Some(&acme)).await[0].counts.delivered, 1);
    assert_eq!(read(store, Some(&globex)).await[0].counts.delivered, 2);
    assert_eq!(read(store, None).await[0].counts.delivered, 3);
    assert!(read(store, Some(&tenant("initech"))).await.is_empty());
}

/// Concurrent adds to one bucket lose nothing.
pub async fn concurrent_adds_lose_nothing(store: &dyn UsageStore) {
    let acme = tenant("acme");
    let at = minute(2);
    let adds = (0..20u64).map(|i| {
        let acme = acme.clone();
        async move { store.add(Some(&acme), at, &counts(1, i)).await }
    });
    for result in futures::future::join_all(adds).await {
        result.unwrap();
    }
    let buckets = read(store, Some(&acme)).await;
    assert_eq!(buckets.len(), 1);
    assert_eq!(buckets[0].counts.delivered, 20);
    assert_eq!(buckets[0].counts.publishes_accepted, 20);
    assert_eq!(buckets[0].counts.peak_connections, 19);
}

/// A minute older than the retention is not read.
pub async fn old_minutes_are_gone(store: &dyn UsageStore) {
    let acme = tenant("acme");
    let retention = i64::try_from(RETENTION.as_secs() / 60).unwrap();
    let old = minute(retention + 2);
    store.add(Some(&acme), old, &counts(1, 0)).await.unwrap();
    store
        .add(Some(&acme), minute(1), &counts(1, 0))
        .await
        .unwrap();
    let buckets = store.minutes(Some(&acme), old, minute(-1)).await.unwrap();
    assert_eq!(buckets.len(), 1);
    assert_eq!(buckets[0].start, minute(1));
}

/// The live-connection counter adds and answers the new count, per tenant.
pub async fn live_counters_add(store: &dyn UsageStore) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    assert_eq!(store.add_live(&acme, 1).await.unwrap(), 1);
    assert_eq!(store.add_live(&acme, 1).await.unwrap(), 2);
    assert_eq!(store.add_live(&globex, 1).await.unwrap(), 1);
    assert_eq!(store.add_live(&acme, -1).await.unwrap(), 1);
    assert_eq!(store.add_live(&acme, -1).await.unwrap(), 0);
    assert_eq!(store.add_live(&acme, 1).await.unwrap(), 1);
}

/// Runs every check, each on a fresh store from `make` (given [`RETENTION`]).
pub async fn run_all<S, F, Fut>(make: F)
where
    S: UsageStore,
    F: Fn(Duration) -> Fut,
    Fut: Future<Output = S>,
{
    adds_sum_and_peaks_rise(&make(RETENTION).await).await;
    ranges_are_half_open(&make(RETENTION).await).await;
    tenants_are_apart(&make(RETENTION).await).await;
    concurrent_adds_lose_nothing(&make(RETENTION).await).await;
    old_minutes_are_gone(&make(RETENTION).await).await;
    live_counters_add(&make(RETENTION).await).await;
}
