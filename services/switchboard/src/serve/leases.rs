//! Leases (`--roster dynamodb` with events on; docs/design.md: Events): a `serve` that
//! dies (`kill -9`, a crash, a lost machine) cannot remove its connections, so another
//! process does. Each process renews its lease (its [`InstanceTag`], the prefix of its
//! connection ids) every [`RENEW_EVERY`] for [`LEASE_FOR`]; every [`RENEW_EVERY`] it also
//! lists the expired leases and claims each (a conditional delete: one process wins), and
//! the winner walks the roster, removing every connection of that tag and running the
//! presence steps for it — so each user of the dead process ends in one `user.offline`
//! after the usual delay. At shutdown, with its connections all removed, a process gives
//! its lease up.

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::events::PresenceEvents;
use switchboard_core::leases::{Lease, LeaseStore};
use switchboard_core::roster::{PageScope, RosterStore};
use time::OffsetDateTime;
use tokio::sync::{watch, Mutex};

use super::events::{Step, STEP_TIMEOUT};
use super::metrics::Metrics;
use super::offline::OfflineTimers;
use super::registry::InstanceTag;

/// How often a process renews its lease and looks for expired ones.
pub const RENEW_EVERY: Duration = Duration::from_secs(5);
/// How long a renewal holds: three renewals may fail before another process sweeps.
pub const LEASE_FOR: Duration = Duration::from_secs(15);
/// Roster records read per page of a sweep.
const SWEEP_PAGE: usize = 1000;

/// What one sweep of a dead process's connections did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Swept {
    pages: usize,
    seen: usize,
    removed: usize,
    checks: usize,
    failed: usize,
}

/// This process's lease and the sweeps of others'.
pub struct LeaseKeeper {
    pub store: Arc<dyn LeaseStore>,
    /// This process's instance tag: its lease's name.
    pub tag: InstanceTag,
    pub roster: Arc<dyn RosterStore>,
    pub presence: PresenceEvents,
    pub timers: Arc<OfflineTimers>,
    pub metrics: Arc<Metrics>,
    /// The `until` of this process's last successful renewal (what giving up deletes;
    /// `None` at first).
    pub held: Mutex<Option<i64>>,
}

fn epoch_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn now_ms() -> i64 {
    epoch_ms(OffsetDateTime::now_utc())
}

impl LeaseKeeper {
    /// Renews this process's lease for [`LEASE_FOR`] (bounded; a failure is logged).
    pub async fn renew(&self) {
        let until = now_ms().saturating_add(LEASE_FOR.as_millis() as i64);
        let renewed =
            tokio::time::timeout(STEP_TIMEOUT, self.store.renew(self.tag.as_str(), until));
        match renewed.await {
            Ok(Ok(())) => *self.held.lock().await = Some(until),
            Ok(Err(error)) => {
                tracing::warn!(tag = self.tag.as_str(), %error, "lease renewal failed")
            }
            Err(_) => tracing::warn!(tag = self.tag.as_str(), "lease renewal timed out"),
        }
    }

    /// The lease task until `stop`: renewals every [`RENEW_EVERY`], and sweeps of the
    /// expired leases of others every [`RENEW_EVERY`] — apart, so a long sweep never delays
    /// a renewal.
    pub async fn run_until(self: Arc<Self>, stop: watch::Receiver<bool>) {
        let renewing = self.every(stop.clone(), || self.renew());
        let sweeping = self.every(stop, || self.sweep_expired());
        tokio::join!(renewing, sweeping);
    }

