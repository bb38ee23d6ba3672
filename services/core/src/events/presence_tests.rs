//! The presence steps on the memory online store and a recording sink: what the backend is
//! told for connects, closes, reconnects inside the offline delay, flaps and repeats.

use std::sync::Arc;

use switchboard_model::{ConnectionId, TenantId, UserId};
use time::OffsetDateTime;

use super::{Event, EventKind, MemoryEventSink, OfflineCheck, PresenceEvents};
use crate::online::MemoryOnlineStore;

struct Rig {
    presence: PresenceEvents,
    sink: Arc<MemoryEventSink>,
    tenant: TenantId,
    user: UserId,
}

fn rig() -> Rig {
    let sink = Arc::new(MemoryEventSink::new());
    let online = Arc::new(MemoryOnlineStore::new(1_000));
    Rig {
        presence: PresenceEvents::new(online, sink.clone()),
        sink,
        tenant: TenantId::parse("acme").unwrap(),
        user: UserId::parse("alice").unwrap(),
    }
}

fn connection(n: usize) -> ConnectionId {
    ConnectionId::parse(format!("conn-{n:05}")).unwrap()
}

impl Rig {
    async fn connect(&self, n: usize) -> Option<Event> {
        let now = OffsetDateTime::now_utc();
        self.presence
            .connected(&self.tenant, &self.user, &connection(n), now)
            .await
            .unwrap()
    }

    async fn close(&self, n: usize) -> Option<OfflineCheck> {
        self.presence
            .disconnected(&self.tenant, &self.user, &connection(n))
            .await
            .unwrap()
    }

    async fn check(&self, check: &OfflineCheck) -> Option<Event> {
        let now = OffsetDateTime::now_utc();
        self.presence.check_offline(check, now).await.unwrap()
    }

    /// Every event the sink got of `kind`.
    fn emitted(&self, kind: EventKind) -> Vec<Event> {
        self.sink
            .events()
            .into_iter()
            .filter(|e| e.kind == kind)
            .collect()
    }

    /// Every event the sink got, a repeat of the one before it (same id) left out: their
    /// versions must strictly increase.
    fn assert_versions_increase(&self) {
        let mut events = self.sink.events();
        events.dedup_by(|later, earlier| later.id == earlier.id);
        let versions: Vec<u64> = events.iter().map(version).collect();
        assert!(
            versions.windows(2).all(|w| w[0] < w[1]),
            "versions not strictly increasing: {versions:?}"
        );
    }
}

/// The event's `(type, connections, version)`.
fn shape(event: &Event) -> (&'static str, u64, u64) {
    let data = &event.data;
    let count = |name: &str| data[name].as_u64().unwrap();
    (event.kind.as_str(), count("connections"), version(event))
}

fn version(event: &Event) -> u64 {
    event.data["version"].as_u64().unwrap()
}

#[tokio::test]
async fn connects_announce_online_and_the_last_close_a_check_that_announces_offline() {
    let rig = rig();
    let first = rig.connect(1).await.expect("online");
    assert_eq!(shape(&first), ("user.online", 1, 1));
    assert_eq!(first.data["tenant"], "acme");
    assert_eq!(first.data["user"], "alice");
    let second = rig.connect(2).await.expect("online");
    assert_eq!(shape(&second), ("user.online", 2, 2));
    assert_eq!(rig.close(1).await, None, "one connection left: no check");
    let check = rig.close(2).await.expect("a check");
    assert_eq!(check.version, 4);
    assert!(
        rig.emitted(EventKind::UserOffline).is_empty(),
        "not before the check"
    );
    let offline = rig.check(&check).await.expect("offline");
    assert_eq!(shape(&offline), ("user.offline", 0, 4));
    assert_eq!(rig.sink.events(), [first, second, offline]);
    rig.assert_versions_increase();
}

#[tokio::test]
async fn a_reconnect_before_the_check_announces_nothing_and_makes_the_check_stale() {
    let rig = rig();
    rig.connect(1).await.expect("online");
    let check = rig.close(1).await.expect("a check");
    assert_eq!(check.version, 2);
    assert_eq!(
        rig.connect(2).await,
        None,
        "the backend still has them online"
    );
    assert_eq!(rig.check(&check).await, None, "stale");
    assert_eq!(rig.emitted(EventKind::UserOnline).len(), 1);
    assert!(rig.emitted(EventKind::UserOffline).is_empty());
    // Closing the reconnect starts a new delay, whose check announces offline.
    let last = rig.close(2).await.expect("a check");
    assert_eq!(last.version, 4);
    let offline = rig.check(&last).await.expect("offline");
    assert_eq!(shape(&offline), ("user.offline", 0, 4));
    rig.assert_versions_increase();
}

