//! `SqsQueue`: the queue ports on SQS. Pointed at the envelope queue (`QUEUE_URL`) it is
//! the publish API's [`MessageQueue`]; pointed at the dead-letter queue (`DLQ_URL`) it is
//! the publisher's [`DeadLetterSink`]: the body goes verbatim, the reason travels in the
//! message attributes `error`, `receiveCount` and `messageId`.
//!
//! Every message carries a `MessageGroupId`: the group of what its body addresses
//! ([`message_group_id`]: the tenant, `*` for a broadcast or an unreadable body). On a standard
//! queue that is all SQS fair queues need (docs/design.md: AWS deployment).

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::operation::send_message::builders::SendMessageFluentBuilder;
use aws_sdk_sqs::operation::send_message::SendMessageError;
use aws_sdk_sqs::types::MessageAttributeValue;
use aws_sdk_sqs::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;
use sha2::{Digest, Sha256};
use std::time::Duration;

use switchboard_core::queue::{
    address, DeadLetter, DeadLetterSink, MessageQueue, QueueError, MAX_ENQUEUE_DELAY,
};

/// Longest `error` attribute sent (SQS limits a whole message, attributes included, to
/// 256 KiB; the reason is for people, the body is what matters).
pub const MAX_ERROR_ATTRIBUTE_CHARS: usize = 4_096;

/// Longest `MessageGroupId` SQS accepts.
pub const MAX_GROUP_ID_CHARS: usize = 128;

/// The group of a body that addresses nothing readable (a malformed body on its way to the
/// dead-letter queue): the broadcasts' group. Such a body belongs to no tenant, as in the
/// dead-letter listing; one group (not one per message, which SQS would treat as a tenant
/// each) lets a flood of them be seen as one noisy neighbour.
const NO_TENANT_GROUP: &str = "*";

/// The `MessageGroupId` of `body`: its [`address`]'s group (the tenant, `*` for a
/// broadcast), `*` when it addresses nothing. SQS takes 1–128 characters of ASCII letters,
/// digits and punctuation; a tenant id outside that (spaces, non-ASCII: ids allow both) is
/// sent as `#` + the first 16 bytes of its SHA-256 in hex. Tenant ids never hold `#`, so a
/// digest never equals another tenant's id.
pub fn message_group_id(body: &str) -> String {
    let address = address(body);
    let group = address.as_ref().map_or(NO_TENANT_GROUP, |a| a.group());
    if group.len() <= MAX_GROUP_ID_CHARS && group.bytes().all(|b| b.is_ascii_graphic()) {
        group.to_string()
    } else {
        let digest = Sha256::digest(group.as_bytes());
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("#{hex}")
    }
}

/// Sends to one SQS queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// A queue client from the shared configuration (`AWS_ENDPOINT_URL_SQS` is honoured by
    /// `aws-config`).
    pub fn from_sdk_config(sdk: &SdkConfig, queue_url: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), queue_url)
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

fn string_attribute(value: impl Into<String>) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| QueueError::Rejected(format!("message attribute: {e}")))
}

fn number_attribute(value: u32) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type("Number")
        .string_value(value.to_string())
        .build()
        .map_err(|e| QueueError::Rejected(format!("message attribute: {e}")))
}

