//! The WebSocket endpoint `ws://HOST/<stage>`: the handshake runs the same token
//! extraction, verification and `$connect` code as the AWS path; each socket then runs the
//! `$default` actions and, when it ends, `$disconnect`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, OriginalUri, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures::SinkExt;
use governor::clock::MonotonicClock;
use governor::{Quota, RateLimiter};
use switchboard_core::auth::extract::{websocket_url_chars, MAX_WEBSOCKET_URL_CHARS};
use switchboard_core::auth::token_from_handshake;
use switchboard_core::connection;
use switchboard_core::http::ApiError;
use switchboard_core::tenants::{Limit, LimitError};
use switchboard_model::close::{
    CLOSE_GOING_AWAY, CLOSE_MESSAGE_TOO_BIG, CLOSE_POLICY_VIOLATION, CLOSE_TOKEN_EXPIRED,
};
use switchboard_model::{ConnectionId, TenantId, UserId, MAX_FRAME_BYTES};
use time::OffsetDateTime;

use super::app::App;
use super::host::Host;
use super::metrics::ReasonLabel;
use super::registry::InstanceTag;
use super::registry::{
    CloseRequest, LiveConnection, Next, Outgoing, RegisterError, TenantCaps, CLOSE_SLOW_CONSUMER,
};

/// Per-socket read buffer, allocated for every socket. Clients send only small action
/// frames (`ping` is 17 bytes, `refresh` with its token about 1 KiB), so 1 KiB holds them
/// in one read; a larger frame is still read whole, 1 KiB a read. tungstenite's default
/// (128 KiB) would dominate memory per idle connection, and 4 KiB was a third of it.
const READ_BUFFER_BYTES: usize = 1024;
/// Bytes of frames gathered before tungstenite writes them to the socket. Every write ends
/// with a flush, so this only merges the frames of one batch (already waiting in the
/// outbox) into fewer `sendto` calls: with 0 each frame was its own call. The buffer keeps
/// its capacity, so a socket that once sent a batch holds up to this much more.
const WRITE_BUFFER_BYTES: usize = 4 * 1024;
/// Longest life of a connection (API Gateway's limit).
const MAX_CONNECTION_SECS: u64 = 2 * 60 * 60;
/// Frames written before one flush, when several are waiting.
const WRITE_BATCH_FRAMES: usize = 32;
/// Longest wait for each step of a close handshake (our frame out, the client's back).
const CLOSE_GRACE: Duration = Duration::from_secs(2);

fn unauthorized(message: &str) -> Response {
    ApiError::Unauthorized(message.to_string()).into_response()
}

/// How long a handshake refused by a connection cap should wait before trying again.
const CAPPED_RETRY_AFTER_SECS: u64 = 5;

/// A handshake the registry refused: 503 `busy` at the server's cap; 429
/// `too_many_connections` at a user's cap or the tenant's share; 429 `limit_exceeded` naming
/// the tenant setting at one of its own caps — all with `Retry-After`.
fn register_refused(error: RegisterError) -> Response {
    let message = error.to_string();
    let limit = |limit| ApiError::LimitExceeded {
        limit,
        message: message.clone(),
        retry_after_secs: Some(CAPPED_RETRY_AFTER_SECS),
    };
    match error {
        RegisterError::ServerFull(_) => ApiError::Busy {
            message: message.clone(),
            retry_after_secs: CAPPED_RETRY_AFTER_SECS,
        },
        RegisterError::UserFull(_) | RegisterError::TenantShare(_) => {
            ApiError::TooManyConnections {
                message: message.clone(),
                retry_after_secs: CAPPED_RETRY_AFTER_SECS,
            }
        }
        RegisterError::TenantFull(_) => limit(Limit::MaxConnections),
        RegisterError::TenantUserFull(_) => limit(Limit::MaxConnectionsPerUser),
    }
    .into_response()
}

/// A handshake whose URL is longer than API Gateway accepts: 414 (AWS documents the limit,
/// not its status; 414 URI Too Long is HTTP's answer to exactly this).
fn url_too_long(chars: usize) -> Response {
    ApiError::UrlTooLong(format!(
        "the URL is {chars} characters; API Gateway accepts at most {MAX_WEBSOCKET_URL_CHARS}: \
         send a long token as Sec-WebSocket-Protocol: bearer, <jwt>"
    ))
    .into_response()
}

