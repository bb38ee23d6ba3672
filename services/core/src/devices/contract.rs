#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failed expectation is the test failing
//! The behaviour every [`DeviceStore`] adapter must show. Each check takes a fresh, empty
//! store; adapters' tests call them one per test (`run_all` runs them in sequence, each on
//! a new store from the factory). [`device`] makes a valid device for other tests too.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use switchboard_model::{TenantId, UserId};
use time::OffsetDateTime;

use super::{
    Device, DeviceError, DeviceId, DeviceStore, Subscription, SubscriptionKeys,
    DEFAULT_MAX_DEVICES_PER_USER,
};

/// A user agent key and auth secret (RFC 8291's worked example) every test device uses.
pub const P256DH: &str =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
pub const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

/// A live device (an hour left) of `user` in `tenant` at `endpoint`, registered now.
pub fn device(tenant: &str, user: &str, endpoint: &str) -> Device {
    let now = OffsetDateTime::now_utc();
    Device {
        tenant: t(tenant),
        user: u(user),
        id: DeviceId::of_endpoint(endpoint),
        subscription: Subscription {
            endpoint: endpoint.to_string(),
            keys: SubscriptionKeys {
                p256dh: P256DH.to_string(),
                auth: AUTH.to_string(),
            },
        },
        registered_at: now,
        expires_at: now.unix_timestamp() + 3_600,
    }
}

fn t(id: &str) -> TenantId {
    TenantId::parse(id).expect("valid tenant")
}

fn u(id: &str) -> UserId {
    UserId::parse(id).expect("valid user")
}

fn endpoint(name: &str) -> String {
    format!("https://push.example.com/send/{name}")
}

/// `device` registered `seconds_ago`.
fn registered(tenant: &str, user: &str, name: &str, seconds_ago: i64) -> Device {
    let mut device = device(tenant, user, &endpoint(name));
    device.registered_at -= time::Duration::seconds(seconds_ago);
    device
}

fn expired(tenant: &str, user: &str, name: &str) -> Device {
    let mut device = registered(tenant, user, name, 100);
    device.expires_at = OffsetDateTime::now_utc().unix_timestamp() - 10;
    device
}

fn ids(devices: &[Device]) -> BTreeSet<DeviceId> {
    devices.iter().map(|d| d.id.clone()).collect()
}

fn id(name: &str) -> DeviceId {
    DeviceId::of_endpoint(&endpoint(name))
}

async fn put(store: &dyn DeviceStore, device: &Device) -> Vec<DeviceId> {
    store
        .put(device, DEFAULT_MAX_DEVICES_PER_USER)
        .await
        .unwrap()
}

async fn of_user(store: &dyn DeviceStore, tenant: &str, user: &str) -> Vec<Device> {
    store.list_users(&t(tenant), &[u(user)]).await.unwrap()
}

/// A device is stored as given, and registering the same endpoint again replaces it.
pub async fn put_stores_and_replaces(store: &dyn DeviceStore) {
    let first = registered("acme", "alice", "a", 60);
    assert!(put(store, &first).await.is_empty());
    assert_eq!(of_user(store, "acme", "alice").await, vec![first.clone()]);

    let mut again = device("acme", "alice", &endpoint("a"));
    again.subscription.keys.auth = "AAAAAAAAAAAAAAAAAAAAAA".into();
    assert!(put(store, &again).await.is_empty());
    assert_eq!(of_user(store, "acme", "alice").await, vec![again]);
}

/// Past `max_per_user` the user's oldest devices go (and are answered), never the one just
/// registered nor another user's; registering a device again makes it the newest.
pub async fn put_evicts_the_oldest_beyond_the_bound(store: &dyn DeviceStore) {
    for (name, age) in [("d1", 50), ("d2", 40), ("d3", 30)] {
        assert!(store
            .put(&registered("acme", "alice", name, age), 3)
            .await
            .unwrap()
            .is_empty());
    }
    store
        .put(&registered("acme", "bob", "b1", 500), 3)
        .await
        .unwrap();
    // d1 registered again: now the newest.
    assert!(store
        .put(&registered("acme", "alice", "d1", 5), 3)
        .await
        .unwrap()
        .is_empty());
    let evicted = store
        .put(&registered("acme", "alice", "d4", 0), 3)
        .await
        .unwrap();
    assert_eq!(evicted, vec![id("d2")]);
    // A smaller bound takes several at once, oldest first.
    let evicted = store
        .put(&registered("acme", "alice", "d5", 0), 1)
        .await
        .unwrap();
    assert_eq!(
        evicted.iter().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([id("d1"), id("d3"), id("d4")])
    );
    assert_eq!(
        ids(&of_user(store, "acme", "alice").await),
        BTreeSet::from([id("d5")])
    );
    // The device just registered stays even when older than the others.
    store
        .put(&registered("acme", "alice", "d6", 0), 2)
        .await
        .unwrap();
    let evicted = store
        .put(&registered("acme", "alice", "old", 9_999), 2)
        .await
        .unwrap();
    assert_eq!(evicted, vec![id("d5")]);
    assert_eq!(
        ids(&of_user(store, "acme", "alice").await),
        BTreeSet::from([id("d6"), id("old")])
    );
    assert_eq!(of_user(store, "acme", "bob").await.len(), 1);
}

