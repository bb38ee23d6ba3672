//! Work items: the publisher's internal queue bodies `{"shard": {...}}` (see docs/design.md:
//! Fan-out at any size).
//!
//! A work item carries the rendered frame of one message (its id and, with history, its
//! cursor are inside the frame) and one unit of delivery work:
//! - [`Work::Page`]: read one roster page of a tenant or scan segment starting at `start`,
//!   enqueue the continuation, post to the page;
//! - [`Work::Connections`]: post to these connections (a retry of failed posts, or the
//!   remainder of a page a publisher had no time left for);
//! - [`Work::Devices`]: read one page of a tenant's devices, enqueue the continuation, send
//!   the message's notification ([`WorkItem::push`]) to the devices of users with no live
//!   connection (docs/design.md: Web Push);
//! - [`Work::Sends`]: send the notification to these devices (a retry of failed sends, or
//!   the remainder of a page a publisher had no time left for).
//!
//! The publish API never accepts these bodies (they are not envelopes); the publisher
//! recognises them by their single top-level key `shard`.

use serde::{Deserialize, Serialize};
use switchboard_model::{within_frame_limit, ConnectionId, TargetKind, TenantId};
use time::OffsetDateTime;

use crate::devices::Device;
use crate::roster::{ConnectionRecord, PageScope};
use crate::webpush::{Urgency, MAX_PLAINTEXT_BYTES};

/// Largest work-item body the publisher enqueues (SQS's classic 256 KiB message limit):
/// connection lists are split so every body stays under it.
pub const MAX_WORK_ITEM_BYTES: usize = 256 * 1024;
/// Delivery attempts of one connection before its retry item is dead-lettered.
pub const MAX_WORK_ATTEMPTS: u32 = 5;
/// Longest page continuation a work item may carry.
const MAX_START_BYTES: usize = 4 * 1024;
/// Most connections one work item may name.
const MAX_ITEM_CONNECTIONS: usize = 10_000;
/// Most devices one work item may name.
const MAX_ITEM_DEVICES: usize = 10_000;

/// Which kind of message a work item delivers (as logged and counted): an envelope's
/// target kind, or `legacy`, a raw body of the original broadcast design
/// (`LEGACY_BROADCAST`). Written as the kind's word (the wire key `targetType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum MessageKind {
    Target(TargetKind),
    Legacy,
}

impl MessageKind {
    /// The word a report gives a body that is neither an envelope, a work item nor a
    /// legacy body: the target type of nothing.
    pub const INVALID: &'static str = "invalid";

    /// The word logged, counted and written: the target kind's, or `legacy`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Target(kind) => kind.as_str(),
            MessageKind::Legacy => "legacy",
        }
    }
}

impl From<TargetKind> for MessageKind {
    fn from(kind: TargetKind) -> Self {
        MessageKind::Target(kind)
    }
}

impl From<MessageKind> for &'static str {
    fn from(kind: MessageKind) -> Self {
        kind.as_str()
    }
}

impl TryFrom<String> for MessageKind {
    type Error = String;
    fn try_from(word: String) -> Result<Self, String> {
        if word == MessageKind::Legacy.as_str() {
            return Ok(MessageKind::Legacy);
        }
        TargetKind::parse(&word)
            .map(MessageKind::Target)
            .ok_or_else(|| format!("unknown target type {word:?}"))
    }
}

/// One connection a work item posts to: enough to post, to remove it on `410`, and to
/// know whether it is still inside the `410` grace period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Recipient {
    pub tenant: TenantId,
    pub connection_id: ConnectionId,
    #[serde(with = "time::serde::rfc3339")]
    pub connected_at: OffsetDateTime,
    /// The roster's `tokenExpiresAt`: a retry item re-checks it before posting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at: Option<i64>,
}

impl From<ConnectionRecord> for Recipient {
    fn from(record: ConnectionRecord) -> Self {
        Self {
            tenant: record.tenant,
            connection_id: record.connection_id,
            connected_at: record.connected_at,
            token_expires_at: record.token_expires_at,
        }
    }
}

