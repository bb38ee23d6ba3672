//! The queue ports: where the publish API enqueues envelopes (`MessageQueue`) and where
//! the publisher sends bodies it can never deliver (`DeadLetterSink`). SQS in AWS; an
//! in-process queue in the `switchboard` binary.

use std::time::Duration;

use async_trait::async_trait;
use switchboard_model::{Envelope, TenantId};

use crate::publisher::{MessageKind, Work, WorkItem};

/// A message as a queue hands it to the publisher (the SQS record's essentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// The queue's message id (SQS `messageId`): the id used when the envelope has none,
    /// and the id reported in `batchItemFailures`.
    pub message_id: String,
    pub body: String,
    /// How many times the queue has handed this message out, this time included.
    pub receive_count: u32,
}

/// A body the publisher gives up on, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub message_id: String,
    pub body: String,
    pub error: String,
    pub receive_count: u32,
    /// The tenant the body is addressed to, recorded when the letter is written (the
    /// dead-letter list's per-tenant share and listing); `None` for a broadcast or a body
    /// whose tenant is unknown.
    pub tenant: Option<TenantId>,
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("message rejected by the queue: {0}")]
    Rejected(String),
    /// The queue is at capacity, or not taking messages (shutting down): retry after
    /// `retry_after_secs`.
    #[error("queue full: {reason}")]
    Full {
        reason: String,
        retry_after_secs: u64,
    },
}

/// Enqueues envelopes for the publisher.
#[async_trait]
pub trait MessageQueue: Send + Sync {
    /// Enqueues one body; `id` is the message id the envelope carries.
    async fn enqueue(&self, id: &str, body: &str) -> Result<(), QueueError>;
    /// Enqueues one body that becomes visible after `delay` (SQS `DelaySeconds`, at most
    /// [`MAX_ENQUEUE_DELAY`]; longer delays are capped). The publisher's retry work items.
    async fn enqueue_delayed(
        &self,
        id: &str,
        body: &str,
        delay: Duration,
    ) -> Result<(), QueueError>;
}

/// The longest delay a queue supports (SQS: 15 minutes).
pub const MAX_ENQUEUE_DELAY: Duration = Duration::from_secs(900);

/// Receives bodies that must never be retried (malformed, unauthorised shape) so they are
/// neither redelivered forever nor silently dropped.
#[async_trait]
pub trait DeadLetterSink: Send + Sync {
    async fn dead_letter(&self, letter: DeadLetter) -> Result<(), QueueError>;
}

/// What a queue body addresses: the one reading of a body's target shared by the
/// in-process queue's ordering groups and tenant shares, the dead-letter list's tenant and
/// SQS's `MessageGroupId` (docs/design.md: Tenants).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyAddress {
    /// The message's target type (`legacy` for a work item of a raw legacy broadcast).
    pub kind: MessageKind,
    /// The message's tenant; `None` for a broadcast.
    pub tenant: Option<TenantId>,
    /// Whether the body is an envelope or a page work item (part of its stream's order);
    /// `false` for retries of failed posts.
    pub ordered: bool,
    /// Whether the body is a work item that sends Web Push notifications (a device page
    /// or named devices) rather than posting frames.
    pub sends: bool,
}

impl BodyAddress {
    /// The fair-queuing group of the body: its tenant, `*` for a broadcast (SQS
    /// `MessageGroupId`; the in-process queue's tenant share).
    pub fn group(&self) -> &str {
        tenant_group(self.tenant.as_ref())
    }
}

/// The group of a tenant: its id, `*` for no tenant (a broadcast).
pub fn tenant_group(tenant: Option<&TenantId>) -> &str {
    tenant.map_or("*", TenantId::as_str)
}

/// What `body` addresses: an envelope's target or a work item's message; `None` for a body
/// that is neither (malformed, or a raw legacy broadcast).
pub fn address(body: &str) -> Option<BodyAddress> {
    if let Some(item) = WorkItem::from_body(body) {
        let item = item.ok()?;
        return Some(BodyAddress {
            kind: item.target_type,
            ordered: matches!(item.work, Work::Page { .. }),
            sends: item.work.sends(),
            tenant: item.tenant,
        });
    }
    let envelope = Envelope::parse(body.as_bytes()).ok()?;
    Some(BodyAddress {
        kind: envelope.target.kind().into(),
        tenant: envelope.target.tenant().cloned(),
        ordered: true,
        sends: false,
    })
}

#[cfg(test)]
mod tests {
    use switchboard_model::TargetKind;

    use super::*;

    #[test]
    fn envelopes_and_work_items_name_their_tenant_and_order() {
        let envelope = r#"{"target":{"type":"users","tenant":"acme","users":["u"]},"data":1}"#;
        let address = address(envelope).unwrap();
        assert_eq!(address.kind, TargetKind::Users.into());
        assert_eq!(address.group(), "acme");
        assert!(address.ordered);
        let broadcast = super::address(r#"{"target":{"type":"broadcast"},"data":1}"#).unwrap();
        assert_eq!(
            (broadcast.tenant, broadcast.kind),
            (None, TargetKind::Broadcast.into())
        );
        assert_eq!(super::address("not json"), None);
        assert_eq!(super::address(r#"{"shard":{"id":""}}"#), None);
    }

    /// The publisher records a letter's tenant when it writes it: the envelope's or the
    /// work item's; none for a broadcast or a body it cannot read.
    #[tokio::test]
    async fn dead_letters_carry_the_tenant_they_were_written_for() {
        use std::sync::Arc;

        use crate::publisher::{Publisher, PublisherConfig, PublisherPorts};
        use crate::roster::MemoryRosterStore;
        use crate::testkit::{RecordingQueue, ScriptedPoster};

        let dlq = Arc::new(RecordingQueue::new());
        let publisher = Publisher::new(
            PublisherPorts {
                roster: Arc::new(MemoryRosterStore::new()),
                poster: Arc::new(ScriptedPoster::new()),
                dead_letters: dlq.clone(),
                work_queue: Arc::new(RecordingQueue::new()),
            },
            PublisherConfig::default(),
        );
        let big = "x".repeat(switchboard_model::MAX_FRAME_BYTES);
        let bodies = [
            format!(r#"{{"target":{{"type":"tenant","tenant":"acme"}},"data":"{big}"}}"#),
            format!(r#"{{"target":{{"type":"broadcast"}},"data":"{big}"}}"#),
            "not json".to_string(),
        ];
        let batch: Vec<InboundMessage> = bodies
            .iter()
            .enumerate()
            .map(|(n, body)| InboundMessage {
                message_id: format!("m{n}"),
                body: body.clone(),
                receive_count: 1,
            })
            .collect();
        publisher.handle_batch(&batch).await;
        let mut tenants: Vec<(String, Option<String>)> = dlq
            .letters()
            .into_iter()
            .map(|l| (l.message_id, l.tenant.map(String::from)))
            .collect();
        tenants.sort();
        assert_eq!(
            tenants,
            [
                ("m0".to_string(), Some("acme".to_string())),
                ("m1".to_string(), None),
                ("m2".to_string(), None)
            ]
        );
    }
}