#[tokio::test]
async fn a_thousand_flaps_announce_no_offline_then_the_last_close_exactly_one() {
    let rig = rig();
    rig.connect(0).await.expect("online");
    let mut checks = Vec::new();
    for n in 1..=1_000 {
        checks.push(rig.close(n - 1).await.expect("a check"));
        assert_eq!(rig.connect(n).await, None, "flap {n}");
    }
    // Every delay passes after its reconnect.
    for check in &checks {
        assert_eq!(rig.check(check).await, None, "check at {}", check.version);
    }
    assert_eq!(rig.sink.events().len(), 1, "only the first online");
    let last = rig.close(1_000).await.expect("a check");
    assert_eq!(last.version, 2_002);
    // The stale checks again, in any order, around the last one.
    for check in checks.iter().rev().take(3) {
        assert_eq!(rig.check(check).await, None);
    }
    let offline = rig.check(&last).await.expect("offline");
    assert_eq!(shape(&offline), ("user.offline", 0, 2_002));
    assert_eq!(rig.emitted(EventKind::UserOffline), [offline]);
    assert_eq!(rig.emitted(EventKind::UserOnline).len(), 1);
    rig.assert_versions_increase();
}

#[tokio::test]
async fn repeated_steps_announce_the_same_event_or_nothing() {
    let rig = rig();
    let online = rig.connect(1).await.expect("online");
    let again = rig.connect(1).await.expect("the same online");
    assert_eq!(
        (again.id.as_str(), version(&again)),
        (online.id.as_str(), 1)
    );
    let check = rig.close(1).await.expect("a check");
    assert_eq!(rig.close(1).await, Some(check.clone()), "the same check");
    let offline = rig.check(&check).await.expect("offline");
    let repeat = rig.check(&check).await.expect("the same offline");
    assert_eq!(repeat.id, offline.id);
    assert_eq!(shape(&repeat), shape(&offline));
    // Once offline was announced, the close again asks for no check.
    assert_eq!(rig.close(1).await, None);
    // A later session is a new change: new versions, new ids.
    let later = rig.connect(2).await.expect("online");
    assert_eq!(shape(&later), ("user.online", 1, 3));
    assert_ne!(later.id, online.id);
    let ids: std::collections::BTreeSet<String> =
        rig.sink.events().into_iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 3, "online v1, offline v2, online v3");
    rig.assert_versions_increase();
}

#[tokio::test]
async fn users_and_tenants_have_versions_of_their_own() {
    let rig = rig();
    rig.connect(1).await.expect("online");
    rig.connect(2).await.expect("online");
    let bob = UserId::parse("bob").unwrap();
    let globex = TenantId::parse("globex").unwrap();
    let now = OffsetDateTime::now_utc();
    for (tenant, user) in [(&rig.tenant, &bob), (&globex, &rig.user)] {
        let event = rig
            .presence
            .connected(tenant, user, &connection(9), now)
            .await
            .unwrap()
            .expect("online");
        assert_eq!(shape(&event), ("user.online", 1, 1), "{tenant}/{user}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_flaps_end_in_exactly_one_offline_at_the_last_version() {
    let rig = Arc::new(rig());
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let rig = rig.clone();
            tokio::spawn(async move {
                let mut checks = Vec::new();
                for round in 0..100 {
                    let n = task * 1_000 + round;
                    rig.connect(n).await;
                    checks.extend(rig.close(n).await);
                }
                checks
            })
        })
        .collect();
    let mut checks = Vec::new();
    for task in tasks {
        checks.extend(task.await.unwrap());
    }
    let mut offline = Vec::new();
    for check in &checks {
        offline.extend(rig.check(check).await);
    }
    assert_eq!(offline.len(), 1, "{offline:?}");
    assert_eq!(shape(&offline[0]), ("user.offline", 0, 1_600));
    let online = rig.emitted(EventKind::UserOnline);
    let versions: std::collections::BTreeSet<u64> = online.iter().map(version).collect();
    assert_eq!(versions.len(), online.len(), "each online its own version");
    assert!(versions.iter().all(|v| *v < 1_600));
}