/// A new connection id, shaped like API Gateway's (16 URL-safe characters): this
/// process's 4-character instance tag, then 12 random characters.
pub fn new_connection_id(instance: &InstanceTag) -> ConnectionId {
    let bytes: [u8; 9] = rand::random();
    let text = format!(
        "{}{}",
        instance.as_str(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    // A 4-character tag and nine random bytes (12 characters) always make a valid id.
    ConnectionId::parse(text).unwrap_or_else(|_| new_connection_id(instance))
}

/// `GET /<stage>` with an upgrade: check the URL's length (as API Gateway does, before
/// anything else) and the `Host` (exactly one `host[:port]`, else 400 `invalid_request`:
/// RFC 9112 §3.2), authenticate, record, upgrade.
pub async fn handshake(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    // The listener is plain text, so the client opened a `ws://` URL.
    let target = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let url_chars = websocket_url_chars("ws", host, target);
    if url_chars > MAX_WEBSOCKET_URL_CHARS {
        app.metrics
            .connections_refused
            .get_or_create(&ReasonLabel {
                reason: "url_too_long",
            })
            .inc();
        tracing::info!(peer = %peer, url_chars, "handshake refused: URL too long");
        return url_too_long(url_chars);
    }
    if Host::from_headers(&headers).is_none() {
        app.metrics
            .connections_refused
            .get_or_create(&ReasonLabel {
                reason: "invalid_host",
            })
            .inc();
        tracing::info!(peer = %peer, "handshake refused: Host is not host[:port]");
        return ApiError::InvalidRequest("Host must be exactly one host[:port]".into())
            .into_response();
    }
    if app.registry.is_full() {
        app.metrics
            .connections_refused
            .get_or_create(&ReasonLabel {
                reason: "max_connections",
            })
            .inc();
        return ApiError::Busy {
            message: "the server is at its connection limit; retry later".into(),
            retry_after_secs: CAPPED_RETRY_AFTER_SECS,
        }
        .into_response();
    }
    let offered = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok());
    let Some(found) = token_from_handshake(query.as_deref(), offered) else {
        app.metrics.handshakes_refused.inc();
        return unauthorized(
            "missing token: pass ?token=<jwt> or Sec-WebSocket-Protocol: bearer, <jwt>",
        );
    };
    let claims = match app.verifier.verify(&found.token).await {
        Ok(claims) => claims,
        Err(error) => {
            tracing::info!(%error, peer = %peer, "handshake refused");
            app.metrics.handshakes_refused.inc();
            return unauthorized("invalid token");
        }
    };
    let tenant = app.tenants.settings(&claims.tenant);
    if tenant.suspended {
        app.metrics
            .connections_refused
            .get_or_create(&ReasonLabel {
                reason: "tenant_suspended",
            })
            .inc();
        tracing::info!(tenant = %claims.tenant, user = %claims.user, "handshake refused: tenant suspended");
        return ApiError::from(LimitError::Suspended {
            tenant: claims.tenant,
        })
        .into_response();
    }
    let caps = TenantCaps {
        max_connections: tenant
            .max_connections
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        max_per_user: tenant
            .max_connections_per_user
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let id = new_connection_id(&app.instance);
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    // Register the socket before the roster write, so a publish that finds the roster
    // item always finds the socket too (frames wait in its queue until the upgrade ends).
    let registered = app
        .registry
        .register(id.clone(), claims.clone(), caps, peer.ip(), user_agent);
    let live = match registered {
        Ok(registered) => registered,
        Err(error) => {
            let reason = match error {
                RegisterError::ServerFull(_) => "max_connections",
                RegisterError::UserFull(_) => "max_per_user",
                RegisterError::TenantShare(_) => "tenant_share",
                RegisterError::TenantFull(_) | RegisterError::TenantUserFull(_) => "tenant_limit",
            };
            app.metrics
                .connections_refused
                .get_or_create(&ReasonLabel { reason })
                .inc();
            tracing::info!(%error, tenant = %claims.tenant, user = %claims.user, "handshake refused");
            return register_refused(error);
        }
    };
    if let Err(error) = connection::connect(
        app.roster.as_ref(),
        &app.connect_config,
        &id,
        &claims,
        OffsetDateTime::now_utc(),
    )
    .await
    {
        app.registry.unregister(&id);
        tracing::error!(%error, "connect failed");
        return ApiError::Internal("could not record the connection".into()).into_response();
    }
    // After the roster write, bounded, never refusing the connection.
    if let Some(events) = &app.events {
        events.connected(&claims.tenant, &claims.user, &id).await;
    }
    let mut upgrade = upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES);
    if let Some(protocol) = found.answer_subprotocol {
        upgrade = upgrade.protocols([protocol]);
    }
    app.metrics.connections.inc();
    app.metrics.connections_opened.inc();
    let failed_app = app.clone();
    let failed_id = id.clone();
    let (tenant, user) = (claims.tenant, claims.user);
    upgrade
        .on_failed_upgrade(move |error| {
            tracing::warn!(%error, "upgrade failed");
            tokio::spawn(
                async move { end_connection(&failed_app, &failed_id, &tenant, &user).await },
            );
        })
        .on_upgrade(move |socket| run_socket(app, id, live, socket))
}

async fn end_connection(app: &App, id: &ConnectionId, tenant: &TenantId, user: &UserId) {
    app.registry.unregister(id);
    if let Err(error) = connection::disconnect(app.roster.as_ref(), tenant, id).await {
        tracing::error!(%error, connection_id = %id, "disconnect failed; the roster TTL will remove the item");
    }
    // After the roster delete: the offline timer when the user has no connection left.
    if let Some(events) = &app.events {
        events.disconnected(tenant, user, id).await;
    }
    // Counted down once the roster no longer lists it, so the gauge never shows a
    // connection gone that a publisher can still find.
    app.metrics.connections.dec();
}

/// How a socket's loop ended, and so how it is closed.
enum Ending {
    /// The client sent a Close frame: answer it (tungstenite queued the reply) and flush.
    ClientClosed,
    /// Close from this side with this code; wait briefly for the client's reply.
    Close(CloseRequest),
    /// Like `Close`, for what the client sent (too fast, too big); already counted.
    Refuse(CloseRequest),
    /// The transport failed: nothing more can be sent.
    Broken,
}

/// One socket: client frames get `$default` replies; queued frames are sent, each write
/// bounded by the send timeout; a close request, the lifetime and the idle timeout end
/// it. On the way out the close handshake is completed (RFC 6455 §5.5.1) and the
/// connection removed.
async fn run_socket(
    app: Arc<App>,
    id: ConnectionId,
    live: Arc<LiveConnection>,
    mut socket: WebSocket,
) {
    let ending = drive(&app, &id, &live, &mut socket).await;
    match ending {
        Ending::ClientClosed => {
            let _ = tokio::time::timeout(CLOSE_GRACE, socket.flush()).await;
        }
        Ending::Close(request) => {
            if request.code == CLOSE_SLOW_CONSUMER {
                app.metrics.slow_consumers_closed.inc();
                tracing::info!(connection_id = %id, reason = request.reason, "closing a slow consumer");
            }
            Box::pin(close_handshake(&mut socket, request)).await;
        }
        Ending::Refuse(request) => Box::pin(close_handshake(&mut socket, request)).await,
        Ending::Broken => {}
    }
    drop(socket);
    end_connection(&app, &id, &live.claims.tenant, &live.claims.user).await;
}

/// Sends our close frame and waits (bounded) for the client's, so the client sees a clean
/// close rather than a reset.
async fn close_handshake(socket: &mut WebSocket, request: CloseRequest) {
    let frame = Message::Close(Some(CloseFrame {
        code: request.code,
        reason: request.reason.into(),
    }));
    if !matches!(
        tokio::time::timeout(CLOSE_GRACE, socket.send(frame)).await,
        Ok(Ok(()))
    ) {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

async fn drive(
    app: &App,
    id: &ConnectionId,
    live: &LiveConnection,
    socket: &mut WebSocket,
) -> Ending {
    // Like API Gateway, a connection lives at most 2 hours, and never past its roster
    // item's `expiresAt` (after which publishers no longer find it).
    let lifetime = Duration::from_secs(
        u64::try_from(app.connect_config.connection_ttl_secs)
            .unwrap_or(0)
            .min(MAX_CONNECTION_SECS),
    );
    let deadline = tokio::time::sleep(lifetime);
    tokio::pin!(deadline);
    let idle = tokio::time::sleep(app.limits.idle_timeout);
    tokio::pin!(idle);
    // The token's expiry (plus the leeway): 4001 unless the client refreshes in band.
    let token_expiry = tokio::time::sleep_until(token_instant(app, &live.claims));
    tokio::pin!(token_expiry);
    let send_timeout = app.limits.send_timeout;
    // The std clock: no state of its own, so the bucket is 32 bytes a socket.
    let allowance = RateLimiter::direct_with_clock(
        Quota::per_second(app.limits.actions.per_second).allow_burst(app.limits.actions.burst),
        MonotonicClock,
    );
    loop {
        // A close request first, then queued frames: neither waits behind the other.
        let pending = match live.next() {
            Next::Close(request) => return Ending::Close(request),
            Next::Frame(frame) => {
                if let Err(ending) =
                    Box::pin(write(socket, frame.into(), true, send_timeout, live)).await
                {
                    return ending;
                }
                // More frames may be waiting (their wake-up was used): read the client
                // (if it sent anything) and come back without waiting.
                live.has_work()
            }
            Next::Idle => false,
        };
        tokio::select! {
            biased;
            () = live.woken(), if !pending => {}
            _ = &mut deadline => {
                return Ending::Close(CloseRequest { code: CLOSE_GOING_AWAY, reason: "connection lifetime reached" });
            }
            _ = &mut idle => {
                return Ending::Close(CloseRequest { code: CLOSE_GOING_AWAY, reason: "idle timeout" });
            }
            _ = &mut token_expiry => {
                return Ending::Close(CloseRequest { code: CLOSE_TOKEN_EXPIRED, reason: "token expired" });
            }
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => Default::default(),
                    // API Gateway never sees WebSocket control frames (browsers cannot send
                    // them either): like it, they neither keep a socket from idling nor count
                    // as its activity. Only a client message does (the `ping` action).
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) => return Ending::ClientClosed,
                    Some(Err(error)) if is_too_big(&error) => {
                        return misbehaved(app, id, "message_too_big", CloseRequest {
                            code: CLOSE_MESSAGE_TOO_BIG,
                            reason: "frame larger than 128 KiB",
                        });
                    }
                    Some(Err(_)) | None => return Ending::Broken,
                };
                live.touch();
                idle.as_mut().reset(tokio::time::Instant::now() + app.limits.idle_timeout);
                if allowance.check().is_err() {
                    return misbehaved(app, id, "action_rate", CloseRequest {
                        code: CLOSE_POLICY_VIOLATION,
                        reason: "too many actions",
                    });
                }
                // Boxed: an idle socket's task then holds no room for an action, its
                // replies or a write in progress.
                match Box::pin(answer(app, id, live, socket, text.as_str())).await {
                    Ok(Some(fresh)) => token_expiry.as_mut().reset(token_instant(app, &fresh)),
                    Ok(None) => {}
                    Err(ending) => return ending,
                }
            }
            () = std::future::ready(()), if pending => {}
        }
    }
}

