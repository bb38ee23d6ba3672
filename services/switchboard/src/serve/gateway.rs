//! The WebSocket endpoint `ws://HOST/<stage>`: the handshake runs the same token
//! extraction, verification and `$connect` code as the AWS path; each socket then runs the
//! `$default` actions and, when it ends, `$disconnect`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::json;
use switchboard_core::auth::token_from_handshake;
use switchboard_core::connection;
use switchboard_model::{ConnectionId, TenantId, MAX_FRAME_BYTES};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::registry::{LiveConnection, Outgoing};
use super::App;

/// Per-socket read buffer. tungstenite's default (128 KiB) would dominate memory per idle
/// connection; frames larger than this are still read, in several reads.
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Bytes written before a flush is forced.
const WRITE_BUFFER_BYTES: usize = 0;
/// Longest life of a connection (API Gateway's limit).
const MAX_CONNECTION_SECS: u64 = 2 * 60 * 60;

fn unauthorized(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(json!({"error": "unauthorized", "message": message})),
    )
        .into_response()
}

/// A new connection id, shaped like API Gateway's (16 URL-safe characters).
pub fn new_connection_id() -> ConnectionId {
    let bytes: [u8; 12] = rand::random();
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    // Twelve random bytes always encode to 16 URL-safe characters: a valid id.
    ConnectionId::parse(text).unwrap_or_else(|_| new_connection_id())
}

/// `GET /<stage>` with an upgrade: authenticate, record, upgrade.
pub async fn handshake(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
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
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let id = new_connection_id();
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    // Register the socket before the roster write, so a publish that finds the roster
    // item always finds the socket too (frames wait in its queue until the upgrade ends).
    let (live, outgoing) = app
        .registry
        .register(id.clone(), claims.clone(), peer.ip(), user_agent);
    if let Err(error) = connection::connect(
        app.roster.as_ref(),
        &app.connect_config,
        id.as_str(),
        &claims,
        OffsetDateTime::now_utc(),
    )
    .await
    {
        app.registry.unregister(&id);
        tracing::error!(%error, "connect failed");
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "internal", "message": "could not record the connection"})),
        )
            .into_response();
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
    let tenant = claims.tenant;
    upgrade
        .on_failed_upgrade(move |error| {
            tracing::warn!(%error, "upgrade failed");
            tokio::spawn(async move { end_connection(&failed_app, &failed_id, &tenant).await });
        })
        .on_upgrade(move |socket| run_socket(app, id, live, outgoing, socket))
}

async fn end_connection(app: &App, id: &ConnectionId, tenant: &TenantId) {
    app.registry.unregister(id);
    if let Err(error) = connection::disconnect(app.roster.as_ref(), tenant, id.as_str()).await {
        tracing::error!(%error, connection_id = %id, "disconnect failed; the roster TTL will remove the item");
    }
    // Counted down once the roster no longer lists it, so the gauge never shows a
    // connection gone that a publisher can still find.
    app.metrics.connections.dec();
}

/// One socket: client frames get `$default` replies; queued frames are sent; on close
/// (either side) the connection is removed.
async fn run_socket(
    app: Arc<App>,
    id: ConnectionId,
    live: Arc<LiveConnection>,
    mut outgoing: mpsc::Receiver<Outgoing>,
    mut socket: WebSocket,
) {
    // Like API Gateway, a connection lives at most 2 hours, and never past its roster
    // item's `expiresAt` (after which publishers no longer find it).
    let lifetime = Duration::from_secs(
        u64::try_from(app.connect_config.connection_ttl_secs)
            .unwrap_or(0)
            .min(MAX_CONNECTION_SECS),
    );
    let deadline = tokio::time::sleep(lifetime);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => {
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code: 1001,
                        reason: "connection lifetime reached".into(),
                    })))
                    .await;
                break;
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    live.touch();
                    let reply = connection::reply_to(text.as_str(), id.as_str(), &live.claims);
                    if socket.send(Message::Text(reply.to_json().into())).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    live.touch();
                    let reply = connection::reply_to("", id.as_str(), &live.claims);
                    if socket.send(Message::Text(reply.to_json().into())).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => live.touch(),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
            },
            frame = outgoing.recv() => match frame {
                Some(Outgoing::Text(text)) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Outgoing::Binary(bytes)) => {
                    if socket.send(Message::Binary(bytes.into())).await.is_err() {
                        break;
                    }
                }
                Some(Outgoing::Close(code, reason)) => {
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame { code, reason: reason.into() })))
                        .await;
                    break;
                }
                None => break,
            },
        }
    }
    end_connection(&app, &id, &live.claims.tenant).await;
}
