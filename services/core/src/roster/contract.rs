#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failed expectation is the test failing
//! The behaviour every [`RosterStore`] adapter must show. Each check takes a fresh, empty
//! store; adapters' tests call them one per test (`run_all` runs them in sequence, each on
//! a new store from the factory).

use std::collections::BTreeSet;
use std::future::Future;

use futures::{stream, StreamExt, TryStreamExt};
use switchboard_model::{ConnectionId, TenantId, UserId};
use time::OffsetDateTime;

use super::{
    ConnectionRecord, PageScope, RecordError, RosterError, RosterStore, Tally,
    DEFAULT_CONNECTION_TTL_SECS,
};

fn record(tenant: &str, user: &str, connection: &str) -> ConnectionRecord {
    ConnectionRecord::from_raw(
        connection,
        tenant,
        user,
        vec!["reader".into()],
        OffsetDateTime::now_utc(),
        DEFAULT_CONNECTION_TTL_SECS,
    )
    .expect("test ids are valid")
}

fn t(id: &str) -> TenantId {
    TenantId::parse(id).expect("valid tenant")
}

fn u(id: &str) -> UserId {
    UserId::parse(id).expect("valid user")
}

fn c(id: &str) -> ConnectionId {
    ConnectionId::parse(id).expect("valid connection")
}

fn ids(records: &[ConnectionRecord]) -> BTreeSet<String> {
    records
        .iter()
        .map(|r| r.connection_id.to_string())
        .collect()
}

async fn put_all(store: &dyn RosterStore, records: Vec<ConnectionRecord>) {
    stream::iter(records)
        .map(|r| async move { store.put(&r).await })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .expect("puts succeed");
}

/// The same user id in two tenants is two people: lookups never mix them.
pub async fn same_user_in_two_tenants_never_mixes(store: &dyn RosterStore) {
    put_all(
        store,
        vec![
            record("acme", "alice", "acme-1"),
            record("globex", "alice", "globex-1"),
            record("acme", "bob", "acme-2"),
        ],
    )
    .await;
    let acme_alice = store.list_users(&t("acme"), &[u("alice")]).await.unwrap();
    assert_eq!(ids(&acme_alice), BTreeSet::from(["acme-1".to_string()]));
    let globex_alice = store.list_users(&t("globex"), &[u("alice")]).await.unwrap();
    assert_eq!(ids(&globex_alice), BTreeSet::from(["globex-1".to_string()]));
    let acme = store.list_tenant(&t("acme")).await.unwrap();
    assert_eq!(
        ids(&acme),
        BTreeSet::from(["acme-1".into(), "acme-2".into()])
    );
    assert!(acme.iter().all(|r| r.tenant.as_str() == "acme"));
    // A connection id of another tenant is not found through this tenant.
    let cross = store
        .list_connections(&t("acme"), &[c("globex-1")])
        .await
        .unwrap();
    assert!(
        cross.is_empty(),
        "cross-tenant connection lookup leaked: {cross:?}"
    );
    let own = store
        .list_connections(&t("globex"), &[c("globex-1"), c("missing")])
        .await
        .unwrap();
    assert_eq!(ids(&own), BTreeSet::from(["globex-1".to_string()]));
}

/// One user may hold several connections; all are found, and the record round-trips.
pub async fn one_user_several_connections(store: &dyn RosterStore) {
    let records = vec![
        record("acme", "alice", "a-1"),
        record("acme", "alice", "a-2"),
        record("acme", "alice", "a-3"),
        record("acme", "bob", "b-1"),
    ];
    put_all(store, records.clone()).await;
    let mut alice = store.list_users(&t("acme"), &[u("alice")]).await.unwrap();
    alice.sort_by(|a, b| a.connection_id.cmp(&b.connection_id));
    assert_eq!(alice, records[..3].to_vec());
    let both = store
        .list_users(&t("acme"), &[u("alice"), u("bob"), u("alice")])
        .await
        .unwrap();
    assert_eq!(both.len(), 4, "each connection exactly once: {both:?}");
}