/// Serves one client action and writes what it answers; `Some(claims)` after a successful
/// `refresh` (the caller moves the token deadline).
///
/// A resume's missed frames are the history store's own (shared): each is copied once, as
/// it is written, never the whole resume. The socket is not read again before this ends, so
/// one resume at most is in flight per socket. It stops starting frames `RESUME_BUDGET`
/// (25 s) after the resume was read — each write is bounded by the send timeout — and then
/// answers `resumed` with the frames sent and `complete: false`.
async fn answer(
    app: &App,
    id: &ConnectionId,
    live: &LiveConnection,
    socket: &mut WebSocket,
    text: &str,
) -> Result<Option<switchboard_model::Claims>, Ending> {
    let send_timeout = app.limits.send_timeout;
    let outcome = connection::handle_client_frame(&app.actions, text, id, &live.claims).await;
    let resume_deadline = tokio::time::Instant::now() + switchboard_core::history::RESUME_BUDGET;
    let mut replies = outcome.frames;
    for (sent, frame) in outcome.missed.iter().enumerate() {
        if tokio::time::Instant::now() >= resume_deadline {
            replies = vec![switchboard_core::history::resumed_incomplete(sent)];
            break;
        }
        let frame = Message::Text(frame.as_ref().into());
        Box::pin(write(socket, frame, false, send_timeout, live)).await?;
    }
    for reply in replies {
        Box::pin(write(
            socket,
            Message::Text(reply.into()),
            false,
            send_timeout,
            live,
        ))
        .await?;
    }
    Ok(outcome.refreshed)
}