/// The delivery work of one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Work {
    /// One page of a tenant or scan segment, from `start` (`None`: the first page).
    Page {
        scope: PageScope,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start: Option<String>,
    },
    /// These connections.
    Connections { connections: Vec<Recipient> },
    /// One page of the message's tenant's devices, from `start` (`None`: the first page).
    Devices {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start: Option<String>,
    },
    /// These devices.
    Sends { devices: Vec<Device> },
}

impl Work {
    /// Whether this work sends the notification (rather than posting the frame).
    pub fn sends(&self) -> bool {
        matches!(self, Work::Devices { .. } | Work::Sends { .. })
    }
}

/// The notification of a message with `push`, as every device of it receives it, and
/// who gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notice {
    /// The JSON the service worker receives (`Push::payload`).
    pub payload: String,
    /// The `TTL` the push service keeps it for (never past the message's `expiresAt`).
    pub ttl_secs: u32,
    pub urgency: Urgency,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// `when: always`: users with a live connection get it too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub always: bool,
}

/// An internal body `{"shard": WorkItem}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkItem {
    /// The message's id (the envelope's, or the queue's id of the original message).
    pub id: String,
    pub target_type: MessageKind,
    /// The message's tenant; `None` for a broadcast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantId>,
    /// The exact text every recipient receives.
    pub frame: String,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<OffsetDateTime>,
    /// 1 for pages and their remainders; one more for each retry of failed posts.
    pub attempt: u32,
    /// How many work items lie between the published message and this one: every item a
    /// unit enqueues (continuation, segment, retry, remainder, dead letter) is one hop
    /// further. Past [`PublisherConfig::max_hops`](super::PublisherConfig::max_hops) the
    /// item is dead-lettered: a chain that long is a runaway (docs/design.md: Fan-out at
    /// any size). Items of an older publisher carry none: 0.
    #[serde(default)]
    pub hops: u32,
    /// The notification, on items that send it ([`Work::sends`]); none on the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<Notice>,
    pub work: Work,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    shard: WorkItem,
}

#[derive(Serialize)]
struct BodyRef<'a> {
    shard: &'a WorkItem,
}

/// Why a `{"shard": …}` body is not a usable work item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid work item: {0}")]
pub struct WorkItemError(String);

impl WorkItem {
    /// `Some` when `body` is a work item (a JSON object whose only key is `shard`), with
    /// the item or why it is unusable; `None` for anything else (an envelope, a raw body).
    pub fn from_body(body: &str) -> Option<Result<WorkItem, WorkItemError>> {
        let trimmed = body.trim_start();
        if !trimmed.starts_with('{') || !trimmed.contains("\"shard\"") {
            return None;
        }
        let value: serde_json::Value = serde_json::from_str(body).ok()?;
        let object = value.as_object()?;
        if object.len() != 1 || !object.contains_key("shard") {
            return None;
        }
        Some(
            serde_json::from_value::<Body>(value)
                .map_err(|e| WorkItemError(e.to_string()))
                .and_then(|b| b.shard.validated()),
        )
    }

