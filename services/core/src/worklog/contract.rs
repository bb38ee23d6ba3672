#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failed expectation is the test failing
//! The behaviour every [`WorkLog`] adapter must show. Each check takes a fresh, empty log.

use std::sync::Arc;

use switchboard_model::TenantId;
use time::{Duration, OffsetDateTime};

use super::{Begun, UnitKey, WorkLog};

fn key(tenant: &str, id: &str, body: &str) -> UnitKey {
    UnitKey::work_item(Some(TenantId::parse(tenant).unwrap()), id, body)
}

/// Whole seconds: DynamoDB keeps times as epoch seconds.
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap()
}

/// The first begin claims; after `finish` every copy finds it done.
pub async fn a_unit_is_claimed_once_then_done(log: &dyn WorkLog) {
    let k = key("acme", "m-1", "page-1");
    let now = now();
    let lease = now + Duration::minutes(5);
    assert_eq!(log.begin(&k, lease, now).await.unwrap(), Begun::Claimed);
    assert_eq!(log.begin(&k, lease, now).await.unwrap(), Begun::Running);
    log.finish(&k, now + Duration::hours(1)).await.unwrap();
    assert_eq!(log.begin(&k, lease, now).await.unwrap(), Begun::Done);
    // Even once the claim's lease has passed.
    let later = now + Duration::minutes(10);
    assert_eq!(
        log.begin(&k, later + Duration::minutes(5), later)
            .await
            .unwrap(),
        Begun::Done
    );
}

/// Of 20 concurrent begins of one unit exactly one claims it.
pub async fn concurrent_begins_claim_exactly_once<L: WorkLog + 'static>(log: Arc<L>) {
    let k = key("acme", "m-2", "page-1");
    let now = now();
    let lease = now + Duration::minutes(5);
    let begins = (0..20).map(|_| {
        let log = log.clone();
        let k = k.clone();
        tokio::spawn(async move { log.begin(&k, lease, now).await.unwrap() })
    });
    let results = futures::future::join_all(begins).await;
    let claimed = results
        .into_iter()
        .filter(|r| *r.as_ref().unwrap() == Begun::Claimed)
        .count();
    assert_eq!(claimed, 1);
}

/// A claim whose lease has passed without `finish` (its run died) is claimed again.
pub async fn a_passed_lease_is_claimed_again(log: &dyn WorkLog) {
    let k = key("acme", "m-3", "page-1");
    let now = now();
    assert_eq!(
        log.begin(&k, now + Duration::seconds(30), now)
            .await
            .unwrap(),
        Begun::Claimed
    );
    let later = now + Duration::seconds(31);
    assert_eq!(
        log.begin(&k, later + Duration::seconds(30), later)
            .await
            .unwrap(),
        Begun::Claimed
    );
    assert_eq!(
        log.begin(&k, later + Duration::seconds(30), later)
            .await
            .unwrap(),
        Begun::Running
    );
}

/// `abandon` removes the claim it names, so the next copy runs; an older claim's abandon
/// (a run that lost its lease) leaves the newer claim, and a finished unit stays done.
pub async fn abandon_gives_back_only_its_own_claim(log: &dyn WorkLog) {
    let k = key("acme", "m-4", "page-1");
    let now = now();
    let first = now + Duration::seconds(30);
    assert_eq!(log.begin(&k, first, now).await.unwrap(), Begun::Claimed);
    log.abandon(&k, first).await.unwrap();
    assert_eq!(log.begin(&k, first, now).await.unwrap(), Begun::Claimed);

    let later = now + Duration::seconds(40);
    let second = later + Duration::seconds(30);
    assert_eq!(log.begin(&k, second, later).await.unwrap(), Begun::Claimed);
    log.abandon(&k, first).await.unwrap();
    assert_eq!(log.begin(&k, second, later).await.unwrap(), Begun::Running);

    let done = key("acme", "m-4", "page-2");
    assert_eq!(log.begin(&done, first, now).await.unwrap(), Begun::Claimed);
    log.finish(&done, now + Duration::hours(1)).await.unwrap();
    log.abandon(&done, first).await.unwrap();
    assert_eq!(log.begin(&done, first, now).await.unwrap(), Begun::Done);
}

/// Units are told apart by tenant (a broadcast has none), message id and unit.
pub async fn units_of_other_messages_and_tenants_are_separate(log: &dyn WorkLog) {
    let now = now();
    let lease = now + Duration::minutes(5);
    let done = now + Duration::hours(1);
    let k = key("acme", "m-5", "page-1");
    assert_eq!(log.begin(&k, lease, now).await.unwrap(), Begun::Claimed);
    log.finish(&k, done).await.unwrap();
    for other in [
        key("globex", "m-5", "page-1"),
        key("acme", "m-6", "page-1"),
        key("acme", "m-5", "page-2"),
        UnitKey::work_item(None, "m-5", "page-1"),
        UnitKey::message(Some(TenantId::parse("acme").unwrap()), "m-5"),
    ] {
        assert_eq!(
            log.begin(&other, lease, now).await.unwrap(),
            Begun::Claimed,
            "{other:?}"
        );
    }
}

/// A finished unit is remembered until its expiry, not after.
pub async fn a_done_unit_is_forgotten_after_it_expires(log: &dyn WorkLog) {
    let k = key("acme", "m-7", "page-1");
    let now = now();
    assert_eq!(
        log.begin(&k, now + Duration::minutes(5), now)
            .await
            .unwrap(),
        Begun::Claimed
    );
    log.finish(&k, now + Duration::seconds(60)).await.unwrap();
    let later = now + Duration::seconds(61);
    assert_eq!(
        log.begin(&k, later + Duration::minutes(5), later)
            .await
            .unwrap(),
        Begun::Claimed
    );
}