/// Whether a failed read was a client frame over the size limit (tungstenite stops reading
/// it at its header; the socket can still send our close).
fn is_too_big(error: &axum::Error) -> bool {
    matches!(
        std::error::Error::source(error)
            .and_then(|inner| inner.downcast_ref::<tungstenite::Error>()),
        Some(tungstenite::Error::Capacity(_))
    )
}

/// A socket closed for what its client did (`reason`: `action_rate`, `message_too_big`),
/// counted in `switchboard_connections_closed_total`.
fn misbehaved(app: &App, id: &ConnectionId, reason: &'static str, request: CloseRequest) -> Ending {
    app.metrics
        .connections_closed
        .get_or_create(&ReasonLabel { reason })
        .inc();
    tracing::info!(connection_id = %id, reason, "closing a misbehaving client");
    Ending::Refuse(request)
}

/// When a connection with these claims must end: its token's `exp` plus the verifier's
/// leeway (far in the future for a token without `exp`, which the verifier never accepts).
fn token_instant(app: &App, claims: &switchboard_model::Claims) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    let Some(deadline) = connection::token_deadline(claims, app.verifier.leeway_secs()) else {
        return now + Duration::from_secs(MAX_CONNECTION_SECS);
    };
    let left = deadline.saturating_sub(OffsetDateTime::now_utc().unix_timestamp());
    now + Duration::from_secs(u64::try_from(left).unwrap_or(0))
}