/// Removing is idempotent, and removes only what it names.
pub async fn remove_twice_is_fine(store: &dyn RosterStore) {
    put_all(
        store,
        vec![
            record("acme", "alice", "a-1"),
            record("acme", "alice", "a-2"),
        ],
    )
    .await;
    store.remove(&t("acme"), &c("a-1")).await.unwrap();
    store.remove(&t("acme"), &c("a-1")).await.unwrap();
    store.remove(&t("nobody"), &c("never")).await.unwrap();
    let left = store.list_users(&t("acme"), &[u("alice")]).await.unwrap();
    assert_eq!(ids(&left), BTreeSet::from(["a-2".to_string()]));
    // Removing with the wrong tenant does not touch another tenant's item.
    store.remove(&t("globex"), &c("a-2")).await.unwrap();
    assert_eq!(store.list_tenant(&t("acme")).await.unwrap().len(), 1);
}

/// Items in a tenant to exceed one 1 MB query page.
pub const LARGE_TENANT_ITEMS: usize = 1_200;

/// A tenant holding more than 1 MB of items is listed whole (pagination followed).
pub async fn large_tenant_is_listed_whole(store: &dyn RosterStore) {
    let big_role = "r".repeat(120);
    let records: Vec<ConnectionRecord> = (0..LARGE_TENANT_ITEMS)
        .map(|i| {
            let mut r = record(
                "big",
                &format!("user-{:04}", i % 50),
                &format!("conn-{i:05}"),
            );
            r.roles = (0..8).map(|k| format!("{big_role}{k}")).collect();
            r
        })
        .collect();
    let approx_bytes: usize = records
        .iter()
        .map(|r| r.roles.iter().map(String::len).sum::<usize>() + 200)
        .sum();
    assert!(approx_bytes > 1_048_576, "fixture must exceed 1 MB");
    put_all(store, records).await;
    put_all(store, vec![record("small", "x", "small-1")]).await;
    let listed = store.list_tenant(&t("big")).await.unwrap();
    assert_eq!(listed.len(), LARGE_TENANT_ITEMS);
    assert_eq!(ids(&listed).len(), LARGE_TENANT_ITEMS);
    let one_user = store
        .list_users(&t("big"), &[u("user-0007")])
        .await
        .unwrap();
    assert_eq!(one_user.len(), LARGE_TENANT_ITEMS / 50);
    // Counting follows the pages too, and stops at `up_to`.
    let all = LARGE_TENANT_ITEMS as u64;
    assert_eq!(store.count(&t("big"), None, u64::MAX).await.unwrap(), all);
    assert_eq!(
        store.count(&t("big"), None, all - 1).await.unwrap(),
        all - 1
    );
    let user = u("user-0007");
    assert_eq!(
        store.count(&t("big"), Some(&user), u64::MAX).await.unwrap(),
        all / 50
    );
}

/// `count` answers `min(live, up_to)` for a tenant or one user in it: expired items (not yet
/// removed by the store) and other tenants' connections never count.
pub async fn count_is_live_connections_up_to_the_bound(store: &dyn RosterStore) {
    let old = OffsetDateTime::now_utc() - time::Duration::hours(3);
    let stale = |user: &str, connection: &str| {
        ConnectionRecord::from_raw(connection, "acme", user, vec![], old, 60).expect("valid")
    };
    let mut records: Vec<ConnectionRecord> = (0..7)
        .map(|i| {
            record(
                "acme",
                if i < 3 { "alice" } else { "bob" },
                &format!("a-{i}"),
            )
        })
        .collect();
    records.extend([stale("alice", "old-1"), stale("carol", "old-2")]);
    records.push(record("globex", "alice", "g-1"));
    put_all(store, records).await;
    let alice = u("alice");
    let count = |tenant: &'static str, user: Option<&'static str>, up_to: u64| {
        let user = user.map(u);
        async move { store.count(&t(tenant), user.as_ref(), up_to).await.unwrap() }
    };
    assert_eq!(
        count("acme", None, 100).await,
        7,
        "expired items never count"
    );
    assert_eq!(count("acme", None, 7).await, 7);
    assert_eq!(count("acme", None, 5).await, 5, "stops at up_to");
    assert_eq!(count("acme", None, 0).await, 0);
    assert_eq!(count("acme", Some("alice"), 100).await, 3);
    assert_eq!(count("acme", Some("alice"), 2).await, 2);
    assert_eq!(count("acme", Some("carol"), 100).await, 0, "only expired");
    assert_eq!(count("globex", Some("alice"), 100).await, 1);
    assert_eq!(count("nobody", None, 100).await, 0);
    assert_eq!(count("nobody", Some("alice"), 100).await, 0);
    // A removed connection stops counting at once.
    store.remove(&t("acme"), &c("a-0")).await.unwrap();
    assert_eq!(store.count(&t("acme"), Some(&alice), 100).await.unwrap(), 2);
    assert_eq!(count("acme", None, 100).await, 6);
}