    fn validated(self) -> Result<Self, WorkItemError> {
        let invalid = |why: &str| Err(WorkItemError(why.to_string()));
        if self.id.is_empty() {
            return invalid("id is empty");
        }
        if within_frame_limit(&self.frame).is_err() {
            return invalid("frame over the frame limit");
        }
        if self.attempt == 0 {
            return invalid("attempt starts at 1");
        }
        match &self.work {
            Work::Page { scope, start } => {
                scope.validate().map_err(|e| WorkItemError(e.to_string()))?;
                if start.as_ref().is_some_and(|s| s.len() > MAX_START_BYTES) {
                    return invalid("page start too long");
                }
                if let (PageScope::Tenant(scope_tenant), Some(tenant)) = (scope, &self.tenant) {
                    if scope_tenant != tenant {
                        return invalid("page of another tenant than the message's");
                    }
                }
            }
            Work::Connections { connections } => {
                if connections.len() > MAX_ITEM_CONNECTIONS {
                    return invalid("too many connections");
                }
                if let Some(tenant) = &self.tenant {
                    if connections.iter().any(|c| &c.tenant != tenant) {
                        return invalid("connection of another tenant than the message's");
                    }
                }
            }
            Work::Devices { start } => {
                if start.as_ref().is_some_and(|s| s.len() > MAX_START_BYTES) {
                    return invalid("page start too long");
                }
            }
            Work::Sends { devices } => {
                if devices.len() > MAX_ITEM_DEVICES {
                    return invalid("too many devices");
                }
                if devices
                    .iter()
                    .any(|d| Some(&d.tenant) != self.tenant.as_ref())
                {
                    return invalid("device of another tenant than the message's");
                }
            }
        }
        match (&self.push, self.work.sends()) {
            (None, true) => return invalid("sends without a notification"),
            (Some(_), true) if self.tenant.is_none() => return invalid("sends without a tenant"),
            (Some(notice), _) if notice.payload.len() > MAX_PLAINTEXT_BYTES => {
                return invalid("notification over the Web Push limit")
            }
            _ => {}
        }
        Ok(self)
    }

    /// The queue body of this item.
    pub fn to_body(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string(&BodyRef { shard: self }).unwrap_or_default()
    }

    /// The same message with other work (and attempt), at the same hop: the work a unit
    /// runs in place. The notification stays only on work that sends it.
    pub fn with_work(&self, work: Work, attempt: u32) -> Self {
        Self {
            id: self.id.clone(),
            target_type: self.target_type,
            tenant: self.tenant.clone(),
            frame: self.frame.clone(),
            expires_at: self.expires_at,
            attempt,
            hops: self.hops,
            push: self.push.clone().filter(|_| work.sends()),
            work,
        }
    }

    /// The same message and work, carrying `notice` (for the items that send it).
    pub fn with_notice(&self, notice: Notice) -> Self {
        Self {
            push: Some(notice),
            ..self.clone()
        }
    }

    /// The same message with other work (and attempt), one hop further: an item this one
    /// enqueues.
    pub fn next_hop(&self, work: Work, attempt: u32) -> Self {
        Self {
            hops: self.hops.saturating_add(1),
            ..self.with_work(work, attempt)
        }
    }

    /// Bodies of `Connections` items for `recipients` (this message, `attempt`, one hop
    /// further), split so that each stays under [`MAX_WORK_ITEM_BYTES`].
    pub fn connection_bodies(&self, recipients: Vec<Recipient>, attempt: u32) -> Vec<String> {
        self.connection_items(recipients, attempt)
            .into_iter()
            .map(|(_, body)| body)
            .collect()
    }

    /// [`WorkItem::connection_bodies`], each with the number of connections it names.
    pub fn connection_items(
        &self,
        recipients: Vec<Recipient>,
        attempt: u32,
    ) -> Vec<(usize, String)> {
        self.split_items(recipients, MAX_ITEM_CONNECTIONS, attempt, |connections| {
            Work::Connections { connections }
        })
    }

    /// Bodies of `Sends` items for `devices` (this message's notification, `attempt`, one
    /// hop further), split so that each stays under [`MAX_WORK_ITEM_BYTES`], each with the
    /// number of devices it names.
    pub fn send_items(&self, devices: Vec<Device>, attempt: u32) -> Vec<(usize, String)> {
        self.split_items(devices, MAX_ITEM_DEVICES, attempt, |devices| Work::Sends {
            devices,
        })
    }

