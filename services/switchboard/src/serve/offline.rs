//! Offline timers (docs/design.md: Events): a user left with no connection is checked
//! `EVENTS_OFFLINE_DELAY_SECS` later ([`PresenceEvents::check_offline`]), and announced
//! `user.offline` only if nothing changed meanwhile.
//!
//! One pending check per (tenant, user): a flap (disconnect, reconnect, disconnect) replaces
//! it, keeping the highest version and the latest due time, so 1,000 flaps hold one entry
//! and no task each. At most `capacity` users wait; one more is checked at once rather than
//! lost (an early `user.offline` when its user reconnects within the delay is announced
//! `user.online` again). At shutdown every pending check runs at once. A failed check is
//! tried again after the delay, [`MAX_CHECK_ATTEMPTS`] times in all.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use switchboard_core::events::{OfflineCheck, PresenceEvents};
use switchboard_model::{TenantId, UserId};
use time::OffsetDateTime;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::events::{Step, STEP_TIMEOUT};
use super::metrics::Metrics;

/// Checks run at once by the timer task (each a conditional write and an enqueue).
const CHECK_CONCURRENCY: usize = 32;
/// Checks taken from the pending set per round of the timer task.
const CHECK_BATCH: usize = 1024;
/// Tries of one check (a failing online store or a full sink), the delay apart.
pub const MAX_CHECK_ATTEMPTS: u32 = 3;
/// The least wait before a failed check is tried again (with a delay of 0).
const MIN_RETRY_WAIT: Duration = Duration::from_secs(1);

type UserKey = (TenantId, UserId);

struct Entry {
    version: u64,
    due: Instant,
    /// The key of this entry in [`Pending::order`].
    order: (Instant, u64),
    attempts: u32,
}

#[derive(Default)]
struct Pending {
    users: HashMap<UserKey, Entry>,
    /// Due time (and a tie-breaking sequence number) → user, earliest first.
    order: BTreeMap<(Instant, u64), UserKey>,
    sequence: u64,
}

impl Pending {
    /// Adds or replaces the check of `key`; `false` when full (nothing changed).
    fn put(
        &mut self,
        key: UserKey,
        version: u64,
        due: Instant,
        attempts: u32,
        capacity: usize,
    ) -> bool {
        self.sequence += 1;
        let order = (due, self.sequence);
        let full = self.users.len() >= capacity;
        match self.users.get_mut(&key) {
            Some(entry) => {
                self.order.remove(&entry.order);
                entry.version = entry.version.max(version);
                entry.due = entry.due.max(due);
                entry.order = (entry.due, order.1);
                entry.attempts = attempts;
                self.order.insert(entry.order, key);
            }
            None if full => return false,
            None => {
                self.order.insert(order, key.clone());
                self.users.insert(
                    key,
                    Entry {
                        version,
                        due,
                        order,
                        attempts,
                    },
                );
            }
        }
        true
    }

    /// Removes and answers up to `limit` checks due at `now` (all of them with `None`).
    fn take_due(&mut self, now: Option<Instant>, limit: usize) -> Vec<(OfflineCheck, u32)> {
        let mut due = Vec::new();
        while due.len() < limit {
            let Some(entry) = self.order.first_entry() else {
                break;
            };
            if now.is_some_and(|now| entry.key().0 > now) {
                break;
            }
            let (tenant, user) = entry.remove();
            if let Some(pending) = self.users.remove(&(tenant.clone(), user.clone())) {
                due.push((
                    OfflineCheck {
                        tenant,
                        user,
                        version: pending.version,
                    },
                    pending.attempts,
                ));
            }
        }
        due
    }

    fn next_due(&self) -> Option<Instant> {
        self.order.keys().next().map(|(due, _)| *due)
    }
}

/// The pending offline checks of this process and the task that runs them.
pub struct OfflineTimers {
    presence: PresenceEvents,
    delay: Duration,
    capacity: usize,
    pending: Mutex<Pending>,
    wake: Notify,
    /// Set at shutdown once the pending checks ran: a check scheduled later runs at once.
    stopped: AtomicBool,
    metrics: Arc<Metrics>,
}