/// `tally` answers a tenant's live connections and distinct users: expired items and
/// other tenants never count; at `up_to` it stops and says the counts are incomplete.
pub async fn tally_counts_live_connections_and_users_up_to_the_bound(store: &dyn RosterStore) {
    let old = OffsetDateTime::now_utc() - time::Duration::hours(3);
    let stale = |user: &str, connection: &str| {
        ConnectionRecord::from_raw(connection, "acme", user, vec![], old, 60).expect("valid")
    };
    let mut records: Vec<ConnectionRecord> = (0..7)
        .map(|i| record("acme", ["alice", "bob", "carol"][i % 3], &format!("a-{i}")))
        .collect();
    records.extend([stale("alice", "old-1"), stale("dave", "old-2")]);
    records.push(record("globex", "erin", "g-1"));
    put_all(store, records).await;
    let tally = |tenant: &'static str, up_to: u64| async move {
        store.tally(&t(tenant), up_to).await.unwrap()
    };
    let full = Tally {
        connections: 7,
        users: 3,
        complete: true,
    };
    assert_eq!(
        tally("acme", 10_000).await,
        full,
        "expired items never count"
    );
    assert_eq!(
        tally("acme", 7).await,
        full,
        "exactly up_to live is complete"
    );
    let part = tally("acme", 5).await;
    assert_eq!((part.connections, part.complete), (5, false), "{part:?}");
    assert!((1..=3).contains(&part.users), "{part:?}");
    assert_eq!(
        tally("acme", 0).await,
        Tally {
            connections: 0,
            users: 0,
            complete: false
        }
    );
    assert_eq!(
        tally("globex", 100).await,
        Tally {
            connections: 1,
            users: 1,
            complete: true
        }
    );
    assert_eq!(
        tally("nobody", 100).await,
        Tally {
            connections: 0,
            users: 0,
            complete: true
        }
    );
    store.remove(&t("acme"), &c("a-0")).await.unwrap();
    store.remove(&t("acme"), &c("a-3")).await.unwrap();
    store.remove(&t("acme"), &c("a-6")).await.unwrap();
    assert_eq!(
        tally("acme", 100).await,
        Tally {
            connections: 4,
            users: 2,
            complete: true
        },
        "alice's connections are gone"
    );
}

/// `live_tenants`, where the store can answer it, names each tenant holding a live
/// connection once, in name order, at most `limit`; a tenant with only expired items is
/// left out.
pub async fn live_tenants_are_named_in_order_up_to_the_limit(store: &dyn RosterStore) {
    let old = OffsetDateTime::now_utc() - time::Duration::hours(3);
    let mut records: Vec<ConnectionRecord> = ["globex", "acme", "initech", "acme"]
        .iter()
        .enumerate()
        .map(|(i, tenant)| record(tenant, "u", &format!("l-{i}")))
        .collect();
    records
        .push(ConnectionRecord::from_raw("old-1", "stale", "u", vec![], old, 60).expect("valid"));
    put_all(store, records).await;
    let Some(all) = store.live_tenants(100).await.unwrap() else {
        return;
    };
    assert_eq!(all, [t("acme"), t("globex"), t("initech")]);
    assert_eq!(
        store.live_tenants(2).await.unwrap(),
        Some(vec![t("acme"), t("globex")])
    );
    assert_eq!(store.live_tenants(0).await.unwrap(), Some(vec![]));
}

/// A `users` lookup naming 100 users finds each of their connections, and no one else's.
pub async fn users_lookup_with_one_hundred_users(store: &dyn RosterStore) {
    let mut records: Vec<ConnectionRecord> = (0..150)
        .map(|i| record("acme", &format!("u{i:03}"), &format!("c{i:03}")))
        .collect();
    records.push(record("other", "u000", "other-0"));
    put_all(store, records).await;
    let wanted: Vec<UserId> = (0..100).map(|i| u(&format!("u{i:03}"))).collect();
    let found = store.list_users(&t("acme"), &wanted).await.unwrap();
    let expected: BTreeSet<String> = (0..100).map(|i| format!("c{i:03}")).collect();
    assert_eq!(found.len(), 100);
    assert_eq!(ids(&found), expected);
}

