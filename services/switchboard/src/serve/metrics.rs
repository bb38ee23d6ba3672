//! Prometheus metrics of the local service (`GET /metrics`). Labels are bounded sets
//! (outcomes, results): no per-tenant or per-connection label.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use switchboard_core::publisher::MessageReport;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

/// Every metric the service exports.
pub struct Metrics {
    registry: Registry,
    pub connections: Gauge,
    pub connections_opened: Counter,
    pub handshakes_refused: Counter,
    pub tenant_settings_invalid: Counter,
    pub usage_errors: Counter,
    pub messages: Family<OutcomeLabel, Counter>,
    pub posts: Family<ResultLabel, Counter>,
    pub sends: Family<ResultLabel, Counter>,
    pub fanout_seconds: Histogram,
    pub enqueued: Counter,
    pub redeliveries: Counter,
    pub queue_depth: Gauge,
    pub dead_letters: Gauge,
    pub dead_letters_dropped: Counter,
    pub publishes_refused: Counter,
    pub connections_refused: Family<ReasonLabel, Counter>,
    pub foreign_skipped: Counter,
    pub slow_consumers_closed: Counter,
    pub connections_closed: Family<ReasonLabel, Counter>,
    // Listeners (serve/http_server.rs): open HTTP connections and those refused at accept.
    pub listener_connections: Family<ListenerLabel, Gauge>,
    pub listener_connections_refused: Family<ListenerReasonLabel, Counter>,
    // Events (serve/webhooks): taken by the sink, by type; deliveries by result; queued.
    pub events: Family<TypeLabel, Counter>,
    pub webhook_deliveries: Family<ResultLabel, Counter>,
    pub webhook_queue_events: Gauge,
    // Presence steps that failed or timed out (serve/events.rs), by step.
    pub presence_errors: Family<StepLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabel {
    pub step: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabel {
    pub listener: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerReasonLabel {
    pub listener: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let connections = Gauge::default();
        registry.register(
            "connections",
            "Live WebSocket connections",
            connections.clone(),
        );
        let connections_opened = Counter::default();
        registry.register(
            "connections_opened",
            "WebSocket connections accepted",
            connections_opened.clone(),
        );
        let handshakes_refused = Counter::default();
        registry.register(
            "handshakes_refused",
            "WebSocket handshakes refused with 401",
            handshakes_refused.clone(),
        );
        let tenant_settings_invalid = Counter::default();
        registry.register(
            "tenant_settings_invalid",
            "Re-reads of TENANTS_FILE refused as invalid (the settings in force stayed)",
            tenant_settings_invalid.clone(),
        );
        let usage_errors = Counter::default();
        registry.register(
            "usage_errors",
            "Usage counts that could not be recorded (usage then undercounts; delivery is unaffected)",
            usage_errors.clone(),
        );
        let messages = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "messages",
            "Messages and work items processed by the publisher, by outcome (delivered, deferred to a retry or remainder item, retry, expired, dead_lettered)",
            messages.clone(),
        );
        let posts = Family::<ResultLabel, Counter>::default();
        registry.register(
            "posts",
            "Posts to connections, by result (delivered, gone, failed, expired_token: not posted, closed)",
            posts.clone(),
        );
        let sends = Family::<ResultLabel, Counter>::default();
        registry.register(
            "sends",
            "Web Push sends to devices, by result (pushed: accepted by the push service, failed: for good, pruned: the device was gone (404/410) and is deleted)",
            sends.clone(),
        );
        let fanout_seconds = Histogram::new([
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]);
        registry.register(
            "fanout_duration_seconds",
            "Time to process one message (lookup and fan-out)",
            fanout_seconds.clone(),
        );
        let enqueued = Counter::default();
        registry.register(
            "enqueued",
            "Messages accepted onto the in-process queue",
            enqueued.clone(),
        );
        let redeliveries = Counter::default();
        registry.register(
            "redeliveries",
            "Messages put back on the queue after a failed attempt",
            redeliveries.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Messages waiting on the in-process queue (visible or delayed)",
            queue_depth.clone(),
        );
        let dead_letters = Gauge::default();
        registry.register(
            "dead_letters",
            "Messages in the dead-letter list",
            dead_letters.clone(),
        );
        let dead_letters_dropped = Counter::default();
        registry.register(
            "dead_letters_dropped",
            "Oldest dead letters dropped because the list was at DEAD_LETTER_CAPACITY",
            dead_letters_dropped.clone(),
        );
        let publishes_refused = Counter::default();
        registry.register(
            "publishes_refused",
            "Publishes answered 503 because the queue was at QUEUE_CAPACITY",
            publishes_refused.clone(),
        );
        let connections_refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "connections_refused",
            "Handshakes refused, by reason (max_connections, max_per_user, tenant_share, tenant_limit, tenant_suspended, url_too_long, invalid_host)",
            connections_refused.clone(),
        );
        let foreign_skipped = Counter::default();
        registry.register(
            "foreign_connections_skipped",
            "Posts skipped because the roster item belongs to another switchboard process",
            foreign_skipped.clone(),
        );
        let slow_consumers_closed = Counter::default();
        registry.register(
            "slow_consumers_closed",
            "Sockets closed (1008) because their outbox filled or a write timed out",
            slow_consumers_closed.clone(),
        );
        let connections_closed = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "connections_closed",
            "Sockets closed for what their client sent, by reason (action_rate: 1008 past ACTIONS_PER_SECOND/ACTION_BURST; message_too_big: 1009)",
            connections_closed.clone(),
        );
        let listener_connections = Family::<ListenerLabel, Gauge>::default();
        registry.register(
            "listener_connections",
            "Open HTTP connections by listener (public, management); a WebSocket leaves it once upgraded",
            listener_connections.clone(),
        );
        let listener_connections_refused = Family::<ListenerReasonLabel, Counter>::default();
        registry.register(
            "listener_connections_refused",
            "TCP connections closed at accept, by listener and reason (listener_max: LISTENER_MAX_CONNECTIONS; address_max: LISTENER_MAX_CONNECTIONS_PER_ADDRESS)",
            listener_connections_refused.clone(),
        );
        let events = Family::<TypeLabel, Counter>::default();
        registry.register(
            "events",
            "Events given to the webhook sink, by type (user.online, user.offline, message.settled)",
            events.clone(),
        );
        let webhook_deliveries = Family::<ResultLabel, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook events by result (delivered: 2xx; retried: an attempt failed, retried later; expired: not delivered within WEBHOOK_RETRY_HOURS; disabled: dropped because the endpoint answered 410; dropped: refused by the full queue or the tenant's share of it)",
            webhook_deliveries.clone(),
        );
        let webhook_queue_events = Gauge::default();
        registry.register(
            "webhook_queue_events",
            "Webhook events waiting or in flight (WEBHOOK_QUEUE_CAPACITY at most)",
            webhook_queue_events.clone(),
        );
        let presence_errors = Family::<StepLabel, Counter>::default();
        registry.register(
            "presence_errors",
            "Presence steps that failed or timed out, by step (connected, disconnected, \
             check_offline, sweep); the connection is served as usual, the event may be missing",
            presence_errors.clone(),
        );
        Self {
            registry,
            presence_errors,
            events,
            webhook_deliveries,
            webhook_queue_events,
            listener_connections,
            listener_connections_refused,
            connections_closed,
            foreign_skipped,
            slow_consumers_closed,
            dead_letters_dropped,
            publishes_refused,
            connections_refused,
            connections,
            connections_opened,
            handshakes_refused,
            tenant_settings_invalid,
            usage_errors,
            messages,
            posts,
            sends,
            fanout_seconds,
            enqueued,
            redeliveries,
            queue_depth,
            dead_letters,
        }
    }

    /// Brings `switchboard_usage_errors_total` up to `errors`, the usage handle's own count.
    pub fn catch_up_usage_errors(&self, errors: u64) {
        let seen = self.usage_errors.get();
        if errors > seen {
            self.usage_errors.inc_by(errors - seen);
        }
    }

    /// Counts a connection closed at accept.
    pub fn refuse_listener_connection(&self, listener: &'static str, reason: &'static str) {
        self.listener_connections_refused
            .get_or_create(&ListenerReasonLabel { listener, reason })
            .inc();
    }

    /// Counts an event given to the webhook sink.
    pub fn count_event(&self, r#type: &'static str) {
        self.events.get_or_create(&TypeLabel { r#type }).inc();
    }

    /// Counts `count` webhook events of `result` (delivered, retried, expired, disabled,
    /// dropped).
    pub fn count_webhook_delivery(&self, result: &'static str, count: u64) {
        if count > 0 {
            self.webhook_deliveries
                .get_or_create(&ResultLabel { result })
                .inc_by(count);
        }
    }

    /// Counts a presence step that failed or timed out (`connected`, `disconnected`,
    /// `check_offline`, `sweep`).
    pub fn count_presence_error(&self, step: &'static str) {
        self.presence_errors
            .get_or_create(&StepLabel { step })
            .inc();
    }

    /// Records one processed message.
    pub fn record(&self, report: &MessageReport) {
        self.messages
            .get_or_create(&OutcomeLabel {
                outcome: report.outcome.as_str(),
            })
            .inc();
        add_by_result(
            &self.posts,
            [
                ("delivered", report.delivered),
                ("gone", report.gone),
                ("failed", report.failed),
                ("expired_token", report.expired_tokens),
            ],
        );
        add_by_result(
            &self.sends,
            [
                ("pushed", report.pushed),
                ("failed", report.push_failed),
                ("pruned", report.devices_pruned),
            ],
        );
        self.fanout_seconds.observe(report.duration.as_secs_f64());
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// Adds each non-zero count to its `result` of `family`.
fn add_by_result<const N: usize>(
    family: &Family<ResultLabel, Counter>,
    counts: [(&'static str, usize); N],
) {
    for (result, count) in counts {
        if count > 0 {
            family
                .get_or_create(&ResultLabel { result })
                .inc_by(u64::try_from(count).unwrap_or(u64::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_are_counted_by_result() {
        let message = switchboard_core::queue::InboundMessage {
            message_id: "q-1".into(),
            body: String::new(),
            receive_count: 1,
        };
        let mut report = MessageReport::new(&message, "m-1".into(), "users");
        (report.pushed, report.push_failed, report.devices_pruned) = (4, 1, 2);
        let metrics = Metrics::new();
        metrics.record(&report);
        let text = metrics.render();
        for line in [
            r#"switchboard_sends_total{result="pushed"} 4"#,
            r#"switchboard_sends_total{result="failed"} 1"#,
            r#"switchboard_sends_total{result="pruned"} 2"#,
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn events_and_webhook_deliveries_are_exported() {
        let metrics = Metrics::new();
        metrics.count_event("user.online");
        metrics.count_webhook_delivery("delivered", 2);
        metrics.count_webhook_delivery("expired", 0);
        metrics.webhook_queue_events.set(3);
        let text = metrics.render();
        for line in [
            r#"switchboard_events_total{type="user.online"} 1"#,
            r#"switchboard_webhook_deliveries_total{result="delivered"} 2"#,
            "switchboard_webhook_queue_events 3",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert!(!text.contains(r#"result="expired""#), "{text}");
    }

    #[test]
    fn usage_errors_catch_up_with_the_usage_handles_count() {
        let metrics = Metrics::new();
        metrics.catch_up_usage_errors(3);
        metrics.catch_up_usage_errors(3);
        metrics.catch_up_usage_errors(5);
        assert!(
            metrics
                .render()
                .contains("switchboard_usage_errors_total 5"),
            "{}",
            metrics.render()
        );
    }
}
