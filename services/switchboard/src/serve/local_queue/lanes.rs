//! What the queue holds waiting and the order it hands it out in: ordering groups (one
//! message of a group at a time, in accepted order) served round-robin across tenant
//! groups, one message per turn, so a tenant with a backlog waits behind its own messages
//! only. With fairness off every group shares one lane: accepted order (FIFO), as before
//! fairness existed (the isolation benchmark's comparison run).

use std::collections::{HashMap, HashSet, VecDeque};

use switchboard_core::publisher::MessageKind;
use switchboard_core::queue::{self, InboundMessage};
use switchboard_model::{TargetKind, TenantId};

/// Where a queued message belongs, read once from its body (`queue::address`) when it is
/// enqueued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The ordering group: `=<target type>:<tenant or *>` for envelopes and the page items
    /// that continue them (every message of a history stream shares one); `#<message id>`
    /// (no ordering) for `connections` targets, retries of failed posts and bodies with no
    /// address.
    pub order: String,
    /// The tenant group: the tenant, `*` for a broadcast, `#<message id>` for a body with
    /// no address. The unit of fairness and of the queue share.
    pub group: String,
    /// The tenant, recorded in a dead letter.
    pub tenant: Option<TenantId>,
    /// A work item that sends Web Push notifications: run beside the batches that post,
    /// never in their slots (a slow push service must not hold back frames).
    pub sends: bool,
}

impl Route {
    pub fn of(body: &str, message_id: &str) -> Route {
        let unique = || format!("#{message_id}");
        match queue::address(body) {
            Some(address) => Route {
                order: if address.ordered
                    && address.kind != MessageKind::Target(TargetKind::Connections)
                {
                    format!("={}:{}", address.kind.as_str(), address.group())
                } else {
                    unique()
                },
                group: address.group().to_string(),
                sends: address.sends,
                tenant: address.tenant,
            },
            None => Route {
                order: unique(),
                group: unique(),
                tenant: None,
                sends: false,
            },
        }
    }
}

/// A message with its route.
#[derive(Debug)]
pub struct Queued {
    pub route: Route,
    pub message: InboundMessage,
}

/// The waiting messages and the turn order; the share counts of everything held.
#[derive(Default)]
pub struct Lanes {
    /// Round-robin across tenant groups (false: one lane, accepted order).
    fair: bool,
    /// Waiting messages per ordering group, oldest first (no empty entries).
    waiting: HashMap<String, VecDeque<Queued>>,
    /// Messages in `waiting`.
    waiting_count: usize,
    /// Per lane: its ordering groups with a waiting message and none in flight, each once,
    /// in the order they became runnable (no empty entries).
    runnable: HashMap<String, VecDeque<String>>,
    /// The lanes in `runnable`, each once: the next turn first.
    turns: VecDeque<String>,
    /// Ordering groups with a message in flight.
    busy: HashSet<String>,
    /// Messages held (waiting, delayed or in flight) per tenant group (no zero entries).
    held: HashMap<String, usize>,
}

impl Lanes {
    pub fn new(fair: bool) -> Self {
        Self {
            fair,
            ..Self::default()
        }
    }