/// Listing everything returns every item of every tenant exactly once.
pub async fn list_all_returns_every_item_once(store: &dyn RosterStore) {
    let records: Vec<ConnectionRecord> = (0..400)
        .map(|i| {
            record(
                &format!("tenant-{}", i % 7),
                &format!("u{}", i % 13),
                &format!("k{i:04}"),
            )
        })
        .collect();
    put_all(store, records).await;
    let all = store.list_all().await.unwrap();
    assert_eq!(all.len(), 400, "no item missing, none twice");
    assert_eq!(ids(&all).len(), 400);
}

/// Invalid ids never reach the store.
pub async fn invalid_ids_are_refused_before_any_write(store: &dyn RosterStore) {
    let now = OffsetDateTime::now_utc();
    let attempts = [
        ("c-1", "a#b", "alice"),
        ("c-1", "", "alice"),
        ("c-1", "acme", &"x".repeat(129)),
        ("c-1", "acme", "bad\u{7}user"),
        ("bad id", "acme", "alice"),
    ];
    for (connection, tenant, user) in attempts {
        let built = ConnectionRecord::from_raw(connection, tenant, user, vec![], now, 60);
        assert!(
            matches!(
                built,
                Err(RecordError::Tenant(_) | RecordError::User(_) | RecordError::Connection(_))
            ),
            "accepted {connection:?}/{tenant:?}/{user:?}"
        );
    }
    assert!(store.list_all().await.unwrap().is_empty());
}

/// Records past their `expiresAt` are not returned, even before the store removes them.
pub async fn expired_records_are_not_returned(store: &dyn RosterStore) {
    let stale = ConnectionRecord::from_raw(
        "old-1",
        "acme",
        "alice",
        vec![],
        OffsetDateTime::now_utc() - time::Duration::hours(3),
        DEFAULT_CONNECTION_TTL_SECS,
    )
    .expect("valid");
    put_all(store, vec![stale, record("acme", "alice", "new-1")]).await;
    let found = store.list_users(&t("acme"), &[u("alice")]).await.unwrap();
    assert_eq!(ids(&found), BTreeSet::from(["new-1".to_string()]));
    assert_eq!(store.list_tenant(&t("acme")).await.unwrap().len(), 1);
    assert_eq!(store.list_all().await.unwrap().len(), 1);
}

/// `tokenExpiresAt` round-trips (absent stays absent: older writers' records are valid);
/// `set_token_expiry` moves it on an existing connection only and never creates one.
pub async fn token_expiry_is_kept_and_moved_only_on_existing_connections(store: &dyn RosterStore) {
    let with = record("acme", "alice", "t-1").with_token_expiry(Some(1_900_000_000));
    let without = record("acme", "bob", "t-2");
    put_all(store, vec![with.clone(), without.clone()]).await;
    let mut found = store.list_tenant(&t("acme")).await.unwrap();
    found.sort_by(|a, b| a.connection_id.cmp(&b.connection_id));
    assert_eq!(found, vec![with.clone(), without.clone()]);

    assert!(store
        .set_token_expiry(&t("acme"), &c("t-2"), 1_900_000_600)
        .await
        .unwrap());
    let moved = store.list_users(&t("acme"), &[u("bob")]).await.unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].token_expires_at, Some(1_900_000_600));
    assert_eq!(moved[0].roles, without.roles, "only tokenExpiresAt changes");
    assert_eq!(moved[0].expires_at, without.expires_at);

    // Not in the roster (removed, or another tenant's id): nothing is created.
    store.remove(&t("acme"), &c("t-1")).await.unwrap();
    assert!(!store
        .set_token_expiry(&t("acme"), &c("t-1"), 1_900_000_600)
        .await
        .unwrap());
    assert!(!store
        .set_token_expiry(&t("globex"), &c("t-2"), 1_900_000_600)
        .await
        .unwrap());
    let all = store.list_all().await.unwrap();
    assert_eq!(ids(&all), BTreeSet::from(["t-2".to_string()]));
}