/// `remove` takes the user's own device only: another user's device with the same id (the
/// same endpoint) stays, and a second remove answers `false`.
pub async fn remove_takes_only_the_users_own(store: &dyn DeviceStore) {
    put(store, &registered("acme", "alice", "shared", 0)).await;
    put(store, &registered("acme", "bob", "shared", 0)).await;
    put(store, &registered("acme", "alice", "other", 0)).await;
    let (acme, alice, bob) = (t("acme"), u("alice"), u("bob"));
    assert!(!store
        .remove(&acme, &u("carol"), &id("shared"))
        .await
        .unwrap());
    assert!(!store
        .remove(&t("globex"), &alice, &id("shared"))
        .await
        .unwrap());
    assert!(store.remove(&acme, &alice, &id("shared")).await.unwrap());
    assert!(!store.remove(&acme, &alice, &id("shared")).await.unwrap());
    assert_eq!(
        ids(&of_user(store, "acme", "alice").await),
        BTreeSet::from([id("other")])
    );
    assert_eq!(
        ids(&of_user(store, "acme", "bob").await),
        BTreeSet::from([id("shared")])
    );
    assert!(store.remove(&acme, &bob, &id("shared")).await.unwrap());
    assert!(of_user(store, "acme", "bob").await.is_empty());
}

/// `list_users` answers every device of exactly the users named (each once, however often
/// named), nothing for unknown users.
pub async fn list_users_answers_those_users(store: &dyn DeviceStore) {
    for user in 0..120 {
        for n in 0..(user % 3) {
            put(
                store,
                &registered("acme", &format!("u{user:03}"), &format!("{user}-{n}"), 0),
            )
            .await;
        }
    }
    let users: Vec<UserId> = (0..100).map(|i| u(&format!("u{i:03}"))).collect();
    let found = store.list_users(&t("acme"), &users).await.unwrap();
    let expected: usize = (0..100).map(|i| i % 3).sum();
    assert_eq!(found.len(), expected);
    assert_eq!(ids(&found).len(), expected);
    assert!(found.iter().all(|d| users.contains(&d.user)));
    let twice = [u("u002"), u("u002"), u("nobody")];
    assert_eq!(store.list_users(&t("acme"), &twice).await.unwrap().len(), 2);
    assert!(store.list_users(&t("acme"), &[]).await.unwrap().is_empty());
}

/// Follows `next` from the first page to the last, checking each page's bound.
pub async fn read_all_pages(
    store: &dyn DeviceStore,
    tenant: &TenantId,
    limit: usize,
) -> Vec<Vec<Device>> {
    let mut pages = Vec::new();
    let mut start: Option<String> = None;
    for _ in 0..100_000 {
        let page = store
            .list_page(tenant, start.as_deref(), limit)
            .await
            .unwrap();
        assert!(page.devices.len() <= limit, "page over its limit");
        assert_eq!(page.skipped, 0);
        pages.push(page.devices);
        match page.next {
            Some(next) => start = Some(next),
            None => return pages,
        }
    }
    panic!("paging never ended");
}

