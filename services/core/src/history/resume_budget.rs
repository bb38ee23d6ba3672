//! Posting a resume's frames one by one within a time budget, as the AWS `$default` route
//! does (docs/design.md: History and resume).
//!
//! On AWS the missed frames go out through the management API while API Gateway waits for
//! the route's answer, and an API Gateway WebSocket integration times out after 29 s, a
//! quota that cannot be raised ("Integration timeout: 50 milliseconds - 29 seconds for all
//! integration types … Can be increased: No",
//! <https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html>).
//! So posting ends by the sooner of [`RESUME_BUDGET`] after the invocation started and the
//! invocation's own deadline; no attempt (nor retry) starts unless one whole attempt
//! (`attempt_timeout`) still fits. Throttled, failed and timed-out posts are retried with
//! the publisher's [`RetryPolicy`]. What could not be posted is the client's gap: it is
//! told `{"type":"resumed","count":<posted>,"complete":false}`.

use std::sync::Arc;
use std::time::Duration;

use switchboard_model::ConnectionId;
use tokio::time::Instant;

use crate::poster::{ConnectionPoster, Frame, PostError};
use crate::publisher::RetryPolicy;

/// The API Gateway WebSocket integration timeout (not adjustable; see the module docs).
pub const WEBSOCKET_INTEGRATION_TIMEOUT: Duration = Duration::from_secs(29);
/// How long a resume may take from the invocation's start: under
/// [`WEBSOCKET_INTEGRATION_TIMEOUT`], with room for the answer to travel back.
pub const RESUME_BUDGET: Duration = Duration::from_secs(25);
const _: () = assert!(RESUME_BUDGET.as_secs() < WEBSOCKET_INTEGRATION_TIMEOUT.as_secs());

/// The longest one post may take by default: `ApiGatewayPoster`'s per-attempt timeout, the
/// one the publisher's time budget counts on too.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = crate::publisher::POST_ATTEMPT_TIMEOUT;

/// How a resume's posts are bounded and retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeLimits {
    /// Time from the invocation's start by which posting has ended ([`RESUME_BUDGET`]).
    pub budget: Duration,
    /// The longest one post may take (the poster's per-attempt timeout): no attempt starts
    /// with less than this left.
    pub attempt_timeout: Duration,
    pub retry: RetryPolicy,
}

impl Default for ResumeLimits {
    fn default() -> Self {
        Self {
            budget: RESUME_BUDGET,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            retry: RetryPolicy::default(),
        }
    }
}

impl ResumeLimits {
    /// The latest instant an attempt may start: the sooner of `started + budget` and
    /// `deadline` (the invocation's), less one attempt. `None`: not even one fits.
    pub fn last_start(&self, started: Instant, deadline: Option<Instant>) -> Option<Instant> {
        let end = started + self.budget;
        let end = deadline.map_or(end, |deadline| deadline.min(end));
        end.checked_sub(self.attempt_timeout)
            .filter(|last| *last >= started)
    }
}

/// Why posting ended before the last frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeStop {
    /// The budget left no room for another attempt.
    OutOfTime,
    /// The caller is gone (410): nobody is left to answer.
    Gone,
    /// A post failed for good: a non-retryable error, or the last retry's.
    Failed(PostError),
}

/// What [`post_within_budget`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePosted {
    /// Frames posted, a prefix of those given, in order.
    pub count: usize,
    /// Attempts that failed and were retried.
    pub retries: u32,
    /// `None`: every frame was posted.
    pub stopped: Option<ResumeStop>,
}

impl ResumePosted {
    /// The answer when posting stopped early and the caller should hear about the gap:
    /// `resumed` with the frames posted and `complete: false`, unless a post failed with
    /// an error retrying cannot fix (`None`: answer an error as before). Every frame
    /// posted: `None` too (answer the resume's own `resumed`).
    pub fn incomplete_reply(&self) -> Option<String> {
        match &self.stopped {
            None => None,
            Some(ResumeStop::Failed(error)) if !error.is_retryable() => None,
            Some(_) => Some(super::resumed_incomplete(self.count)),
        }
    }
}

