//! `$default`: the client actions (`ping`, `whoami`, `resume`, `refresh`, `push_subscribe`,
//! `push_unsubscribe`), and the `unknown_action` error for anything else; the connection
//! stays open whatever was sent.
//!
//! `push_subscribe` / `push_unsubscribe` (docs/design.md: Web Push) register and remove the
//! connection's user's devices on the history table, when Web Push is configured
//! (`VAPID_*`, [`crate::push`]); otherwise they answer `push_unavailable`.
//!
//! `refresh` (docs/design.md: Token expiry and refresh) verifies the new token with the
//! authorizer's key source; one of the connection's issuer (the authorizer context's
//! `issuer`), tenant and user moves the roster item's `tokenExpiresAt` (an update conditional on
//! the item existing) and answers `refreshed`; anything else answers an error frame and the old
//! expiry stands.
//!
//! The reply travels as the response body: the infra gives the `$default` route a route
//! response (`RouteResponseSelectionExpression` `$default`), so API Gateway sends the
//! integration's `body` back to the client as one text frame. A `resume` answers several
//! frames: the missed messages are posted to the caller through the management API
//! (`CALLBACK_URL`), in order, and the closing `resumed` frame is the body.
//!
//! API Gateway waits at most 29 s for that body (the WebSocket integration timeout, not
//! adjustable), so the posts run within [`ResumeLimits`]: they end 25 s after the
//! invocation started or at its deadline, whichever is sooner, less one post's timeout;
//! throttled (429), failed (5xx) and timed-out posts are retried with the publisher's
//! backoff. Out of time (or retries), the body is `{"type":"resumed","count":<posted>,
//! "complete":false}`: the client sees a gap. A caller gone (410) ends the posts; any other
//! failure answers `resume_failed`.

use std::sync::Arc;

use switchboard_aws::dynamo::DynamoStores;
use switchboard_aws::poster::DEFAULT_POST_TIMEOUT;
use switchboard_aws::{load_sdk_config, ApiGatewayPoster, DynamoConfig, LocalDefaults};
use switchboard_core::auth::{AuthConfig, Verifier};
use switchboard_core::config::required;
use switchboard_core::connection::{self, ActionDeps};
use switchboard_core::history::{post_within_budget, HistoryConfig, ResumeLimits};
use switchboard_core::poster::ConnectionPoster;
use switchboard_model::{ErrorCode, ServerReply};
use tokio::time::Instant;

use crate::publish_api::StartupError;
use crate::websocket::{claims, connection_id, RouteError, WebsocketEvent, WebsocketResponse};

/// What `$default` needs: the roster and the verifier (for `refresh`), the history (for
/// `resume`), a way to post to the caller and the time budget of those posts.
#[derive(Clone)]
pub struct DefaultDeps {
    pub actions: ActionDeps,
    pub poster: Arc<dyn ConnectionPoster>,
    /// The resume's time budget and retries ([`ResumeLimits::default`]: 25 s, 5 s per post).
    pub resume: ResumeLimits,
}

/// Builds the dependencies from the environment: the same JWT key source and claim
/// settings as the authorizer (a `refresh` token is verified exactly as a `$connect` one),
/// the roster table (`ROSTER_TABLE`), `HISTORY_TABLE` (default `SocketHistory`),
/// `HISTORY_TTL_SECS`, `RESUME_MAX`, `RESUME_MAX_BYTES`, `CALLBACK_URL` (required),
/// `DYNAMODB_ENDPOINT`, and Web Push (`VAPID_*`, `PUSH_*`; devices in `HISTORY_TABLE`).
pub async fn build(lookup: impl Fn(&str) -> Option<String>) -> Result<DefaultDeps, StartupError> {
    let history_config = HistoryConfig::from_lookup(&lookup)?;
    let callback_url: String = required(&lookup, "CALLBACK_URL")?;
    let callback_url = switchboard_aws::config::validate_endpoint("CALLBACK_URL", &callback_url)?;
    let auth = AuthConfig::from_lookup(&lookup).and_then(AuthConfig::require_key_source)?;
    let verifier = Verifier::new(auth).await?;
    let dynamo = DynamoConfig::from_lookup(&lookup)?;
    let stores = DynamoStores::connect(&dynamo).await;
    let push = crate::push::web_push(&lookup, || Arc::new(stores.devices()))?;
    let sdk = load_sdk_config(LocalDefaults::NONE).await;
    tracing::info!(history_table = %dynamo.history_table, roster_table = %dynamo.roster_table, %callback_url, ?verifier, "default ready");
    Ok(DefaultDeps {
        actions: ActionDeps {
            roster: Arc::new(stores.roster()),
            history: Arc::new(stores.history()),
            history_config,
            verifier: Some(Arc::new(verifier)),
            push,
        },
        poster: Arc::new(ApiGatewayPoster::new(&sdk, &callback_url)),
        // No post starts unless the poster's whole per-attempt timeout still fits.
        resume: ResumeLimits {
            attempt_timeout: DEFAULT_POST_TIMEOUT,
            ..ResumeLimits::default()
        },
    })
}

/// Handles one `$default` event with no deadline but the resume budget ([`handle_until`]).
pub async fn handle(
    deps: &DefaultDeps,
    event: &WebsocketEvent,
) -> Result<WebsocketResponse, RouteError> {
    handle_until(deps, event, None).await
}

/// Handles one `$default` event before `deadline` (the invocation's): 200 with the (last)
/// reply frame as the body; a `resume` posts its missed frames first, within
/// [`DefaultDeps::resume`] counted from now.
pub async fn handle_until(
    deps: &DefaultDeps,
    event: &WebsocketEvent,
    deadline: Option<Instant>,
) -> Result<WebsocketResponse, RouteError> {
    let started = Instant::now();
    let connection = connection_id(event)?;
    let claims = claims(event).inspect_err(|error| {
        tracing::warn!(%error, connection_id = %connection, "message without identity");
    })?;
    let body = event.body.as_deref().unwrap_or("");
    let outcome = connection::handle_client_frame(&deps.actions, body, &connection, &claims).await;
    let last = outcome.frames.last().cloned().unwrap_or_default();
    // A resume's missed frames (within `RESUME_MAX` and `RESUME_MAX_BYTES`), shared with
    // the history read: posted one at a time.
    let frames = outcome.missed;
    let posted = post_within_budget(
        deps.poster.as_ref(),
        &connection,
        &frames,
        &deps.resume,
        started,
        deadline,
    )
    .await;
    let reply = match &posted.stopped {
        None => {
            if posted.retries > 0 {
                tracing::info!(connection_id = %connection, retries = posted.retries, "resume posts retried");
            }
            last
        }
        Some(stop) => {
            let elapsed_ms = started.elapsed().as_millis();
            tracing::warn!(?stop, connection_id = %connection, posted = posted.count, missed = frames.len(), retries = posted.retries, elapsed_ms, "resume ended early");
            posted.incomplete_reply().unwrap_or_else(|| {
                ServerReply::Error {
                    error: ErrorCode::ResumeFailed,
                }
                .to_json()
            })
        }
    };
    Ok(WebsocketResponse {
        body: Some(reply),
        ..WebsocketResponse::ok()
    })
}
