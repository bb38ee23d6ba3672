//! Fan-out of one frame to the matched connections: bounded concurrency, retries with
//! backoff, `Gone` cleanup.

use futures::{stream, StreamExt};

use super::{MessageReport, Outcome, Publisher};
use crate::pusher::{Frame, PushError};
use crate::roster::ConnectionRecord;

/// What happened to one post, after retries.
enum PostResult {
    Delivered { retries: u32, throttled: u32 },
    Gone { retries: u32, throttled: u32 },
    Failed { retries: u32, throttled: u32, error: PushError },
}

impl Publisher {
    pub(super) async fn fan_out(
        &self,
        records: Vec<ConnectionRecord>,
        frame: &str,
        mut report: MessageReport,
    ) -> MessageReport {
        report.matched = records.len();
        // Encoded once per message; every post shares it.
        let frame = &Frame::from(frame);
        let mut results = stream::iter(records)
            .map(|record| async move { self.post_with_retries(record, frame).await })
            .buffer_unordered(self.config.fanout_concurrency);
        let mut last_error = None;
        while let Some(result) = results.next().await {
            match result {
                PostResult::Delivered { retries, throttled } => {
                    report.delivered += 1;
                    report.retries += retries;
                    report.throttled += throttled;
                }
                PostResult::Gone { retries, throttled } => {
                    report.gone += 1;
                    report.retries += retries;
                    report.throttled += throttled;
                }
                PostResult::Failed {
                    retries,
                    throttled,
                    error,
                } => {
                    report.failed += 1;
                    report.retries += retries;
                    report.throttled += throttled;
                    last_error = Some(error);
                }
            }
        }
        if let Some(error) = last_error {
            report.outcome = Outcome::Retry;
            report.error = Some(format!("{} post(s) failed; last: {error}", report.failed));
        } else {
            report.outcome = Outcome::Delivered;
        }
        report
    }

    async fn post_with_retries(&self, record: ConnectionRecord, frame: &Frame) -> PostResult {
        let policy = &self.config.retry;
        let mut retries = 0;
        let mut throttled = 0;
        loop {
            let result = self.pusher.push(&record.connection_id, frame).await;
            if result == Err(PushError::Throttled) {
                throttled += 1;
            }
            match result {
                Ok(()) => return PostResult::Delivered { retries, throttled },
                Err(PushError::Gone) => {
                    if let Err(error) = self
                        .roster
                        .remove(&record.tenant, &record.connection_id)
                        .await
                    {
                        tracing::warn!(
                            connection_id = %record.connection_id,
                            tenant = %record.tenant,
                            %error,
                            "could not remove gone connection from the roster"
                        );
                    }
                    return PostResult::Gone { retries, throttled };
                }
                Err(error) if error.is_retryable() && retries + 1 < policy.max_attempts => {
                    retries += 1;
                    tokio::time::sleep(policy.delay(retries)).await;
                }
                Err(error) => {
                    return PostResult::Failed {
                        retries,
                        throttled,
                        error,
                    }
                }
            }
        }
    }
}