/// Posts `frames` (shared with the store: one post's copy at a time) to `connection` one
/// after another, in order, each retried on throttling,
/// timeout or a transient failure, and stops when the next attempt (or the wait before a
/// retry) would end past [`ResumeLimits::last_start`].
pub async fn post_within_budget(
    poster: &dyn ConnectionPoster,
    connection: &ConnectionId,
    frames: &[Arc<str>],
    limits: &ResumeLimits,
    started: Instant,
    deadline: Option<Instant>,
) -> ResumePosted {
    let last_start = limits.last_start(started, deadline);
    let fits = |at: Instant| last_start.is_some_and(|last| at <= last);
    let mut posted = ResumePosted {
        count: 0,
        retries: 0,
        stopped: None,
    };
    for frame in frames {
        let frame = Frame::from(frame.as_ref());
        let mut attempt = 1u32;
        loop {
            if !fits(Instant::now()) {
                posted.stopped = Some(ResumeStop::OutOfTime);
                return posted;
            }
            match poster.post(connection, &frame).await {
                Ok(()) => {
                    posted.count += 1;
                    break;
                }
                Err(PostError::Gone) => {
                    posted.stopped = Some(ResumeStop::Gone);
                    return posted;
                }
                Err(error) if error.is_retryable() && attempt < limits.retry.max_attempts => {
                    let delay = limits.retry.delay(attempt);
                    if !fits(Instant::now() + delay) {
                        posted.stopped = Some(ResumeStop::OutOfTime);
                        return posted;
                    }
                    tracing::debug!(%error, %connection, attempt, ?delay, "resume post retried");
                    posted.retries += 1;
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                }
                Err(error) => {
                    posted.stopped = Some(ResumeStop::Failed(error));
                    return posted;
                }
            }
        }
    }
    posted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::ScriptedPoster;

    const CONN: &str = "conn-1";

    fn frames(n: usize) -> Vec<Arc<str>> {
        (0..n)
            .map(|i| format!(r#"{{"id":"m{i}"}}"#).into())
            .collect()
    }

    fn texts(frames: &[Arc<str>]) -> Vec<String> {
        frames.iter().map(|f| f.to_string()).collect()
    }

    /// Posts `n` frames to [`CONN`] from now on.
    async fn post(
        poster: &ScriptedPoster,
        n: usize,
        limits: &ResumeLimits,
        deadline: Option<Instant>,
    ) -> ResumePosted {
        let connection = ConnectionId::parse(CONN).unwrap();
        post_within_budget(
            poster,
            &connection,
            &frames(n),
            limits,
            Instant::now(),
            deadline,
        )
        .await
    }

    fn limits(budget_ms: u64, attempt_ms: u64) -> ResumeLimits {
        ResumeLimits {
            budget: Duration::from_millis(budget_ms),
            attempt_timeout: Duration::from_millis(attempt_ms),
            retry: RetryPolicy {
                max_attempts: 5,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(4),
            },
        }
    }

    #[test]
    fn the_sooner_of_budget_and_deadline_less_one_attempt() {
        let started = Instant::now();
        let limits = ResumeLimits::default();
        let s = Duration::from_secs;
        assert_eq!(limits.last_start(started, None), Some(started + s(20)));
        assert_eq!(
            limits.last_start(started, Some(started + s(28))),
            Some(started + s(20)),
            "the 28 s function timeout is later than the 25 s budget"
        );
        assert_eq!(
            limits.last_start(started, Some(started + s(12))),
            Some(started + s(7)),
            "a nearer deadline wins"
        );
        assert_eq!(limits.last_start(started, Some(started + s(4))), None);
    }

    #[tokio::test]
    async fn posts_everything_in_order_when_time_allows() {
        let poster = ScriptedPoster::new();
        let posted = post(&poster, 3, &ResumeLimits::default(), None).await;
        assert_eq!(posted.count, 3);
        assert_eq!(posted.stopped, None);
        assert_eq!(posted.incomplete_reply(), None);
        let sent: Vec<String> = poster.delivered().into_iter().map(|(_, f)| f).collect();
        assert_eq!(sent, texts(&frames(3)));
    }

    #[tokio::test]
    async fn stops_when_no_attempt_fits_and_answers_the_gap() {
        let poster = ScriptedPoster::with_latency(Duration::from_millis(20));
        let started = Instant::now();
        let posted = post(&poster, 100, &limits(300, 100), None).await;
        assert!(
            started.elapsed() <= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
        assert!(
            (1..=11).contains(&posted.count),
            "posts start until 200 ms: {}",
            posted.count
        );
        assert_eq!(posted.stopped, Some(ResumeStop::OutOfTime));
        let sent: Vec<String> = poster.delivered().into_iter().map(|(_, f)| f).collect();
        assert_eq!(sent, texts(&frames(posted.count)), "a prefix, in order");
        let reply: serde_json::Value =
            serde_json::from_str(&posted.incomplete_reply().unwrap()).unwrap();
        assert_eq!(
            reply,
            serde_json::json!({"type":"resumed","count":posted.count,"complete":false})
        );
        let soon = Instant::now() + Duration::from_millis(50);
        let none = post(&poster, 1, &limits(300, 100), Some(soon)).await;
        assert_eq!(none.count, 0, "a deadline nearer than one attempt");
    }

    #[tokio::test]
    async fn retries_throttling_and_failures_then_gives_up_or_stops() {
        let poster = ScriptedPoster::new();
        poster.script(
            CONN,
            vec![
                Ok(()),
                Err(PostError::Throttled),
                Err(PostError::Transient("502".into())),
                Err(PostError::Timeout),
                Ok(()),
            ],
        );
        let posted = post(&poster, 3, &limits(10_000, 100), None).await;
        assert_eq!((posted.count, posted.retries), (3, 3));
        assert_eq!(posted.stopped, None);
        let sent: Vec<String> = poster.delivered().into_iter().map(|(_, f)| f).collect();
        assert_eq!(sent, texts(&frames(3)), "each once, in order");

        let throttled = ScriptedPoster::new();
        throttled.always_fail(CONN, PostError::Throttled);
        let posted = post(&throttled, 2, &limits(10_000, 100), None).await;
        assert_eq!(throttled.attempts(), 5, "max_attempts, then no more");
        assert_eq!(posted.count, 0);
        assert_eq!(
            posted.stopped,
            Some(ResumeStop::Failed(PostError::Throttled))
        );
        assert!(posted.incomplete_reply().is_some(), "a gap, not an error");

        for (error, stop) in [
            (PostError::Gone, ResumeStop::Gone),
            (
                PostError::Fatal("403".into()),
                ResumeStop::Failed(PostError::Fatal("403".into())),
            ),
        ] {
            let poster = ScriptedPoster::new();
            poster.script(CONN, vec![Ok(()), Err(error)]);
            let posted = post(&poster, 3, &limits(10_000, 100), None).await;
            assert_eq!((posted.count, poster.attempts()), (1, 2), "not retried");
            let gone = stop == ResumeStop::Gone;
            assert_eq!(posted.stopped, Some(stop));
            assert_eq!(
                posted.incomplete_reply().is_some(),
                gone,
                "a fatal failure answers resume_failed"
            );
        }
    }
}
