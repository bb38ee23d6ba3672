//! Posting one frame to a list of connections: bounded concurrency, the process-wide rate
//! limit, retries with backoff, `410` cleanup (outside the grace period), and the deadline.
//! What could not be delivered comes back sorted by what should happen to it next.

use std::num::NonZeroU32;
use std::time::Duration;

use futures::{stream, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use time::OffsetDateTime;
use tokio::time::Instant;

use super::work::Recipient;
use super::Publisher;
use crate::poster::{Frame, PostError};
use crate::roster::token_expired;

/// The process's post rate (`fanout_rate`): a token bucket, and a fair queue in front of it.
///
/// Every post waits here (up to `fanout_concurrency` per message, for every message of the
/// process). Waiting on the bucket itself, all of them would wake at each token and all but
/// one would sleep again: 64 wake-ups per post at the default, CPU a small function has
/// little of, taken from the posts themselves. In the queue (tokio's `Mutex` is FIFO) they
/// take tokens in turn and only the first sleeps on the bucket.
pub(super) struct Limiter {
    bucket: DefaultDirectRateLimiter,
    turn: tokio::sync::Mutex<()>,
}

impl Limiter {
    pub(super) fn new(rate: NonZeroU32) -> Self {
        // The bucket holds a tenth of a second of posts: several publishers starting at once
        // must not overshoot their shared budget by a full second's worth each.
        let burst = NonZeroU32::new(rate.get() / 10).unwrap_or(NonZeroU32::MIN);
        Self {
            bucket: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Waits for this caller's turn, then for a token.
    pub(super) async fn until_ready(&self) {
        let _turn = self.turn.lock().await;
        self.bucket.until_ready().await;
    }
}

/// What happened to the posts of one list of connections.
#[derive(Debug, Default)]
pub(super) struct Delivery {
    pub delivered: usize,
    pub gone: usize,
    pub retries: u32,
    pub throttled: u32,
    /// Still failing after the in-process retries, retrying may help: a retry work item.
    pub failed: Vec<(Recipient, PostError)>,
    /// Retrying cannot help (413, other 4xx): dead-lettered at once.
    pub fatal: Vec<(Recipient, PostError)>,
    /// Not posted because the deadline came near.
    pub unstarted: Vec<Recipient>,
}

/// What happened to one post, after retries.
enum PostResult {
    Delivered,
    Gone,
    Failed(PostError),
    Unstarted,
}

struct Post {
    recipient: Recipient,
    result: PostResult,
    retries: u32,
    throttled: u32,
}

impl Publisher {
    pub(super) async fn deliver(
        &self,
        recipients: Vec<Recipient>,
        frame: &Frame,
        deadline: Option<Instant>,
    ) -> Delivery {
        let mut posts = stream::iter(recipients)
            .map(|recipient| self.post(recipient, frame, deadline))
            .buffer_unordered(self.config.fanout_concurrency);
        let mut delivery = Delivery::default();
        while let Some(post) = posts.next().await {
            delivery.retries += post.retries;
            delivery.throttled += post.throttled;
            match post.result {
                PostResult::Delivered => delivery.delivered += 1,
                PostResult::Gone => delivery.gone += 1,
                PostResult::Failed(error) if error.is_retryable() => {
                    delivery.failed.push((post.recipient, error));
                }
                PostResult::Failed(error) => delivery.fatal.push((post.recipient, error)),
                PostResult::Unstarted => delivery.unstarted.push(post.recipient),
            }
        }
        delivery
    }

    /// Whether no post may start any more: less than the margin left before `deadline`.
    pub(super) fn out_of_time(&self, deadline: Option<Instant>, after: Duration) -> bool {
        deadline.is_some_and(|d| Instant::now() + after + self.config.deadline_margin >= d)
    }

    /// Waits for the rate limiter (if any); `false` when the deadline's margin came first:
    /// then no call may start. The wait itself ends at the margin.
    async fn wait_for_limiter(&self, deadline: Option<Instant>) -> bool {
        let Some(limiter) = &self.limiter else {
            return !self.out_of_time(deadline, Duration::ZERO);
        };
        match deadline {
            Some(deadline) => {
                let last_start = deadline
                    .checked_sub(self.config.deadline_margin)
                    .unwrap_or_else(Instant::now);
                tokio::time::timeout_at(last_start, limiter.until_ready())
                    .await
                    .is_ok()
                    && !self.out_of_time(Some(deadline), Duration::ZERO)
            }
            None => {
                limiter.until_ready().await;
                true
            }
        }
    }

    async fn post(&self, recipient: Recipient, frame: &Frame, deadline: Option<Instant>) -> Post {
        let mut post = Post {
            result: PostResult::Unstarted,
            recipient,
            retries: 0,
            throttled: 0,
        };
        if self.out_of_time(deadline, Duration::ZERO) {
            return post;
        }
        let policy = &self.config.retry;
        let young =
            OffsetDateTime::now_utc() - post.recipient.connected_at < self.config.gone_grace;
        let mut last_error = None;
        loop {
            if !self.wait_for_limiter(deadline).await {
                post.result = match last_error {
                    None => PostResult::Unstarted,
                    Some(PostError::Gone) => PostResult::Gone,
                    Some(error) => PostResult::Failed(error),
                };
                return post;
            }
            let result = self.poster.post(&post.recipient.connection_id, frame).await;
            let error = match result {
                Ok(()) => {
                    post.result = PostResult::Delivered;
                    return post;
                }
                Err(PostError::Throttled) => {
                    post.throttled += 1;
                    PostError::Throttled
                }
                // Past the grace period a 410 means the connection is gone for good.
                Err(PostError::Gone) if !young => {
                    self.remove_gone(&post.recipient).await;
                    post.result = PostResult::Gone;
                    return post;
                }
                Err(error) => error,
            };
            // A young connection's 410 is API Gateway still completing its handshake:
            // worth another try, and never a roster delete.
            let retryable = error.is_retryable() || error == PostError::Gone;
            let delay = policy.delay(post.retries + 1);
            if !retryable
                || post.retries + 1 >= policy.max_attempts
                || self.out_of_time(deadline, delay)
            {
                post.result = match error {
                    PostError::Gone => PostResult::Gone,
                    error => PostResult::Failed(error),
                };
                return post;
            }
            post.retries += 1;
            last_error = Some(error);
            tokio::time::sleep(delay).await;
        }
    }

    /// Splits off the recipients whose token expired (past `tokenExpiresAt` plus the
    /// leeway); records without one never expire this way.
    pub(super) fn split_expired_tokens(
        &self,
        recipients: Vec<Recipient>,
    ) -> (Vec<Recipient>, Vec<Recipient>) {
        let now = OffsetDateTime::now_utc();
        recipients
            .into_iter()
            .partition(|r| !token_expired(r.token_expires_at, now, self.config.token_leeway_secs))
    }

    /// Ends connections whose token expired: closes each (API Gateway's
    /// `DeleteConnection`, the local server's 4001) and then removes it from the roster.
    /// A close that fails, or that the deadline leaves no time for, keeps the roster item,
    /// so a later message tries again.
    pub(super) async fn end_expired(&self, expired: Vec<Recipient>, deadline: Option<Instant>) {
        stream::iter(expired)
            .for_each_concurrent(self.config.fanout_concurrency, |recipient| async move {
                if !self.wait_for_limiter(deadline).await {
                    return;
                }
                match self.poster.close(&recipient.connection_id).await {
                    Ok(()) => {
                        tracing::info!(
                            connection_id = %recipient.connection_id,
                            tenant = %recipient.tenant,
                            token_expires_at = recipient.token_expires_at,
                            "connection with an expired token closed"
                        );
                        self.remove_gone(&recipient).await;
                    }
                    Err(error) => tracing::warn!(
                        connection_id = %recipient.connection_id,
                        tenant = %recipient.tenant,
                        %error,
                        "could not close a connection with an expired token"
                    ),
                }
            })
            .await;
    }

    async fn remove_gone(&self, recipient: &Recipient) {
        if let Err(error) = self
            .roster
            .remove(&recipient.tenant, &recipient.connection_id)
            .await
        {
            tracing::warn!(
                connection_id = %recipient.connection_id,
                tenant = %recipient.tenant,
                %error,
                "could not remove gone connection from the roster"
            );
        }
    }
}