/// Keeps at most `max` characters (SQS attribute values are text; never split a char).
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Maps a `SendMessage` failure: a body the queue refuses (invalid contents, any other
/// 4xx about the request) is `Rejected` — the publish API answers 400, retrying cannot
/// help; a queue this side cannot reach or use (missing, denied, throttled, 5xx,
/// transport) is `Unavailable` — 503, the caller may retry once it is fixed.
pub fn map_send_error(error: SdkError<SendMessageError, HttpResponse>) -> QueueError {
    let detail = format!("SendMessage: {}", DisplayErrorContext(&error));
    match &error {
        SdkError::ServiceError(service) => {
            let err = service.err();
            let status = service.raw().status().as_u16();
            if err.is_request_throttled()
                || err.is_kms_throttled()
                || err.is_queue_does_not_exist()
                || err.is_invalid_address()
                || err.is_invalid_security()
                || err.is_unsupported_operation()
                // The same kinds when the SDK does not model the answer (error codes, not
                // message text).
                || matches!(
                    err.code(),
                    Some("QueueDoesNotExist" | "AWS.SimpleQueueService.NonExistentQueue")
                )
            {
                QueueError::Unavailable(detail)
            } else if err.is_invalid_message_contents() {
                QueueError::Rejected(detail)
            } else if status == 429 || status >= 500 {
                QueueError::Unavailable(detail)
            } else if (400..500).contains(&status) {
                QueueError::Rejected(detail)
            } else {
                QueueError::Unavailable(detail)
            }
        }
        SdkError::ConstructionFailure(_) => QueueError::Rejected(detail),
        _ => QueueError::Unavailable(detail),
    }
}

impl SqsQueue {
    /// The `SendMessage` request both enqueues make: the body, its FIFO message group and
    /// the `envelopeId` attribute.
    fn send_message(&self, id: &str, body: &str) -> Result<SendMessageFluentBuilder, QueueError> {
        Ok(self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_group_id(message_group_id(body))
            .message_attributes("envelopeId", string_attribute(id)?))
    }
}

#[async_trait]
impl MessageQueue for SqsQueue {
    async fn enqueue(&self, id: &str, body: &str) -> Result<(), QueueError> {
        self.send_message(id, body)?
            .send()
            .await
            .map_err(map_send_error)?;
        Ok(())
    }

    async fn enqueue_delayed(
        &self,
        id: &str,
        body: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let seconds = delay.min(MAX_ENQUEUE_DELAY).as_secs();
        self.send_message(id, body)?
            .delay_seconds(i32::try_from(seconds).unwrap_or(0))
            .send()
            .await
            .map_err(map_send_error)?;
        Ok(())
    }
}

#[async_trait]
impl DeadLetterSink for SqsQueue {
    async fn dead_letter(&self, letter: DeadLetter) -> Result<(), QueueError> {
        let error = if letter.error.trim().is_empty() {
            "unknown".to_string()
        } else {
            truncate(&letter.error, MAX_ERROR_ATTRIBUTE_CHARS)
        };
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_group_id(message_group_id(&letter.body))
            .message_body(letter.body)
            .message_attributes("error", string_attribute(error)?)
            .message_attributes("receiveCount", number_attribute(letter.receive_count)?);
        if !letter.message_id.is_empty() {
            request = request.message_attributes("messageId", string_attribute(letter.message_id)?);
        }
        request.send().await.map_err(map_send_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééé", 2), "éé…");
        assert_eq!(truncate("", 2), "");
    }

    #[test]
    fn group_is_the_tenant_or_star_and_always_fits_sqs() {
        let users = |tenant: &str| {
            serde_json::json!({"target": {"type": "users", "tenant": tenant, "users": ["u"]},
                               "data": 1})
            .to_string()
        };
        assert_eq!(message_group_id(&users("acme")), "acme");
        assert_eq!(message_group_id(&users("a.b-c_d:e/f~!")), "a.b-c_d:e/f~!");
        let long = "x".repeat(128);
        assert_eq!(message_group_id(&users(&long)), long);
        let broadcast = r#"{"target":{"type":"broadcast"},"data":1}"#;
        assert_eq!(message_group_id(broadcast), "*");
        assert_eq!(message_group_id("not json {"), "*");
        // Ids SQS would refuse are digested: stable, distinct, within the rules.
        for odd in ["acme corp", "écluse", &"é".repeat(128)] {
            let group = message_group_id(&users(odd));
            assert_eq!(group, message_group_id(&users(odd)));
            assert!(group.starts_with('#') && group.len() == 33, "{group}");
            assert!(group.bytes().all(|b| b.is_ascii_graphic()));
        }
        assert_ne!(
            message_group_id(&users("acme corp")),
            message_group_id(&users("acme  corp"))
        );
    }
}