    /// Items of `work(list)` for chunks of `list` (at most `max` each), split so that each
    /// body stays under [`MAX_WORK_ITEM_BYTES`], each with its chunk's length.
    fn split_items<T: Serialize>(
        &self,
        list: Vec<T>,
        max: usize,
        attempt: u32,
        work: impl Fn(Vec<T>) -> Work,
    ) -> Vec<(usize, String)> {
        let body = |chunk: Vec<T>| (chunk.len(), self.next_hop(work(chunk), attempt).to_body());
        let empty = body(Vec::new()).1.len();
        let budget = MAX_WORK_ITEM_BYTES.saturating_sub(empty).max(1);
        let mut bodies = Vec::new();
        let mut chunk: Vec<T> = Vec::new();
        let mut used = 0;
        for entry in list {
            let size = serde_json::to_string(&entry).map_or(0, |s| s.len()) + 1;
            if !chunk.is_empty() && (used + size > budget || chunk.len() == max) {
                bodies.push(body(std::mem::take(&mut chunk)));
                used = 0;
            }
            used += size;
            chunk.push(entry);
        }
        if !chunk.is_empty() {
            bodies.push(body(chunk));
        }
        bodies
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(work: Work) -> WorkItem {
        WorkItem {
            id: "m-1".into(),
            target_type: TargetKind::Tenant.into(),
            tenant: Some(TenantId::parse("acme").unwrap()),
            frame: r#"{"id":"m-1","data":1}"#.into(),
            expires_at: None,
            attempt: 1,
            hops: 0,
            push: None,
            work,
        }
    }

    fn recipient(i: usize) -> Recipient {
        Recipient {
            tenant: TenantId::parse("acme").unwrap(),
            connection_id: ConnectionId::parse(format!("conn-{i:06}")).unwrap(),
            connected_at: OffsetDateTime::UNIX_EPOCH,
            token_expires_at: None,
        }
    }

    #[test]
    fn a_work_item_round_trips_through_its_body() {
        let page = item(Work::Page {
            scope: PageScope::Tenant(TenantId::parse("acme").unwrap()),
            start: Some("{\"pk\":\"T#acme\",\"sk\":\"C#x\"}".into()),
        });
        let body = page.to_body();
        assert!(body.starts_with("{\"shard\":"));
        assert_eq!(WorkItem::from_body(&body), Some(Ok(page)));
    }

    #[test]
    fn items_of_an_older_publisher_have_hop_zero() {
        let page = item(Work::Page {
            scope: PageScope::Tenant(TenantId::parse("acme").unwrap()),
            start: None,
        });
        let body = page.to_body().replace(",\"hops\":0", "");
        assert!(!body.contains("hops"), "{body}");
        assert_eq!(WorkItem::from_body(&body), Some(Ok(page.clone())));
        let next = page.next_hop(page.work.clone(), 1);
        assert_eq!(next.hops, 1);
        assert_eq!(next.next_hop(page.work.clone(), 1).hops, 2);
    }

    #[test]
    fn work_item_bodies_are_never_envelopes() {
        // So the publish API (which accepts envelopes only) answers 400 to them.
        let body = item(Work::Page {
            scope: PageScope::Tenant(TenantId::parse("acme").unwrap()),
            start: None,
        })
        .to_body();
        let error = switchboard_model::Envelope::parse(body.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("target"), "{error}");
    }

    #[test]
    fn envelopes_and_raw_bodies_are_not_work_items() {
        for body in [
            r#"{"target":{"type":"broadcast"},"data":{"shard":1}}"#,
            r#"{"shard":{},"target":{"type":"broadcast"}}"#,
            "shard",
            r#"["shard"]"#,
        ] {
            assert_eq!(WorkItem::from_body(body), None, "{body}");
        }
    }

    #[test]
    fn malformed_work_items_are_refused_with_a_reason() {
        let cross_tenant = item(Work::Connections {
            connections: vec![Recipient {
                tenant: TenantId::parse("globex").unwrap(),
                ..recipient(1)
            }],
        });
        let mut zero_attempt = item(Work::Connections {
            connections: vec![],
        });
        zero_attempt.attempt = 0;
        let bad_segment = item(Work::Page {
            scope: PageScope::Segment {
                segment: 3,
                total: 2,
            },
            start: None,
        });
        for bad in [cross_tenant, zero_attempt, bad_segment] {
            assert!(matches!(WorkItem::from_body(&bad.to_body()), Some(Err(_))));
        }
        assert!(matches!(
            WorkItem::from_body(r#"{"shard":{"id":"x"}}"#),
            Some(Err(_))
        ));
    }

    fn notice() -> Notice {
        Notice {
            payload: format!("{{\"id\":\"m-1\",\"body\":\"{}\"}}", "x".repeat(3_900)),
            ttl_secs: 60,
            urgency: Urgency::High,
            topic: Some("m-1".into()),
            always: false,
        }
    }

    fn device(i: usize) -> Device {
        let endpoint = format!("https://push.example/{i:06}/{}", "e".repeat(300));
        serde_json::from_value(serde_json::json!({
            "tenant": "acme", "user": format!("u{i}"),
            "id": crate::devices::DeviceId::of_endpoint(&endpoint),
            "subscription": {"endpoint": endpoint,
                             "keys": {"p256dh": "B".repeat(87), "auth": "A".repeat(22)}},
            "registeredAt": "2026-01-01T00:00:00Z", "expiresAt": 2_000_000_000,
        }))
        .unwrap()
    }

    #[test]
    fn only_items_that_send_carry_the_notification_and_they_must() {
        let page = item(Work::Devices { start: None }).with_notice(notice());
        assert_eq!(WorkItem::from_body(&page.to_body()), Some(Ok(page.clone())));
        let roster = page.next_hop(
            Work::Page {
                scope: PageScope::Tenant(TenantId::parse("acme").unwrap()),
                start: None,
            },
            1,
        );
        assert_eq!(roster.push, None, "a roster page carries none");
        let bare = item(Work::Sends { devices: vec![] });
        assert!(matches!(WorkItem::from_body(&bare.to_body()), Some(Err(_))));
        let mut foreign = page.with_work(
            Work::Sends {
                devices: vec![device(1)],
            },
            2,
        );
        foreign.tenant = Some(TenantId::parse("globex").unwrap());
        assert!(matches!(
            WorkItem::from_body(&foreign.to_body()),
            Some(Err(_))
        ));
    }

    #[test]
    fn device_lists_are_split_under_the_body_limit() {
        let page = item(Work::Devices { start: None }).with_notice(notice());
        let bodies = page.send_items((0..1_000).map(device).collect(), 3);
        assert!(bodies.len() > 1);
        let mut seen = 0;
        for (count, body) in &bodies {
            assert!(body.len() <= MAX_WORK_ITEM_BYTES, "{}", body.len());
            let Some(Ok(parsed)) = WorkItem::from_body(body) else {
                panic!("not a work item")
            };
            assert_eq!((parsed.attempt, parsed.push.as_ref()), (3, Some(&notice())));
            let Work::Sends { devices } = parsed.work else {
                panic!("not a sends item")
            };
            assert_eq!(devices.len(), *count);
            seen += count;
        }
        assert_eq!(seen, 1_000);
    }

    #[test]
    fn connection_lists_are_split_under_the_body_limit() {
        let mut big = item(Work::Page {
            scope: PageScope::Segment {
                segment: 0,
                total: 1,
            },
            start: None,
        });
        big.frame = format!("{{\"id\":\"m-1\",\"data\":\"{}\"}}", "x".repeat(120_000));
        let recipients: Vec<Recipient> = (0..3_000).map(recipient).collect();
        let bodies = big.connection_bodies(recipients, 2);
        assert!(bodies.len() > 1);
        let mut seen = 0;
        for body in &bodies {
            assert!(body.len() <= MAX_WORK_ITEM_BYTES, "{}", body.len());
            let Some(Ok(parsed)) = WorkItem::from_body(body) else {
                panic!("not a work item")
            };
            assert_eq!(parsed.attempt, 2);
            assert_eq!(parsed.hops, big.hops + 1, "one hop further");
            let Work::Connections { connections } = parsed.work else {
                panic!("not a connections item")
            };
            seen += connections.len();
        }
        assert_eq!(seen, 3_000);
    }
}
