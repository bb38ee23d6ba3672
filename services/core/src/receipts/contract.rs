#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failed expectation is the test failing
//! The behaviour every [`ReceiptStore`] adapter must show. Each check takes a fresh, empty
//! store made by the factory.

use std::future::Future;
use std::time::Duration;

use switchboard_model::{Target, TenantId};
use time::OffsetDateTime;

use super::{Created, Progress, Receipt, ReceiptKey, ReceiptStatus, ReceiptStore, Seed, Terminal};

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn key(tenant: &str, id: &str) -> ReceiptKey {
    ReceiptKey::new(Some(TenantId::parse(tenant).unwrap()), id)
}

fn queued(key: &ReceiptKey, ttl_secs: i64) -> Receipt {
    let target = match &key.tenant {
        Some(tenant) => Target::Tenant {
            tenant: tenant.clone(),
        },
        None => Target::Broadcast,
    };
    let mut receipt = Receipt::queued(
        key.clone(),
        &target,
        OffsetDateTime::now_utc(),
        Duration::from_secs(60),
    );
    receipt.expires_at = OffsetDateTime::now_utc().unix_timestamp() + ttl_secs;
    receipt
}

fn seed() -> Seed {
    Seed::new(
        Some(&Target::Tenant { tenant: acme() }),
        OffsetDateTime::now_utc(),
        Duration::from_secs(60),
    )
}

/// A second create of one key finds the first; keys of other tenants and the broadcast
/// key are separate.
pub async fn create_writes_once_per_key(store: &dyn ReceiptStore) {
    let k = key("acme", "m-1");
    let receipt = queued(&k, 60);
    assert_eq!(store.create(&receipt).await.unwrap(), Created::New);
    match store.create(&queued(&k, 60)).await.unwrap() {
        Created::Existing(existing) => {
            assert_eq!(existing.key, k);
            assert_eq!(existing.status(), ReceiptStatus::Queued);
            assert_eq!(existing.target, receipt.target);
            assert_eq!(
                existing.accepted_at.unix_timestamp(),
                receipt.accepted_at.unix_timestamp()
            );
        }
        Created::New => panic!("created twice"),
    }
    let read = store.get(&k).await.unwrap().expect("stored");
    assert_eq!(read.status(), ReceiptStatus::Queued);
    assert_eq!(read.to_json()["id"], "m-1");
    assert_eq!(read.to_json()["tenant"], "acme");
    assert!(store.get(&key("globex", "m-1")).await.unwrap().is_none());
    assert_eq!(
        store
            .create(&queued(&key("globex", "m-1"), 60))
            .await
            .unwrap(),
        Created::New
    );
    let broadcast = ReceiptKey::new(None, "m-1");
    assert!(store.get(&broadcast).await.unwrap().is_none());
    assert_eq!(
        store.create(&queued(&broadcast, 60)).await.unwrap(),
        Created::New
    );
    assert!(store
        .get(&broadcast)
        .await
        .unwrap()
        .unwrap()
        .key
        .tenant
        .is_none());
}

/// Of 20 concurrent creates of one key, exactly one is `New`.
pub async fn concurrent_creates_make_exactly_one(store: &dyn ReceiptStore) {
    let k = key("acme", "race");
    let receipts: Vec<Receipt> = (0..20).map(|_| queued(&k, 60)).collect();
    let results = futures::future::join_all(receipts.iter().map(|r| store.create(r))).await;
    let new = results
        .iter()
        .filter(|r| matches!(r, Ok(Created::New)))
        .count();
    let existing = results
        .iter()
        .filter(|r| matches!(r, Ok(Created::Existing(_))))
        .count();
    assert_eq!((new, existing), (1, 19));
}

