#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failed expectation is the test failing
//! The behaviour every [`OnlineStore`] adapter must show. Each check takes a fresh, empty
//! store; adapters' tests call them one per test (`run_all` runs them in sequence, each on
//! a new store from the factory).

use std::collections::BTreeSet;
use std::future::Future;

use futures::future::join_all;
use switchboard_model::{ConnectionId, TenantId, UserId};

use super::{Added, Marked, OnlineStore, Removed, Reported};

fn t(id: &str) -> TenantId {
    TenantId::parse(id).expect("valid tenant")
}

fn u(id: &str) -> UserId {
    UserId::parse(id).expect("valid user")
}

fn c(id: &str) -> ConnectionId {
    ConnectionId::parse(id).expect("valid connection")
}

async fn add(store: &dyn OnlineStore, tenant: &str, user: &str, connection: &str) -> Added {
    store
        .add(&t(tenant), &u(user), &c(connection))
        .await
        .unwrap()
}

async fn remove(store: &dyn OnlineStore, tenant: &str, user: &str, connection: &str) -> Removed {
    store
        .remove(&t(tenant), &u(user), &c(connection))
        .await
        .unwrap()
}

async fn mark(store: &dyn OnlineStore, tenant: &str, user: &str, version: u64) -> Marked {
    store
        .mark_offline(&t(tenant), &u(user), version)
        .await
        .unwrap()
}

fn new(connections: u64, version: u64, connections_before: u64, before: Reported) -> Added {
    Added::New {
        connections,
        version,
        connections_before,
        before,
    }
}

/// The first connection of a user is version 1, reported nothing before; the second is
/// version 2 with the first counted before it.
pub async fn adds_count_connections_and_versions(store: &dyn OnlineStore) {
    assert_eq!(
        add(store, "acme", "alice", "c1").await,
        new(1, 1, 0, Reported::Nothing)
    );
    assert_eq!(
        add(store, "acme", "alice", "c2").await,
        new(2, 2, 1, Reported::Online)
    );
}

/// Adding a connection again changes nothing and answers the version its first add got.
pub async fn a_repeated_add_is_known(store: &dyn OnlineStore) {
    add(store, "acme", "alice", "c1").await;
    add(store, "acme", "alice", "c2").await;
    let known = Added::Known {
        connections: 2,
        version: 1,
    };
    assert_eq!(add(store, "acme", "alice", "c1").await, known);
    assert_eq!(add(store, "acme", "alice", "c1").await, known);
    // Nothing changed: the next connection is version 3.
    assert_eq!(
        add(store, "acme", "alice", "c3").await,
        new(3, 3, 2, Reported::Online)
    );
}

/// A removal is one change; removing again (or a connection never added) changes nothing
/// and answers the user's state.
pub async fn a_repeated_remove_is_unknown(store: &dyn OnlineStore) {
    add(store, "acme", "alice", "c1").await;
    add(store, "acme", "alice", "c2").await;
    assert_eq!(
        remove(store, "acme", "alice", "c1").await,
        Removed::Removed {
            connections: 1,
            version: 3
        }
    );
    let unknown = Removed::Unknown {
        connections: 1,
        version: 3,
        reported: Reported::Online,
    };
    assert_eq!(remove(store, "acme", "alice", "c1").await, unknown);
    assert_eq!(remove(store, "acme", "alice", "never").await, unknown);
    assert_eq!(
        remove(store, "acme", "alice", "c2").await,
        Removed::Removed {
            connections: 0,
            version: 4
        }
    );
    // A user never seen: nothing, at version 0.
    assert_eq!(
        remove(store, "acme", "nobody", "c9").await,
        Removed::Unknown {
            connections: 0,
            version: 0,
            reported: Reported::Nothing,
        }
    );
}

/// `mark_offline` marks only at exactly the version of the last removal, with no
/// connection left and reported online; once marked it answers `Already`.
pub async fn mark_offline_only_at_the_exact_version(store: &dyn OnlineStore) {
    add(store, "acme", "alice", "c1").await;
    assert_eq!(mark(store, "acme", "alice", 1).await, Marked::Stale);
    remove(store, "acme", "alice", "c1").await;
    assert_eq!(mark(store, "acme", "alice", 1).await, Marked::Stale);
    assert_eq!(mark(store, "acme", "alice", 3).await, Marked::Stale);
    assert_eq!(mark(store, "acme", "alice", 2).await, Marked::Marked);
    assert_eq!(mark(store, "acme", "alice", 2).await, Marked::Already);
    assert_eq!(mark(store, "acme", "alice", 1).await, Marked::Stale);
    // After a reconnect the old check is stale.
    add(store, "acme", "alice", "c2").await;
    assert_eq!(mark(store, "acme", "alice", 2).await, Marked::Stale);
    assert_eq!(mark(store, "acme", "alice", 3).await, Marked::Stale);
    // A user never seen is never marked.
    assert_eq!(mark(store, "acme", "nobody", 0).await, Marked::Stale);
    assert_eq!(mark(store, "acme", "nobody", 1).await, Marked::Stale);
}

