use super::super::contract;
use super::*;

#[tokio::test]
async fn memory_store_passes_the_online_contract() {
    contract::run_all(|| async { MemoryOnlineStore::new(1_000) }).await;
}

fn t(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

fn u(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

fn c(id: &str) -> ConnectionId {
    ConnectionId::parse(id).unwrap()
}

async fn add(store: &MemoryOnlineStore, tenant: &str, user: &str) -> Result<Added, OnlineError> {
    store
        .add(&t(tenant), &u(user), &c(&format!("{user}-c")))
        .await
}

/// Connects, disconnects and marks `user` offline: evictable. Answers its last version.
async fn offline(store: &MemoryOnlineStore, tenant: &str, user: &str) -> u64 {
    add(store, tenant, user).await.unwrap();
    let Removed::Removed { version, .. } = store
        .remove(&t(tenant), &u(user), &c(&format!("{user}-c")))
        .await
        .unwrap()
    else {
        panic!("not removed")
    };
    let marked = store
        .mark_offline(&t(tenant), &u(user), version)
        .await
        .unwrap();
    assert_eq!(marked, Marked::Marked);
    version
}

fn version(added: Added) -> u64 {
    match added {
        Added::New { version, .. } | Added::Known { version, .. } => version,
    }
}

fn is_full(result: Result<Added, OnlineError>) -> bool {
    matches!(result, Err(OnlineError::Full(_)))
}

#[tokio::test]
async fn a_store_full_of_online_users_refuses_new_ones() {
    let store = MemoryOnlineStore::new(3);
    for user in ["u1", "u2", "u3"] {
        add(&store, "acme", user).await.unwrap();
    }
    assert!(is_full(add(&store, "acme", "u4").await));
    assert_eq!(store.len(), 3);
    // Known users still change: another connection, a removal.
    let another = store.add(&t("acme"), &u("u1"), &c("u1-d")).await.unwrap();
    assert_eq!(version(another), 2);
    let removed = store
        .remove(&t("acme"), &u("u2"), &c("u2-c"))
        .await
        .unwrap();
    assert!(matches!(removed, Removed::Removed { connections: 0, .. }));
}

/// A user with no connection but still reported online has an offline pending: evicting it
/// would lose that `user.offline`.
#[tokio::test]
async fn users_pending_offline_are_never_evicted() {
    let store = MemoryOnlineStore::new(2);
    for user in ["u1", "u2"] {
        add(&store, "acme", user).await.unwrap();
        store
            .remove(&t("acme"), &u(user), &c(&format!("{user}-c")))
            .await
            .unwrap();
    }
    assert!(is_full(add(&store, "acme", "u3").await));
    assert_eq!(
        store.mark_offline(&t("acme"), &u("u1"), 2).await.unwrap(),
        Marked::Marked
    );
    assert_eq!(
        store.mark_offline(&t("acme"), &u("u2"), 2).await.unwrap(),
        Marked::Marked
    );
    assert!(add(&store, "acme", "u3").await.is_ok());
}

#[tokio::test]
async fn offline_users_are_evicted_oldest_first_and_come_back_at_a_higher_version() {
    let store = MemoryOnlineStore::new(3);
    for user in ["old", "mid", "new"] {
        assert_eq!(offline(&store, "acme", user).await, 2);
    }
    // "old" reconnects and leaves again: now the most recently reported.
    add(&store, "acme", "old").await.unwrap();
    assert_eq!(
        store
            .remove(&t("acme"), &u("old"), &c("old-c"))
            .await
            .unwrap(),
        Removed::Removed {
            connections: 0,
            version: 4
        }
    );
    store.mark_offline(&t("acme"), &u("old"), 4).await.unwrap();
    // A newcomer evicts "mid", the oldest reported offline.
    add(&store, "acme", "x").await.unwrap();
    assert_eq!(store.len(), 3);
    assert_eq!(
        store.mark_offline(&t("acme"), &u("mid"), 2).await.unwrap(),
        Marked::Stale
    );
    assert_eq!(
        store.mark_offline(&t("acme"), &u("old"), 4).await.unwrap(),
        Marked::Already
    );
    // "mid" comes back (evicting "new") above every version evicted: its versions keep
    // increasing.
    let back = add(&store, "acme", "mid").await.unwrap();
    assert_eq!(
        back,
        Added::New {
            connections: 1,
            version: 3,
            connections_before: 0,
            before: Reported::Nothing
        }
    );
    // "new" comes back (evicting "old" at version 4): above 4.
    assert_eq!(version(add(&store, "acme", "new").await.unwrap()), 5);
}

/// A tenant whose every user was evicted leaves no state, but its users still come back
/// above the versions they had.
#[tokio::test]
async fn versions_keep_increasing_after_the_tenant_is_gone() {
    let store = MemoryOnlineStore::new(1);
    for _ in 0..3 {
        offline(&store, "acme", "alice").await;
    }
    // alice is at version 6, offline; globex's bob evicts her (acme now holds nothing).
    offline(&store, "globex", "bob").await;
    assert_eq!(store.len(), 1);
    assert!(version(add(&store, "acme", "alice").await.unwrap()) > 6);
}

/// The noisy neighbour: a tenant at its share evicts its own offline users, never another
/// tenant's, and is refused when its share is all online; others still add.
#[tokio::test]
async fn a_tenant_at_its_share_evicts_its_own_or_is_refused() {
    let store = MemoryOnlineStore::shared(10, 3);
    offline(&store, "quiet", "q1").await;
    for user in ["l1", "l2"] {
        add(&store, "loud", user).await.unwrap();
    }
    offline(&store, "loud", "l3").await;
    add(&store, "loud", "l4").await.unwrap();
    assert_eq!(store.len(), 4);
    assert!(is_full(add(&store, "loud", "l5").await));
    // quiet's offline user is still there.
    assert_eq!(
        store.mark_offline(&t("quiet"), &u("q1"), 2).await.unwrap(),
        Marked::Already
    );
    for user in ["q2", "q3"] {
        add(&store, "quiet", user).await.unwrap();
    }
}

#[tokio::test]
async fn a_full_store_evicts_from_the_tenant_holding_the_most() {
    let store = MemoryOnlineStore::new(5);
    offline(&store, "small", "s1").await;
    for user in ["b1", "b2", "b3"] {
        offline(&store, "big", user).await;
    }
    add(&store, "big", "b4").await.unwrap();
    add(&store, "other", "o1").await.unwrap();
    assert_eq!(store.len(), 5);
    // big's oldest offline user goes, though small's was reported offline before it.
    assert_eq!(
        store.mark_offline(&t("big"), &u("b1"), 2).await.unwrap(),
        Marked::Stale
    );
    assert_eq!(
        store.mark_offline(&t("small"), &u("s1"), 2).await.unwrap(),
        Marked::Already
    );
    assert_eq!(store.len(), 5);
}
