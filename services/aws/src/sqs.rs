//! `SqsQueue`: the queue ports on SQS. Pointed at the envelope queue (`QUEUE_URL`) it is
//! the publish API's [`MessageQueue`]; pointed at the dead-letter queue (`DLQ_URL`) it is
//! the publisher's [`DeadLetterSink`]: the body goes verbatim, the reason travels in the
//! message attributes `error`, `receiveCount` and `messageId`.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::operation::send_message::SendMessageError;
use aws_sdk_sqs::types::MessageAttributeValue;
use aws_sdk_sqs::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;
use std::time::Duration;

use switchboard_core::queue::{
    DeadLetter, DeadLetterSink, MessageQueue, QueueError, MAX_ENQUEUE_DELAY,
};

/// Longest `error` attribute sent (SQS limits a whole message, attributes included, to
/// 256 KiB; the reason is for people, the body is what matters).
pub const MAX_ERROR_ATTRIBUTE_CHARS: usize = 4_096;

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

#[async_trait]
impl MessageQueue for SqsQueue {
    async fn enqueue(&self, id: &str, body: &str) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes("envelopeId", string_attribute(id)?)
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
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes("envelopeId", string_attribute(id)?)
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
}