    /// The lane of a tenant group.
    fn lane<'a>(&self, group: &'a str) -> &'a str {
        if self.fair {
            group
        } else {
            ""
        }
    }

    pub fn waiting_count(&self) -> usize {
        self.waiting_count
    }

    /// Messages `group` holds (waiting, delayed or in flight).
    pub fn held(&self, group: &str) -> usize {
        self.held.get(group).copied().unwrap_or(0)
    }

    /// Counts a message entering the queue against its tenant group's share.
    pub fn admit(&mut self, route: &Route) {
        *self.held.entry(route.group.clone()).or_default() += 1;
    }

    /// A message left the queue (settled or dead-lettered).
    pub fn forget(&mut self, route: &Route) {
        if let Some(count) = self.held.get_mut(&route.group) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.held.remove(&route.group);
            }
        }
    }

    /// Appends a message to its ordering group.
    pub fn push(&mut self, queued: Queued) {
        let order = queued.route.order.clone();
        let group = queued.route.group.clone();
        let queue = self.waiting.entry(order.clone()).or_default();
        let was_empty = queue.is_empty();
        queue.push_back(queued);
        self.waiting_count += 1;
        if was_empty && !self.busy.contains(&order) {
            self.runnable_again(order, &group);
        }
    }

    fn runnable_again(&mut self, order: String, group: &str) {
        let lane = self.lane(group);
        match self.runnable.get_mut(lane) {
            Some(orders) => orders.push_back(order),
            None => {
                self.runnable
                    .insert(lane.to_string(), VecDeque::from([order]));
                self.turns.push_back(lane.to_string());
            }
        }
    }

    /// Takes the oldest message of the next runnable ordering group of the lane whose
    /// turn it is; the group is busy until `release`.
    pub fn take(&mut self) -> Option<Queued> {
        while let Some(lane) = self.turns.pop_front() {
            let Some(orders) = self.runnable.get_mut(&lane) else {
                continue;
            };
            let order = orders.pop_front();
            if orders.is_empty() {
                self.runnable.remove(&lane);
            } else {
                self.turns.push_back(lane);
            }
            let Some(order) = order else {
                continue;
            };
            let Some(queue) = self.waiting.get_mut(&order) else {
                continue;
            };
            let Some(queued) = queue.pop_front() else {
                self.waiting.remove(&order);
                continue;
            };
            if queue.is_empty() {
                self.waiting.remove(&order);
            }
            self.waiting_count = self.waiting_count.saturating_sub(1);
            self.busy.insert(order);
            return Some(queued);
        }
        None
    }

    /// Ends an ordering group's turn: its next message (if any) becomes runnable.
    pub fn release(&mut self, route: &Route) {
        self.busy.remove(&route.order);
        if self.waiting.contains_key(&route.order) {
            self.runnable_again(route.order.clone(), &route.group);
        }
    }

    /// Every waiting message.
    pub fn waiting(&self) -> impl Iterator<Item = &Queued> {
        self.waiting.values().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(body: &str, n: u32) -> Queued {
        let message_id = format!("q{n}");
        Queued {
            route: Route::of(body, &message_id),
            message: InboundMessage {
                message_id,
                body: body.to_string(),
                receive_count: 0,
            },
        }
    }

    fn to_connection(tenant: &str, n: u32) -> String {
        format!(
            r#"{{"id":"{tenant}{n}","target":{{"type":"connections","tenant":"{tenant}","connectionIds":["c"]}},"data":{n}}}"#
        )
    }

    fn to_users(tenant: &str, n: u32) -> String {
        format!(
            r#"{{"id":"{tenant}{n}","target":{{"type":"users","tenant":"{tenant}","users":["u"]}},"data":{n}}}"#
        )
    }

    #[test]
    fn routes_follow_streams_and_tenants() {
        let route = |body: &str| Route::of(body, "q1");
        let users = route(&to_users("acme", 1));
        assert_eq!(
            (users.order.as_str(), users.group.as_str()),
            ("=users:acme", "acme")
        );
        assert_eq!(users.tenant.as_ref().map(TenantId::as_str), Some("acme"));
        let tenant = route(r#"{"target":{"type":"tenant","tenant":"acme"},"data":1}"#);
        assert_eq!(tenant.order, "=tenant:acme");
        let broadcast = route(r#"{"target":{"type":"broadcast"},"data":1}"#);
        assert_eq!(
            (broadcast.order.as_str(), broadcast.group.as_str()),
            ("=broadcast:*", "*")
        );
        assert_eq!(broadcast.tenant, None);
        let direct = route(&to_connection("acme", 1));
        assert_eq!(
            (direct.order.as_str(), direct.group.as_str()),
            ("#q1", "acme")
        );
        for unreadable in ["not json", "[1,2]"] {
            let route = route(unreadable);
            assert_eq!((route.order.as_str(), route.group.as_str()), ("#q1", "#q1"));
        }
        let page = r#"{"shard":{"id":"m","targetType":"tenant","tenant":"acme","frame":"{}","attempt":1,"work":{"page":{"scope":{"tenant":"acme"}}}}}"#;
        assert_eq!(route(page).order, "=tenant:acme");
        let retry = r#"{"shard":{"id":"m","targetType":"tenant","tenant":"acme","frame":"{}","attempt":2,"work":{"connections":{"connections":[]}}}}"#;
        assert_eq!(
            (route(retry).order.as_str(), route(retry).group.as_str()),
            ("#q1", "acme")
        );
    }

    /// Tenant A has 1,000 messages waiting (each its own ordering group), then B enqueues
    /// one: the first batch of 10 it takes.
    fn first_batch_after_a_backlog(fair: bool) -> Vec<String> {
        let mut lanes = Lanes::new(fair);
        for n in 0..1000 {
            lanes.push(queued(&to_connection("a", n), n));
        }
        lanes.push(queued(&to_connection("b", 0), 1000));
        (0..10)
            .map_while(|_| lanes.take())
            .map(|q| q.route.group)
            .collect()
    }

    #[test]
    fn a_quiet_tenant_is_served_within_the_first_batch_behind_a_backlog() {
        assert!(first_batch_after_a_backlog(true).contains(&"b".to_string()));
        assert!(!first_batch_after_a_backlog(false).contains(&"b".to_string()));
    }

    #[test]
    fn ordering_groups_keep_their_order_and_one_in_flight_under_fairness() {
        for fair in [true, false] {
            let mut lanes = Lanes::new(fair);
            for n in 0..5 {
                lanes.push(queued(&to_users("a", n), n));
            }
            lanes.push(queued(&to_users("b", 9), 9));
            let mut handed = Vec::new();
            while handed.len() < 6 {
                let mut batch = Vec::new();
                while let Some(queued) = lanes.take() {
                    batch.push(queued);
                }
                assert!(batch.len() <= 2, "one per ordering group at a time");
                for queued in batch {
                    lanes.release(&queued.route);
                    handed.push(queued.message.message_id);
                }
            }
            let of_a: Vec<&String> = handed.iter().filter(|id| *id != "q9").collect();
            assert_eq!(of_a, ["q0", "q1", "q2", "q3", "q4"], "fair: {fair}");
        }
    }

    #[test]
    fn held_counts_follow_admit_and_forget() {
        let mut lanes = Lanes::new(true);
        let message = queued(&to_users("a", 1), 1);
        lanes.admit(&message.route);
        lanes.admit(&message.route);
        assert_eq!(lanes.held("a"), 2);
        lanes.forget(&message.route);
        lanes.forget(&message.route);
        lanes.forget(&message.route);
        assert_eq!(lanes.held("a"), 0);
        assert!(lanes.held.is_empty());
    }
}