impl From<Outgoing> for Message {
    fn from(frame: Outgoing) -> Self {
        match frame {
            Outgoing::Text(text) => Message::Text(text),
            Outgoing::Binary(bytes) => Message::Binary(bytes),
        }
    }
}

/// Writes `first` and, when `batch` is set, the frames already waiting behind it (up to
/// [`WRITE_BATCH_FRAMES`]), then flushes once. The common case, a socket with room, is
/// done in one poll with no timer armed; otherwise the whole write is bounded by
/// `send_timeout` (a client that does not read: close 1008), and abandoned at once when
/// a close is requested meanwhile.
async fn write(
    socket: &mut WebSocket,
    first: Message,
    batch: bool,
    send_timeout: Duration,
    live: &LiveConnection,
) -> Result<(), Ending> {
    let work = async {
        socket.feed(first).await?;
        if batch {
            for _ in 1..WRITE_BATCH_FRAMES {
                match live.next() {
                    Next::Frame(frame) => socket.feed(frame.into()).await?,
                    // A close request stays for the socket loop; nothing else waits.
                    Next::Close(_) | Next::Idle => break,
                }
            }
        }
        socket.flush().await
    };
    let mut work = std::pin::pin!(work);
    if let Poll::Ready(written) = futures::poll!(work.as_mut()) {
        return written.map_err(|_| Ending::Broken);
    }
    tokio::select! {
        biased;
        request = live.closing() => Err(Ending::Close(request)),
        written = tokio::time::timeout(send_timeout, work) => match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Ending::Broken),
            Err(_elapsed) => Err(Ending::Close(CloseRequest {
                code: CLOSE_SLOW_CONSUMER,
                reason: "send timed out",
            })),
        },
    }
}
