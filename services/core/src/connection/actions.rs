//! `$default`: the reply to each client frame (docs/design.md: Client actions) — `ping`,
//! `whoami`, `refresh` (in `refresh.rs`), `resume` (missed frames from the history) and
//! `push_subscribe` / `push_unsubscribe` (in `push.rs`).

use std::sync::Arc;

use switchboard_model::{Claims, ClientAction, ConnectionId, ErrorCode, ServerReply};
use time::OffsetDateTime;

use super::push;
use super::refresh::refresh;
use crate::auth::Verifier;
use crate::history::{resume, HistoryConfig, HistoryStore, ResumeError};
use crate::roster::RosterStore;
use crate::webpush::WebPush;

/// The reply to one client frame without a verifier (docs/design.md: The one-machine binary):
/// `ping`, `whoami`, and `unknown_action`. A `refresh` gets the error
/// [`ErrorCode::RefreshUnavailable`] here (nothing can verify it); edges call
/// [`handle_client_frame`].
pub fn reply_to(text: &str, connection_id: &ConnectionId, claims: &Claims) -> ServerReply {
    sync_reply(ClientAction::parse(text), connection_id, claims)
}

fn sync_reply(action: ClientAction, connection_id: &ConnectionId, claims: &Claims) -> ServerReply {
    match action {
        ClientAction::Ping => ServerReply::Pong,
        ClientAction::WhoAmI => ServerReply::WhoAmI {
            connection_id: connection_id.to_string(),
            tenant: claims.tenant.to_string(),
            user: claims.user.to_string(),
        },
        ClientAction::Refresh { .. } => ServerReply::Error {
            error: ErrorCode::RefreshUnavailable,
        },
        // `resume` and the push actions need stores: `handle_client_frame` answers them.
        // Here (no store) they are actions this caller does not offer.
        ClientAction::Resume { .. }
        | ClientAction::PushSubscribe { .. }
        | ClientAction::PushUnsubscribe { .. }
        | ClientAction::Unknown => ServerReply::Error {
            error: ErrorCode::UnknownAction,
        },
    }
}

/// What the `$default` actions need besides the caller's identity.
#[derive(Clone)]
pub struct ActionDeps {
    /// Where a `refresh` records the new `tokenExpiresAt`.
    pub roster: Arc<dyn RosterStore>,
    pub history: Arc<dyn HistoryStore>,
    pub history_config: HistoryConfig,
    /// Verifies `refresh` tokens; `None` where the edge cannot (the client then gets
    /// [`ErrorCode::RefreshUnavailable`]).
    pub verifier: Option<Arc<Verifier>>,
    /// Where `push_subscribe` keeps devices; `None` where push is off (the client then
    /// gets `push_unavailable`).
    pub push: Option<WebPush>,
}

/// What one client frame led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameOutcome {
    /// `resume`: the missed frames, oldest first, to send before [`Self::frames`]. Shared
    /// with the history store: an edge sends them one at a time and never copies them all.
    pub missed: Vec<Arc<str>>,
    /// Send these back on the socket, in order (after `missed`): one reply (for `resume`,
    /// `resumed`).
    pub frames: Vec<String>,
    /// `Some` after a successful `refresh`: the new token's claims. Its `exp` is the
    /// connection's new expiry (move the deadline, or the roster's `tokenExpiresAt`);
    /// `None`: the old expiry stands.
    pub refreshed: Option<Claims>,
}

impl FrameOutcome {
    fn reply(reply: ServerReply) -> Self {
        Self {
            missed: Vec::new(),
            frames: vec![reply.to_json()],
            refreshed: None,
        }
    }
}

/// `$default`: serves one client frame (docs/design.md: Client actions). `refresh`
/// must come from the same issuer and name the same tenant and user as `claims` (the
/// connection's identity), else an error reply and nothing changes. The connection stays open
/// whatever was sent.
pub async fn handle_client_frame(
    deps: &ActionDeps,
    text: &str,
    connection_id: &ConnectionId,
    claims: &Claims,
) -> FrameOutcome {
    let frames = match ClientAction::parse(text) {
        ClientAction::Refresh { token } => {
            let Some(verifier) = &deps.verifier else {
                return FrameOutcome::reply(ServerReply::Error {
                    error: ErrorCode::RefreshUnavailable,
                });
            };
            let (reply, refreshed) = refresh(
                verifier,
                deps.roster.as_ref(),
                &token,
                connection_id,
                claims,
            )
            .await;
            return FrameOutcome {
                missed: Vec::new(),
                frames: vec![reply.to_json()],
                refreshed,
            };
        }
        ClientAction::Resume { since } => {
            let outcome = resume(
                deps.history.as_ref(),
                &deps.history_config,
                &claims.tenant,
                &claims.user,
                &since,
                OffsetDateTime::now_utc(),
            )
            .await;
            match outcome {
                Ok(outcome) => {
                    return FrameOutcome {
                        frames: vec![outcome.resumed_frame()],
                        missed: outcome.frames,
                        refreshed: None,
                    };
                }
                Err(ResumeError::InvalidCursor(_)) => vec![ServerReply::Error {
                    error: ErrorCode::InvalidCursor,
                }
                .to_json()],
                Err(ResumeError::Unavailable(error)) => {
                    tracing::warn!(%error, %connection_id, "resume failed: history unavailable");
                    vec![ServerReply::Error {
                        error: ErrorCode::HistoryUnavailable,
                    }
                    .to_json()]
                }
            }
        }
        ClientAction::PushSubscribe { subscription } => {
            vec![
                push::subscribe(deps.push.as_ref(), &subscription, connection_id, claims)
                    .await
                    .to_json(),
            ]
        }
        ClientAction::PushUnsubscribe { id } => {
            vec![
                push::unsubscribe(deps.push.as_ref(), &id, connection_id, claims)
                    .await
                    .to_json(),
            ]
        }
        action => vec![sync_reply(action, connection_id, claims).to_json()],
    };
    FrameOutcome {
        missed: Vec::new(),
        frames,
        refreshed: None,
    }
}