impl OfflineTimers {
    /// Timers running the checks of `presence` `delay` after each disconnect, holding at
    /// most `capacity` users.
    pub fn new(
        presence: PresenceEvents,
        delay: Duration,
        capacity: usize,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(Self {
            presence,
            delay,
            capacity: capacity.max(1),
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
            stopped: AtomicBool::new(false),
            metrics,
        })
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Users waiting for their check.
    pub fn len(&self) -> usize {
        self.pending().users.len()
    }

    /// Schedules `check` after the delay (replacing the user's pending one); when full, or
    /// once stopped, runs it now.
    pub async fn schedule(&self, check: OfflineCheck) {
        if self.stopped.load(Ordering::Acquire) {
            self.run(check, MAX_CHECK_ATTEMPTS - 1).await;
            return;
        }
        let key = (check.tenant.clone(), check.user.clone());
        let due = Instant::now() + self.delay;
        let taken = self
            .pending()
            .put(key, check.version, due, 0, self.capacity);
        if taken {
            self.wake.notify_one();
            return;
        }
        tracing::warn!(
            tenant = %check.tenant,
            user = %check.user,
            capacity = self.capacity,
            "offline timers full: checking at once"
        );
        self.run(check, 0).await;
    }

    /// Runs one check (bounded by [`STEP_TIMEOUT`]); a failure is logged, counted and, up
    /// to [`MAX_CHECK_ATTEMPTS`], scheduled again.
    async fn run(&self, check: OfflineCheck, attempts: u32) {
        let checked = tokio::time::timeout(
            STEP_TIMEOUT,
            self.presence
                .check_offline(&check, OffsetDateTime::now_utc()),
        )
        .await;
        let error = match checked {
            Ok(Ok(_)) => return,
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("timed out after {STEP_TIMEOUT:?}"),
        };
        self.metrics
            .count_presence_error(Step::CheckOffline.as_str());
        let attempts = attempts + 1;
        if attempts >= MAX_CHECK_ATTEMPTS {
            tracing::error!(
                tenant = %check.tenant, user = %check.user, version = check.version, attempts,
                %error, "offline check failed; giving up (no user.offline for this disconnect)"
            );
            return;
        }
        tracing::warn!(
            tenant = %check.tenant, user = %check.user, version = check.version, attempts,
            %error, "offline check failed; trying again after the delay"
        );
        let due = Instant::now() + self.delay.max(MIN_RETRY_WAIT);
        let key = (check.tenant.clone(), check.user.clone());
        // Full: the check is dropped (already logged).
        let _ = self
            .pending()
            .put(key, check.version, due, attempts, self.capacity);
        self.wake.notify_one();
    }

    async fn run_all(&self, checks: Vec<(OfflineCheck, u32)>) {
        futures::stream::iter(checks)
            .for_each_concurrent(CHECK_CONCURRENCY, |(check, attempts)| {
                self.run(check, attempts)
            })
            .await;
    }

    /// The timer task: runs each check when due, until `stop` (then [`Self::drain`]).
    pub async fn run_until(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let due = self.pending().take_due(Some(Instant::now()), CHECK_BATCH);
            if !due.is_empty() {
                self.run_all(due).await;
                continue;
            }
            let next = self.pending().next_due();
            let sleep = async {
                match next {
                    Some(next) => tokio::time::sleep_until(next).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = sleep => {}
                () = self.wake.notified() => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// Runs every pending check now (shutdown, once the sockets are closed and the timer
    /// task stopped), within `within`; a check scheduled afterwards runs at once.
    pub async fn drain(&self, within: Duration) {
        self.stopped.store(true, Ordering::Release);
        let deadline = Instant::now() + within;
        let mut ran = 0usize;
        loop {
            let due = self.pending().take_due(None, CHECK_BATCH);
            if due.is_empty() {
                break;
            }
            ran += due.len();
            // At shutdown a failed check is not tried again.
            let checks = due
                .into_iter()
                .map(|(check, _)| (check, MAX_CHECK_ATTEMPTS - 1));
            if tokio::time::timeout_at(deadline, self.run_all(checks.collect()))
                .await
                .is_err()
            {
                tracing::warn!(
                    left = self.len(),
                    "shutdown: offline checks still running at the drain bound"
                );
                return;
            }
        }
        if ran > 0 {
            tracing::info!(checks = ran, "shutdown: pending offline checks ran");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use switchboard_core::events::{EventKind, MemoryEventSink};
    use switchboard_core::online::MemoryOnlineStore;
    use switchboard_model::ConnectionId;

    use super::*;

    const DELAY: Duration = Duration::from_secs(3);

    /// Timers on memory stores holding at most `capacity` users, and what they emitted.
    fn timers(capacity: usize) -> (Arc<OfflineTimers>, Arc<MemoryEventSink>) {
        let sink = Arc::new(MemoryEventSink::new());
        let presence = PresenceEvents::new(Arc::new(MemoryOnlineStore::new(1000)), sink.clone());
        let metrics = Arc::new(Metrics::new());
        (OfflineTimers::new(presence, DELAY, capacity, metrics), sink)
    }

    fn connection(n: u8) -> ConnectionId {
        ConnectionId::parse(format!("conn{n:012}")).unwrap()
    }

    /// Connects and disconnects `user`'s connection `n`, scheduling its offline check.
    async fn flap(timers: &OfflineTimers, user: &str, n: u8) {
        let (tenant, user) = key(user);
        let presence = &timers.presence;
        let now = OffsetDateTime::now_utc();
        presence
            .connected(&tenant, &user, &connection(n), now)
            .await
            .unwrap();
        if let Some(check) = presence
            .disconnected(&tenant, &user, &connection(n))
            .await
            .unwrap()
        {
            timers.schedule(check).await;
        }
    }

    fn offline(sink: &MemoryEventSink) -> Vec<u64> {
        sink.events()
            .iter()
            .filter(|e| e.kind == EventKind::UserOffline)
            .map(|e| e.data["version"].as_u64().unwrap())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn flaps_inside_the_delay_end_in_one_offline_after_the_last() {
        let (timers, sink) = timers(10);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(timers.clone().run_until(stopped));
        for n in 0..100 {
            flap(&timers, "alice", n).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(timers.len(), 1, "one pending check, however many flaps");
        tokio::time::sleep(DELAY - Duration::from_millis(100)).await;
        assert!(offline(&sink).is_empty(), "not before the delay");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(offline(&sink), vec![200], "the version of the last removal");
        let online = sink
            .events()
            .iter()
            .filter(|e| e.kind == EventKind::UserOnline)
            .count();
        assert_eq!(online, 1, "reconnects inside the delay announce nothing");
        let _ = stop.send(true);
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_set_checks_a_new_user_at_once() {
        let (timers, sink) = timers(1);
        flap(&timers, "alice", 1).await;
        flap(&timers, "bob", 2).await;
        assert_eq!(timers.len(), 1);
        assert_eq!(offline(&sink), vec![2], "bob checked at once, not lost");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_runs_pending_checks_at_once_and_later_ones_immediately() {
        let (timers, sink) = timers(10);
        flap(&timers, "alice", 1).await;
        flap(&timers, "bob", 2).await;
        let started = Instant::now();
        timers.drain(Duration::from_secs(1)).await;
        assert_eq!(offline(&sink), vec![2, 2]);
        assert!(started.elapsed() < DELAY);
        flap(&timers, "carol", 3).await;
        assert_eq!(
            offline(&sink).len(),
            3,
            "after the drain a check runs at once"
        );
    }

    fn key(user: &str) -> UserKey {
        (
            TenantId::parse("acme").unwrap(),
            UserId::parse(user).unwrap(),
        )
    }

    #[test]
    fn a_flap_replaces_the_pending_check_keeping_the_latest() {
        let mut pending = Pending::default();
        let now = Instant::now();
        assert!(pending.put(key("alice"), 2, now + Duration::from_secs(3), 0, 10));
        assert!(pending.put(key("alice"), 4, now + Duration::from_secs(4), 0, 10));
        // A late, older disconnect keeps the newest version and due time.
        assert!(pending.put(key("alice"), 3, now + Duration::from_secs(1), 0, 10));
        assert_eq!(pending.users.len(), 1);
        assert_eq!(pending.order.len(), 1);
        assert!(pending
            .take_due(Some(now + Duration::from_secs(3)), 10)
            .is_empty());
        let due = pending.take_due(Some(now + Duration::from_secs(4)), 10);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0.version, 4);
        assert!(pending.users.is_empty() && pending.order.is_empty());
    }

    #[test]
    fn a_full_set_refuses_a_new_user_but_replaces_a_known_one() {
        let mut pending = Pending::default();
        let due = Instant::now();
        assert!(pending.put(key("a"), 1, due, 0, 2));
        assert!(pending.put(key("b"), 1, due, 0, 2));
        assert!(!pending.put(key("c"), 1, due, 0, 2));
        assert!(pending.put(key("a"), 3, due, 0, 2));
        assert_eq!(pending.take_due(None, 10).len(), 2);
    }
}