    /// Runs `work` every [`RENEW_EVERY`] (the first after one period: start-up renewed
    /// already) until `stop`.
    async fn every<F: std::future::Future<Output = ()>>(
        &self,
        mut stop: watch::Receiver<bool>,
        work: impl Fn() -> F,
    ) {
        let mut ticks = tokio::time::interval(RENEW_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            tokio::select! {
                () = work() => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// Claims each expired lease of another process and sweeps the ones won, in one walk
    /// of the roster.
    async fn sweep_expired(&self) {
        let expired = tokio::time::timeout(STEP_TIMEOUT, self.store.expired(now_ms())).await;
        let expired = match expired {
            Ok(Ok(expired)) => expired,
            Ok(Err(error)) => {
                tracing::warn!(%error, "listing expired leases failed");
                return;
            }
            Err(_) => {
                tracing::warn!("listing expired leases timed out");
                return;
            }
        };
        let mut won = Vec::new();
        for lease in expired {
            // Our own lease expired (renewals failed): our connections are alive.
            if lease.tag == self.tag.as_str() {
                continue;
            }
            match tokio::time::timeout(STEP_TIMEOUT, self.store.claim(&lease)).await {
                Ok(Ok(true)) => won.push(lease),
                Ok(Ok(false)) => {}
                Ok(Err(error)) => {
                    tracing::warn!(tag = %lease.tag, %error, "claiming an expired lease failed")
                }
                Err(_) => tracing::warn!(tag = %lease.tag, "claiming an expired lease timed out"),
            }
        }
        if !won.is_empty() {
            self.sweep(&won).await;
        }
    }

    /// Removes every roster item of the processes of `leases` and runs the presence steps
    /// for each. A sweep that fails part-way puts the leases back, expired, for the next.
    async fn sweep(&self, leases: &[Lease]) {
        let tags: Vec<&str> = leases.iter().map(|lease| lease.tag.as_str()).collect();
        let owners: Vec<InstanceTag> = tags.iter().map(|tag| InstanceTag::of_lease(tag)).collect();
        let swept = self.walk(&owners).await;
        tracing::info!(
            tags = ?tags,
            pages = swept.pages,
            seen = swept.seen,
            removed = swept.removed,
            offline_checks = swept.checks,
            failed = swept.failed,
            "swept the connections of processes whose lease expired"
        );
        if swept.failed == 0 {
            return;
        }
        self.metrics.count_presence_error(Step::Sweep.as_str());
        for lease in leases {
            let put_back = self.store.renew(&lease.tag, lease.until_ms);
            if let Err(error) = tokio::time::timeout(STEP_TIMEOUT, put_back)
                .await
                .map_err(|_| "timed out".to_string())
                .and_then(|put| put.map_err(|e| e.to_string()))
            {
                tracing::error!(tag = %lease.tag, %error, "could not put back an unfinished sweep's lease");
            }
        }
    }

    async fn walk(&self, owners: &[InstanceTag]) -> Swept {
        let scope = PageScope::Segment {
            segment: 0,
            total: 1,
        };
        let mut swept = Swept::default();
        let mut start: Option<String> = None;
        loop {
            let page = self.roster.list_page(&scope, start.as_deref(), SWEEP_PAGE);
            let page = match tokio::time::timeout(STEP_TIMEOUT, page).await {
                Ok(Ok(page)) => page,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "sweep: reading the roster failed");
                    swept.failed += 1;
                    return swept;
                }
                Err(_) => {
                    tracing::warn!("sweep: reading the roster timed out");
                    swept.failed += 1;
                    return swept;
                }
            };
            swept.pages += 1;
            for record in page
                .records
                .iter()
                .filter(|r| owners.iter().any(|owner| owner.owns(&r.connection_id)))
            {
                swept.seen += 1;
                // Presence first: a sweep that fails after it finds the item again next
                // time (each step is idempotent); the other order could lose the offline.
                let step =
                    self.presence
                        .disconnected(&record.tenant, &record.user, &record.connection_id);
                match tokio::time::timeout(STEP_TIMEOUT, step).await {
                    Ok(Ok(Some(check))) => {
                        swept.checks += 1;
                        self.timers.schedule(check).await;
                    }
                    Ok(Ok(None)) => {}
                    _ => {
                        swept.failed += 1;
                        continue;
                    }
                }
                let removed = self.roster.remove(&record.tenant, &record.connection_id);
                match tokio::time::timeout(STEP_TIMEOUT, removed).await {
                    Ok(Ok(())) => swept.removed += 1,
                    _ => swept.failed += 1,
                }
            }
            match page.next {
                Some(next) => start = Some(next),
                None => return swept,
            }
        }
    }

    /// Deletes this process's lease (shutdown, its connections all removed), so no
    /// process sweeps a roster with nothing of it.
    pub async fn give_up(&self) {
        let Some(until) = *self.held.lock().await else {
            return;
        };
        let lease = Lease {
            tag: self.tag.as_str().to_string(),
            until_ms: until,
        };
        match tokio::time::timeout(STEP_TIMEOUT, self.store.claim(&lease)).await {
            Ok(Ok(_)) => tracing::info!(tag = self.tag.as_str(), "lease given up"),
            Ok(Err(error)) => {
                tracing::warn!(tag = self.tag.as_str(), %error, "giving up the lease failed; it expires")
            }
            Err(_) => tracing::warn!(
                tag = self.tag.as_str(),
                "giving up the lease timed out; it expires"
            ),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use switchboard_core::events::{EventKind, MemoryEventSink};
    use switchboard_core::leases::MemoryLeaseStore;
    use switchboard_core::online::MemoryOnlineStore;
    use switchboard_core::roster::{ConnectionRecord, MemoryRosterStore};
    use switchboard_model::{TenantId, UserId};

    use super::*;
    use crate::serve::gateway::new_connection_id;

    /// A keeper of tag `ours` on memory stores, and what its presence steps emitted.
    fn keeper(ours: InstanceTag) -> (LeaseKeeper, Arc<MemoryEventSink>) {
        let sink = Arc::new(MemoryEventSink::new());
        let presence = PresenceEvents::new(Arc::new(MemoryOnlineStore::new(1000)), sink.clone());
        let metrics = Arc::new(Metrics::new());
        let timers = OfflineTimers::new(
            presence.clone(),
            Duration::from_secs(3),
            100,
            metrics.clone(),
        );
        let keeper = LeaseKeeper {
            store: Arc::new(MemoryLeaseStore::new()),
            tag: ours,
            roster: Arc::new(MemoryRosterStore::new()),
            presence,
            timers,
            metrics,
            held: Default::default(),
        };
        (keeper, sink)
    }

    /// Records and announces online `users` connections of the process tagged `tag`.
    async fn connect(keeper: &LeaseKeeper, tag: &InstanceTag, users: &[&str]) {
        let tenant = TenantId::parse("acme").unwrap();
        let now = OffsetDateTime::now_utc();
        for user in users {
            let user = UserId::parse(*user).unwrap();
            let id = new_connection_id(tag);
            let record =
                ConnectionRecord::new(id.clone(), tenant.clone(), user.clone(), vec![], now, 3600);
            keeper.roster.put(&record).await.unwrap();
            keeper
                .presence
                .connected(&tenant, &user, &id, now)
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn an_expired_lease_is_swept_once_and_its_users_wait_for_offline() {
        let ours = InstanceTag::random();
        let dead = InstanceTag::random();
        let (keeper, sink) = keeper(ours.clone());
        connect(&keeper, &ours, &["alice", "bob"]).await;
        connect(&keeper, &dead, &["carol", "dave", "alice"]).await;
        keeper.renew().await;
        keeper
            .store
            .renew(dead.as_str(), now_ms() - 1)
            .await
            .unwrap();

        keeper.sweep_expired().await;
        let left = keeper.roster.list_all().await.unwrap();
        assert_eq!(left.len(), 2, "only our connections are left: {left:?}");
        assert!(left.iter().all(|r| ours.owns(&r.connection_id)));
        // carol and dave have no connection left; alice still has ours.
        assert_eq!(keeper.timers.len(), 2);
        assert!(
            keeper.store.expired(now_ms()).await.unwrap().is_empty(),
            "claimed"
        );
        // A second sweep finds nothing to claim.
        keeper.sweep_expired().await;
        assert_eq!(keeper.timers.len(), 2);
        keeper.timers.drain(Duration::from_secs(1)).await;
        let offline: Vec<String> = sink
            .events()
            .iter()
            .filter(|e| e.kind == EventKind::UserOffline)
            .map(|e| e.data["user"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(offline.len(), 2, "{offline:?}");
        assert!(offline.contains(&"carol".into()) && offline.contains(&"dave".into()));
    }

    #[tokio::test]
    async fn our_own_expired_lease_is_never_swept_and_giving_up_deletes_it() {
        let ours = InstanceTag::random();
        let (keeper, _) = keeper(ours.clone());
        connect(&keeper, &ours, &["alice"]).await;
        keeper
            .store
            .renew(ours.as_str(), now_ms() - 1)
            .await
            .unwrap();
        keeper.sweep_expired().await;
        assert_eq!(keeper.roster.list_all().await.unwrap().len(), 1);
        keeper.renew().await;
        keeper.give_up().await;
        let far = now_ms() + 3_600_000;
        assert!(
            keeper.store.expired(far).await.unwrap().is_empty(),
            "deleted"
        );
    }
}