/// Concurrent records add up (no lost update), and the totals come back.
pub async fn records_add_atomically(store: &dyn ReceiptStore) {
    let k = key("acme", "pages");
    store.create(&queued(&k, 60)).await.unwrap();
    let seed = seed();
    let started = store
        .record(
            &k,
            &seed,
            &Progress {
                pending: 25,
                matched: 10,
                delivered: 10,
                started: true,
                ..Progress::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(started.status(), ReceiptStatus::Delivering);
    let page = Progress {
        matched: 100,
        delivered: 99,
        gone: 1,
        pushed: 3,
        push_failed: 2,
        devices_pruned: 1,
        pending: -1,
        ..Progress::default()
    };
    let results = futures::future::join_all((0..25).map(|_| store.record(&k, &seed, &page))).await;
    let totals: Vec<Receipt> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        totals.iter().filter(|r| r.pending == 0).count(),
        1,
        "exactly one page sees the last pending go"
    );
    let done = store.get(&k).await.unwrap().unwrap();
    assert_eq!(
        (
            done.matched,
            done.delivered,
            done.gone,
            done.failed,
            done.pending
        ),
        (2_510, 2_485, 25, 0, 0)
    );
    assert_eq!(
        (done.pushed, done.push_failed, done.devices_pruned),
        (75, 50, 25),
        "the push counts add up too"
    );
    assert_eq!(done.status(), ReceiptStatus::Delivered);
    assert!(done.updated_at >= done.accepted_at);
}

/// Failing posts make it `partial`; a dead-letter mark makes it `dead`; an expired mark
/// `expired`; the target and acceptance time stay as created.
pub async fn marks_win_over_counts(store: &dyn ReceiptStore) {
    let k = key("acme", "failing");
    let created = queued(&k, 60);
    store.create(&created).await.unwrap();
    let partial = store
        .record(
            &k,
            &seed(),
            &Progress {
                matched: 2,
                delivered: 1,
                failed: 1,
                pending: 1,
                started: true,
                ..Progress::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(partial.status(), ReceiptStatus::Partial);
    let dead = store
        .record(
            &k,
            &seed(),
            &Progress {
                pending: -1,
                terminal: Some(Terminal::Dead),
                ..Progress::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(dead.status(), ReceiptStatus::Dead);
    assert_eq!((dead.matched, dead.delivered, dead.failed), (2, 1, 1));
    let read = store.get(&k).await.unwrap().unwrap();
    assert_eq!(read.status(), ReceiptStatus::Dead);
    assert_eq!(read.target, created.target);
    assert_eq!(
        read.accepted_at.unix_timestamp(),
        created.accepted_at.unix_timestamp()
    );

    let late = key("acme", "late");
    store.create(&queued(&late, 60)).await.unwrap();
    let expired = store
        .record(
            &late,
            &seed(),
            &Progress {
                started: true,
                terminal: Some(Terminal::Expired),
                ..Progress::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(expired.status(), ReceiptStatus::Expired);
}

/// Recording into a missing receipt creates it from the seed (a body sent straight to the
/// queue); a later create of that key finds it.
pub async fn record_creates_a_missing_receipt(store: &dyn ReceiptStore) {
    let k = key("acme", "direct");
    let seed = seed();
    let receipt = store
        .record(
            &k,
            &seed,
            &Progress {
                matched: 3,
                delivered: 3,
                started: true,
                ..Progress::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(receipt.status(), ReceiptStatus::Delivered);
    assert_eq!(receipt.target, seed.target);
    assert_eq!(receipt.expires_at, seed.expires_at);
    let read = store.get(&k).await.unwrap().unwrap();
    assert_eq!(read.to_json()["target"]["type"], "tenant");
    assert!(matches!(
        store.create(&queued(&k, 60)).await.unwrap(),
        Created::Existing(_)
    ));
}

/// The publish API's undo deletes a receipt still `queued`, and nothing the publisher has
/// touched.
pub async fn delete_if_queued_spares_touched_receipts(store: &dyn ReceiptStore) {
    let k = key("acme", "undo");
    store.create(&queued(&k, 60)).await.unwrap();
    assert!(store.delete_if_queued(&k).await.unwrap());
    assert!(store.get(&k).await.unwrap().is_none());
    assert_eq!(store.create(&queued(&k, 60)).await.unwrap(), Created::New);
    store
        .record(&k, &seed(), &Progress::pending(1))
        .await
        .unwrap();
    assert!(!store.delete_if_queued(&k).await.unwrap());
    assert!(store.get(&k).await.unwrap().is_some());
    assert!(!store.delete_if_queued(&key("acme", "never")).await.unwrap());
}

/// An expired receipt is not returned, and a create over it is `New`.
pub async fn expired_receipts_are_gone(store: &dyn ReceiptStore) {
    let k = key("acme", "old");
    store.create(&queued(&k, -1)).await.unwrap();
    assert!(store.get(&k).await.unwrap().is_none());
    assert_eq!(store.create(&queued(&k, 60)).await.unwrap(), Created::New);
    assert!(store.get(&k).await.unwrap().is_some());
}

/// Runs every check, each on a fresh store from `make`.
pub async fn run_all<S, F, Fut>(make: F)
where
    S: ReceiptStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    create_writes_once_per_key(&make().await).await;
    concurrent_creates_make_exactly_one(&make().await).await;
    records_add_atomically(&make().await).await;
    marks_win_over_counts(&make().await).await;
    record_creates_a_missing_receipt(&make().await).await;
    delete_if_queued_spares_touched_receipts(&make().await).await;
    expired_receipts_are_gone(&make().await).await;
}