/// With a connection left, the user is not offline at any version.
pub async fn connections_left_keep_the_user_online(store: &dyn OnlineStore) {
    add(store, "acme", "alice", "c1").await;
    add(store, "acme", "alice", "c2").await;
    remove(store, "acme", "alice", "c2").await;
    assert_eq!(mark(store, "acme", "alice", 3).await, Marked::Stale);
    assert_eq!(mark(store, "acme", "alice", 2).await, Marked::Stale);
    assert_eq!(
        add(store, "acme", "alice", "c3").await,
        new(2, 4, 1, Reported::Online)
    );
}

/// A reconnect before the offline check sees the user still reported online with no
/// connection (an offline was pending); after the check it sees it reported offline.
pub async fn a_reconnect_tells_what_was_reported(store: &dyn OnlineStore) {
    add(store, "acme", "alice", "c1").await;
    remove(store, "acme", "alice", "c1").await;
    assert_eq!(
        add(store, "acme", "alice", "c2").await,
        new(1, 3, 0, Reported::Online)
    );
    remove(store, "acme", "alice", "c2").await;
    assert_eq!(mark(store, "acme", "alice", 4).await, Marked::Marked);
    assert_eq!(
        add(store, "acme", "alice", "c3").await,
        new(1, 5, 0, Reported::Offline)
    );
}

/// The same user id in two tenants, and two users of one tenant, are separate: each has
/// its own connections and versions.
pub async fn tenants_and_users_are_isolated(store: &dyn OnlineStore) {
    let first = new(1, 1, 0, Reported::Nothing);
    assert_eq!(add(store, "acme", "alice", "c1").await, first);
    assert_eq!(add(store, "globex", "alice", "c1").await, first);
    assert_eq!(add(store, "acme", "bob", "c1").await, first);
    assert_eq!(
        remove(store, "globex", "alice", "c1").await,
        Removed::Removed {
            connections: 0,
            version: 2
        }
    );
    assert_eq!(mark(store, "globex", "alice", 2).await, Marked::Marked);
    // acme's alice and bob are untouched.
    assert_eq!(mark(store, "acme", "alice", 2).await, Marked::Stale);
    assert_eq!(
        add(store, "acme", "alice", "c2").await,
        new(2, 2, 1, Reported::Online)
    );
    assert_eq!(
        remove(store, "acme", "bob", "c2").await,
        Removed::Unknown {
            connections: 1,
            version: 1,
            reported: Reported::Online,
        }
    );
}

enum Change {
    Remove(String),
    Add(String),
    Again(String),
}

/// Connections of one user added and removed at the same time: every change gets its own
/// version, and the count ends right.
pub async fn concurrent_changes_of_one_user_are_each_counted(store: &dyn OnlineStore) {
    const N: usize = 50;
    let versions = |answers: Vec<u64>| answers.into_iter().collect::<BTreeSet<u64>>();
    let added = join_all((0..N).map(|i| async move {
        match add(store, "acme", "alice", &format!("a{i}")).await {
            Added::New { version, .. } => version,
            other => panic!("a new connection answered {other:?}"),
        }
    }))
    .await;
    assert_eq!(versions(added), (1..=N as u64).collect());

    // Half of them leave while as many new ones arrive and the other half are added again.
    let changes = (0..N / 2).flat_map(|i| {
        [
            Change::Remove(format!("a{i}")),
            Change::Add(format!("b{i}")),
            Change::Again(format!("a{}", N / 2 + i)),
        ]
    });
    let changed = join_all(changes.map(|change| async move {
        match change {
            Change::Remove(id) => match remove(store, "acme", "alice", &id).await {
                Removed::Removed { version, .. } => Some(version),
                other => panic!("a live connection's removal answered {other:?}"),
            },
            Change::Add(id) => match add(store, "acme", "alice", &id).await {
                Added::New { version, .. } => Some(version),
                other => panic!("a new connection answered {other:?}"),
            },
            Change::Again(id) => match add(store, "acme", "alice", &id).await {
                Added::Known { .. } => None,
                other => panic!("a repeated add answered {other:?}"),
            },
        }
    }))
    .await;
    let changed = changed.into_iter().flatten().collect();
    assert_eq!(versions(changed), (N as u64 + 1..=2 * N as u64).collect());

    // N live connections, 2N changes so far.
    assert_eq!(
        add(store, "acme", "alice", "last").await,
        new(N as u64 + 1, 2 * N as u64 + 1, N as u64, Reported::Online)
    );
}

pub async fn run_all<S, F, Fut>(make: F)
where
    S: OnlineStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    adds_count_connections_and_versions(&make().await).await;
    a_repeated_add_is_known(&make().await).await;
    a_repeated_remove_is_unknown(&make().await).await;
    mark_offline_only_at_the_exact_version(&make().await).await;
    connections_left_keep_the_user_online(&make().await).await;
    a_reconnect_tells_what_was_reported(&make().await).await;
    tenants_and_users_are_isolated(&make().await).await;
    concurrent_changes_of_one_user_are_each_counted(&make().await).await;
}