/// Follows `scope` page by page (`limit` records a page) to its end; every page within the
/// limit, and the same record never on two pages.
pub async fn read_all_pages(
    store: &dyn RosterStore,
    scope: &PageScope,
    limit: usize,
) -> Vec<ConnectionRecord> {
    let mut all = Vec::new();
    let mut start: Option<String> = None;
    for _ in 0..100_000 {
        let page = store
            .list_page(scope, start.as_deref(), limit)
            .await
            .unwrap();
        assert!(page.records.len() <= limit, "page over its limit");
        all.extend(page.records);
        match page.next {
            Some(next) => start = Some(next),
            None => return all,
        }
    }
    panic!("paging never ended");
}

/// Paging through a tenant visits each of its connections exactly once, and nobody else's.
pub async fn tenant_pages_visit_each_connection_once(store: &dyn RosterStore) {
    let mut records: Vec<ConnectionRecord> = (0..230)
        .map(|i| record("acme", &format!("u{}", i % 9), &format!("p{i:04}")))
        .collect();
    records.extend((0..20).map(|i| record("globex", "u1", &format!("g{i:03}"))));
    put_all(store, records).await;
    for limit in [1, 7, 100, 230, 1_000] {
        let listed = read_all_pages(store, &PageScope::Tenant(t("acme")), limit).await;
        assert_eq!(listed.len(), 230, "limit {limit}");
        assert_eq!(ids(&listed).len(), 230, "limit {limit}: a connection twice");
        assert!(listed.iter().all(|r| r.tenant == t("acme")));
    }
    let none = read_all_pages(store, &PageScope::Tenant(t("nobody")), 10).await;
    assert!(none.is_empty());
}

/// The segments of one total partition every tenant's connections: each exactly once.
pub async fn segments_partition_the_roster(store: &dyn RosterStore) {
    let records: Vec<ConnectionRecord> = (0..300)
        .map(|i| {
            record(
                &format!("tenant-{}", i % 5),
                &format!("u{}", i % 11),
                &format!("s{i:04}"),
            )
        })
        .collect();
    put_all(store, records).await;
    for total in [1, 3, 4] {
        let mut seen = Vec::new();
        for segment in 0..total {
            seen.extend(read_all_pages(store, &PageScope::Segment { segment, total }, 17).await);
        }
        assert_eq!(seen.len(), 300, "{total} segments");
        assert_eq!(
            ids(&seen).len(),
            300,
            "{total} segments: a connection twice"
        );
    }
}

/// A continuation the store did not issue is refused, not read as "start over".
pub async fn foreign_continuations_are_refused(store: &dyn RosterStore) {
    put_all(store, vec![record("acme", "alice", "c-1")]).await;
    let scope = PageScope::Tenant(t("acme"));
    for bad in ["", "not json", "{\"x\":1}"] {
        let result = store.list_page(&scope, Some(bad), 10).await;
        assert!(
            matches!(result, Err(RosterError::InvalidContinuation(_))),
            "{bad:?} → {result:?}"
        );
    }
    let bad_segment = PageScope::Segment {
        segment: 4,
        total: 4,
    };
    assert!(store.list_page(&bad_segment, None, 10).await.is_err());
}

/// Runs every check, each on a fresh store from `make`.
pub async fn run_all<S, F, Fut>(make: F)
where
    S: RosterStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    same_user_in_two_tenants_never_mixes(&make().await).await;
    one_user_several_connections(&make().await).await;
    remove_twice_is_fine(&make().await).await;
    large_tenant_is_listed_whole(&make().await).await;
    users_lookup_with_one_hundred_users(&make().await).await;
    list_all_returns_every_item_once(&make().await).await;
    invalid_ids_are_refused_before_any_write(&make().await).await;
    expired_records_are_not_returned(&make().await).await;
    tenant_pages_visit_each_connection_once(&make().await).await;
    segments_partition_the_roster(&make().await).await;
    foreign_continuations_are_refused(&make().await).await;
    token_expiry_is_kept_and_moved_only_on_existing_connections(&make().await).await;
    count_is_live_connections_up_to_the_bound(&make().await).await;
    tally_counts_live_connections_and_users_up_to_the_bound(&make().await).await;
    live_tenants_are_named_in_order_up_to_the_limit(&make().await).await;
}
