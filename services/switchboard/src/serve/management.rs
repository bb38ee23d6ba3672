//! `POST|GET|DELETE /<stage>/@connections/<id>`, wire-compatible with API Gateway's
//! management API so `aws-sdk-apigatewaymanagement` works unchanged against it. Served on
//! its own listener (`--management-listen`, loopback by default), never on the public one.
//! With management credentials configured every request must carry a valid SigV4
//! signature, signed for this listener's host, over its body, used once (see
//! [`super::sigv4`]), else 403 `ForbiddenException`; 429 `LimitExceededException` when
//! more signatures are within the clock-skew window than can be remembered. A request
//! answered 429 (throttled, without effect) leaves its signature usable for the SDK's retry.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use switchboard_core::http::no_such_endpoint;
use switchboard_core::poster::PostError;
use switchboard_model::close::CLOSE_NORMAL;
use switchboard_model::{ConnectionId, MAX_FRAME_BYTES};
use time::format_description::well_known::Rfc3339;

use super::app::App;
use super::registry::{LiveConnection, Outgoing};
use super::sigv4::{ManagementCredentials, SigV4Error, SignatureCheck};

/// The management router: `/<stage>/@connections/{id}`, SigV4-checked when `credentials`
/// are given (for requests to the listener bound to `addr`); anything else is 404.
pub fn router(
    app: Arc<App>,
    credentials: Option<ManagementCredentials>,
    addr: SocketAddr,
) -> Router {
    let stage = app.stage.clone();
    let mut router = Router::new().route(
        &format!("/{stage}/@connections/{{id}}"),
        post(post_frame).get(get).delete(delete),
    );
    if let Some(credentials) = credentials {
        router = router.layer(axum::middleware::from_fn_with_state(
            Arc::new(SignatureCheck::new(credentials, addr)),
            check_signature,
        ));
    }
    router.with_state(app).fallback(no_such_endpoint)
}

/// Reads the body (bounded), verifies the signature over it, hands the request on.
async fn check_signature(
    State(check): State<Arc<SignatureCheck>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FRAME_BYTES).await else {
        return aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            "frame over 128 KiB",
        );
    };
    let verified = match check.check(&parts, &bytes, SystemTime::now()) {
        Ok(verified) => verified,
        Err(error @ SigV4Error::ReplayCacheFull) => {
            tracing::warn!(%error, path = %parts.uri.path(), "management request refused");
            return aws_error(
                StatusCode::TOO_MANY_REQUESTS,
                "LimitExceededException",
                "too many signed requests within the clock-skew window",
            );
        }
        Err(error) => {
            tracing::warn!(%error, path = %parts.uri.path(), "management request refused");
            return aws_error(
                StatusCode::FORBIDDEN,
                "ForbiddenException",
                "missing or invalid SigV4 signature",
            );
        }
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    // Throttled without effect: the SDK retries, perhaps within the same second (the same
    // signature), which must not be taken for a replay.
    if response.status() == StatusCode::TOO_MANY_REQUESTS {
        check.forget(&verified);
    }
    response
}

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
pub async fn post_frame(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
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
        Ok(text) => Outgoing::Text(text.into()),
        Err(_) => Outgoing::Binary(body),
    };
    // A client too slow to take it is closed (1008) and, as API Gateway does for a
    // connection that is gone, answered 410.
    match live.send(frame) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(PostError::Gone) => gone(),
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
    live.close(CLOSE_NORMAL, "deleted");
    StatusCode::NO_CONTENT.into_response()
}
