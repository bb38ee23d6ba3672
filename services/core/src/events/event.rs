//! The event shape (docs/design.md: Events):
//! `{"id","type","timestamp","data":{…}}`, the same as a Standard Webhooks payload and an
//! EventBridge event's `detail`.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use switchboard_model::{TenantId, UserId};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The three kinds of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    UserOnline,
    UserOffline,
    MessageSettled,
}

impl EventKind {
    /// The `type` (and EventBridge `detail-type`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::UserOnline => "user.online",
            EventKind::UserOffline => "user.offline",
            EventKind::MessageSettled => "message.settled",
        }
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `evt_` + 22 base64url characters, derived from what the event is about, so the
    /// same change emitted twice has the same id.
    pub id: String,
    pub kind: EventKind,
    /// The tenant it belongs to (`None`: a broadcast's `message.settled`), for routing
    /// (per-tenant webhooks) and shares.
    pub tenant: Option<TenantId>,
    pub timestamp: OffsetDateTime,
    pub data: Value,
}

fn event_id(parts: &[&str]) -> String {
    use base64::Engine;
    let mut digest = Sha256::new();
    for part in parts {
        digest.update(part.as_bytes());
        digest.update([0u8]);
    }
    let bytes = digest.finalize();
    format!(
        "evt_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[..16])
    )
}

impl Event {
    /// `user.online` or `user.offline` of one user at `version` (after the change),
    /// `connections` live after it.
    pub fn user(
        kind: EventKind,
        tenant: &TenantId,
        user: &UserId,
        connections: u64,
        version: u64,
        now: OffsetDateTime,
    ) -> Self {
        let version_text = version.to_string();
        Self {
            id: event_id(&[kind.as_str(), tenant.as_str(), user.as_str(), &version_text]),
            kind,
            tenant: Some(tenant.clone()),
            timestamp: now,
            data: json!({
                "tenant": tenant,
                "user": user,
                "connections": connections,
                "version": version,
            }),
        }
    }

    /// `message.settled`: `receipt` is the receipt's JSON (`Receipt::to_json`) at its
    /// final status; one id per message (tenant or `*`, and message id).
    pub fn message_settled(
        tenant: Option<&TenantId>,
        message_id: &str,
        receipt: Value,
        now: OffsetDateTime,
    ) -> Self {
        let scope = tenant.map_or("*", TenantId::as_str);
        Self {
            id: event_id(&[EventKind::MessageSettled.as_str(), scope, message_id]),
            kind: EventKind::MessageSettled,
            tenant: tenant.cloned(),
            timestamp: now,
            data: receipt,
        }
    }

    /// The JSON sent: `{"id","type","timestamp","data"}`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "type": self.kind.as_str(),
            "timestamp": self.timestamp.format(&Rfc3339).unwrap_or_default(),
            "data": self.data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_change_has_the_same_id_and_another_change_another() {
        let acme = TenantId::parse("acme").unwrap();
        let alice = UserId::parse("alice").unwrap();
        let now = OffsetDateTime::now_utc();
        let a = Event::user(EventKind::UserOnline, &acme, &alice, 1, 1, now);
        let b = Event::user(EventKind::UserOnline, &acme, &alice, 1, 1, now);
        let c = Event::user(EventKind::UserOnline, &acme, &alice, 2, 2, now);
        let d = Event::user(EventKind::UserOffline, &acme, &alice, 0, 1, now);
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
        assert_ne!(a.id, d.id);
        assert_eq!(a.id.len(), 4 + 22);
        let json = a.to_json();
        assert_eq!(json["type"], "user.online");
        assert_eq!(json["data"]["version"], 1);
        assert_eq!(json["data"]["connections"], 1);
    }
}
