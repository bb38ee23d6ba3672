//! `POST|GET|DELETE /<stage>/@connections/<id>`, wire-compatible with API Gateway's
//! management API so `aws-sdk-apigatewaymanagement` works unchanged against it. Requests
//! are not SigV4-verified: bind the server to loopback (the default) or a private network.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use switchboard_core::pusher::PushError;
use switchboard_model::{ConnectionId, MAX_FRAME_BYTES};
use time::format_description::well_known::Rfc3339;

use super::registry::{LiveConnection, Outgoing};
use super::App;

/// An error the way API Gateway answers it: the type in `x-amzn-ErrorType` and the body.
fn aws_error(status: StatusCode, error_type: &'static str, message: &str) -> Response {
    (
        status,
        [("x-amzn-errortype", error_type)],
        Json(json!({"message": message, "__type": error_type})),
    )
        .into_response()
}

fn gone() -> Response {
    aws_error(StatusCode::GONE, "GoneException", "connection is gone")
}

fn find(app: &App, id: &str) -> Option<Arc<LiveConnection>> {
    ConnectionId::parse(id)
        .ok()
        .and_then(|id| app.registry.get(&id))
}

/// `PostToConnection`: the body is sent as one frame (text when it is UTF-8).
pub async fn post(State(app): State<Arc<App>>, Path(id): Path<String>, body: Bytes) -> Response {
    let Some(live) = find(&app, &id) else {
        return gone();
    };
    if body.len() > MAX_FRAME_BYTES {
        return aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            "frame over 128 KiB",
        );
    }
    let frame = match String::from_utf8(body.to_vec()) {
        Ok(text) => Outgoing::Text(text),
        Err(bytes) => Outgoing::Binary(bytes.into_bytes()),
    };
    match live.send(frame).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(PushError::Gone) => gone(),
        Err(_) => aws_error(
            StatusCode::TOO_MANY_REQUESTS,
            "LimitExceededException",
            "the connection is not reading fast enough",
        ),
    }
}

/// `GetConnection`.
pub async fn get(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Some(live) = find(&app, &id) else {
        return gone();
    };
    let connected_at = live.connected_at.format(&Rfc3339).unwrap_or_default();
    let last_active = live.last_active().format(&Rfc3339).unwrap_or_default();
    let identity = json!({"sourceIp": live.source_ip.to_string(), "userAgent": live.user_agent});
    // API Gateway's JSON names are camelCase; the PascalCase copies match the names in
    // AWS's documentation and SDK types, for clients that read those.
    Json(json!({
        "connectedAt": connected_at,
        "identity": identity,
        "lastActiveAt": last_active,
        "ConnectedAt": connected_at,
        "Identity": {"SourceIp": live.source_ip.to_string(), "UserAgent": live.user_agent},
        "LastActiveAt": last_active,
    }))
    .into_response()
}

/// `DeleteConnection`: closes the socket (its `$disconnect` removes the roster item).
pub async fn delete(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Some(live) = find(&app, &id) else {
        return gone();
    };
    live.close(1000, "deleted");
    StatusCode::NO_CONTENT.into_response()
}