/// Paging a tenant visits each live device exactly once, in (user, id) order, a user's
/// devices on one page whenever they fit in one, nobody else's devices.
pub async fn pages_visit_every_device_once(store: &dyn DeviceStore) {
    let mut per_user: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..230 {
        let user = format!("u{:02}", (i * 7) % 37);
        *per_user.entry(user.clone()).or_default() += 1;
        let max = 20;
        store
            .put(&registered("acme", &user, &format!("p{i:04}"), 0), max)
            .await
            .unwrap();
    }
    for i in 0..20 {
        put(store, &registered("globex", "u01", &format!("g{i:03}"), 0)).await;
    }
    for i in 0..5 {
        put(
            store,
            &expired("acme", &format!("u{i:02}"), &format!("gone{i}")),
        )
        .await;
    }
    for limit in [1, 4, 7, 100, 230, 1_000] {
        let pages = read_all_pages(store, &t("acme"), limit).await;
        let all: Vec<Device> = pages.iter().flatten().cloned().collect();
        assert_eq!(all.len(), 230, "limit {limit}");
        assert_eq!(ids(&all).len(), 230, "limit {limit}: a device twice");
        assert!(all.iter().all(|d| d.tenant == t("acme")));
        let order: Vec<(&UserId, &DeviceId)> = all.iter().map(|d| (&d.user, &d.id)).collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "limit {limit}: order"
        );
        for (user, count) in &per_user {
            let on = pages
                .iter()
                .filter(|page| page.iter().any(|d| d.user.as_str() == user))
                .count();
            if *count <= limit {
                assert_eq!(on, 1, "limit {limit}: {user}'s {count} devices split");
            }
        }
        if limit < 230 {
            assert!(pages.len() > 1, "limit {limit}: one page");
        }
    }
    assert_eq!(read_all_pages(store, &t("nobody"), 10).await, vec![vec![]]);
}

/// An expired device is never answered, does not count toward the user's bound, is not
/// reported as evicted, and removing it answers `false`.
pub async fn expired_devices_are_never_answered(store: &dyn DeviceStore) {
    for name in ["x1", "x2", "x3"] {
        put(store, &expired("acme", "alice", name)).await;
    }
    assert!(of_user(store, "acme", "alice").await.is_empty());
    let pages = read_all_pages(store, &t("acme"), 10).await;
    assert!(pages.iter().all(Vec::is_empty));
    for name in ["l1", "l2"] {
        let evicted = store
            .put(&registered("acme", "alice", name, 0), 2)
            .await
            .unwrap();
        assert!(evicted.is_empty(), "{name}: {evicted:?}");
    }
    assert_eq!(
        ids(&of_user(store, "acme", "alice").await),
        BTreeSet::from([id("l1"), id("l2")])
    );
    put(store, &expired("acme", "bob", "x4")).await;
    assert!(!store
        .remove(&t("acme"), &u("bob"), &id("x4"))
        .await
        .unwrap());
}

/// The same user id and endpoint in two tenants are two devices: lookups, pages and
/// removals never cross, and one tenant's continuation is refused for the other.
pub async fn tenants_are_isolated(store: &dyn DeviceStore) {
    for i in 0..6 {
        put(store, &registered("acme", "alice", &format!("e{i}"), 0)).await;
        put(store, &registered("globex", "alice", &format!("e{i}"), 0)).await;
    }
    let acme = of_user(store, "acme", "alice").await;
    assert_eq!(acme.len(), 6);
    assert!(acme.iter().all(|d| d.tenant == t("acme")));
    assert!(store
        .remove(&t("acme"), &u("alice"), &id("e0"))
        .await
        .unwrap());
    assert_eq!(of_user(store, "globex", "alice").await.len(), 6);
    let page = store.list_page(&t("acme"), None, 2).await.unwrap();
    assert!(page.devices.iter().all(|d| d.tenant == t("acme")));
    let next = page.next.expect("more pages");
    let cross = store.list_page(&t("globex"), Some(&next), 2).await;
    assert!(
        matches!(cross, Err(DeviceError::InvalidContinuation(_))),
        "{cross:?}"
    );
}

/// A continuation the store did not issue is refused, not read as "start over".
pub async fn foreign_continuations_are_refused(store: &dyn DeviceStore) {
    put(store, &registered("acme", "alice", "c1", 0)).await;
    for bad in ["", "not json", "{\"x\":1}"] {
        let result = store.list_page(&t("acme"), Some(bad), 10).await;
        assert!(
            matches!(result, Err(DeviceError::InvalidContinuation(_))),
            "{bad:?} → {result:?}"
        );
    }
}

/// Runs every check, each on a fresh store from `make`.
pub async fn run_all<S, F, Fut>(make: F)
where
    S: DeviceStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    put_stores_and_replaces(&make().await).await;
    put_evicts_the_oldest_beyond_the_bound(&make().await).await;
    remove_takes_only_the_users_own(&make().await).await;
    list_users_answers_those_users(&make().await).await;
    pages_visit_every_device_once(&make().await).await;
    expired_devices_are_never_answered(&make().await).await;
    tenants_are_isolated(&make().await).await;
    foreign_continuations_are_refused(&make().await).await;
}
