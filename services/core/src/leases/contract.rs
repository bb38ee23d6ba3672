#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failed expectation is the test failing
//! The behaviour every [`LeaseStore`] adapter must show. Each check takes a fresh, empty
//! store; adapters' tests call them one per test (`run_all` runs them in sequence, each on
//! a new store from the factory). Times are around the real clock (a store may expire its
//! items a day after their lease, as DynamoDB's TTL does).

use std::future::Future;

use futures::future::join_all;
use time::OffsetDateTime;

use super::{Lease, LeaseStore};

fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap()
}

fn lease(tag: &str, until_ms: i64) -> Lease {
    Lease {
        tag: tag.into(),
        until_ms,
    }
}

/// Expired are the leases whose end has come, by tag; the others are not listed.
pub async fn expired_lists_the_leases_that_ended(store: &dyn LeaseStore) {
    let now = now_ms();
    store.renew("Bbbb", now - 1_000).await.unwrap();
    store.renew("Aaaa", now - 5_000).await.unwrap();
    store.renew("Cccc", now + 15_000).await.unwrap();
    assert_eq!(
        store.expired(now).await.unwrap(),
        vec![lease("Aaaa", now - 5_000), lease("Bbbb", now - 1_000)]
    );
    assert_eq!(
        store.expired(now - 1_000).await.unwrap(),
        vec![lease("Aaaa", now - 5_000), lease("Bbbb", now - 1_000)]
    );
    assert_eq!(
        store.expired(now - 1_001).await.unwrap(),
        vec![lease("Aaaa", now - 5_000)]
    );
    assert!(store.expired(now - 10_000).await.unwrap().is_empty());
}

/// A renewed lease is not expired any more.
pub async fn a_renewed_lease_is_not_expired(store: &dyn LeaseStore) {
    let now = now_ms();
    store.renew("Aaaa", now - 1_000).await.unwrap();
    assert_eq!(store.expired(now).await.unwrap().len(), 1);
    store.renew("Aaaa", now + 15_000).await.unwrap();
    assert!(store.expired(now).await.unwrap().is_empty());
    assert_eq!(
        store.expired(now + 15_000).await.unwrap(),
        vec![lease("Aaaa", now + 15_000)]
    );
}

/// Ten processes claim the same expired lease at once: exactly one wins, and the lease is
/// gone.
pub async fn a_lease_is_claimed_exactly_once(store: &dyn LeaseStore) {
    let now = now_ms();
    store.renew("Aaaa", now - 1_000).await.unwrap();
    store.renew("Bbbb", now - 1_000).await.unwrap();
    let expired = store.expired(now).await.unwrap();
    let dead = expired.iter().find(|l| l.tag == "Aaaa").unwrap();
    let claims = join_all((0..10).map(|_| store.claim(dead))).await;
    let won = claims
        .into_iter()
        .map(Result::unwrap)
        .filter(|w| *w)
        .count();
    assert_eq!(won, 1);
    assert_eq!(
        store.expired(now).await.unwrap(),
        vec![lease("Bbbb", now - 1_000)]
    );
    assert!(!store.claim(dead).await.unwrap());
    // A lease never held is not claimed either.
    assert!(!store.claim(&lease("Zzzz", now)).await.unwrap());
}

/// A process renewed its lease after another listed it as expired (it was only slow): the
/// claim fails and the lease stays.
pub async fn a_claim_of_a_lease_renewed_since_fails(store: &dyn LeaseStore) {
    let now = now_ms();
    store.renew("Aaaa", now - 1_000).await.unwrap();
    let seen = store.expired(now).await.unwrap().remove(0);
    store.renew("Aaaa", now + 15_000).await.unwrap();
    assert!(!store.claim(&seen).await.unwrap());
    assert_eq!(
        store.expired(now + 15_000).await.unwrap(),
        vec![lease("Aaaa", now + 15_000)]
    );
    // Claiming it at what it holds now succeeds.
    assert!(store.claim(&lease("Aaaa", now + 15_000)).await.unwrap());
    assert!(store.expired(now + 15_000).await.unwrap().is_empty());
}

pub async fn run_all<S, F, Fut>(make: F)
where
    S: LeaseStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    expired_lists_the_leases_that_ended(&make().await).await;
    a_renewed_lease_is_not_expired(&make().await).await;
    a_lease_is_claimed_exactly_once(&make().await).await;
    a_claim_of_a_lease_renewed_since_fails(&make().await).await;
}
