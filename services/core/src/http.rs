//! The HTTP edge's one error type and its one answer (`{"error", "message"}`, plus
//! `WWW-Authenticate`, `Retry-After` and `"limit"` where they apply), and bearer-token
//! authentication: used by the publish API, presence, receipts, usage, dead letters, the
//! dev endpoints, the local gateway, the console proxy and the connect Lambda's refusals
//! alike.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use switchboard_model::Claims;

use crate::auth::{token_from_authorization, Verifier};
use crate::tenants::{Limit, LimitError};

/// An error answered as `{"error": code, "message": text}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    InvalidEnvelope(String),
    /// A path or query parameter is invalid (400 `invalid_request`).
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unavailable(String),
    /// Temporarily unable to take more (a full queue, shutting down): 503 with
    /// `Retry-After`.
    #[error("{message}")]
    Busy {
        message: String,
        retry_after_secs: u64,
    },
    /// A WebSocket handshake whose URL is longer than API Gateway accepts (414
    /// `url_too_long`).
    #[error("{0}")]
    UrlTooLong(String),
    /// A handshake over a connection cap of the server: a user's, or a tenant's share (429
    /// `too_many_connections` + `Retry-After`).
    #[error("{message}")]
    TooManyConnections {
        message: String,
        retry_after_secs: u64,
    },
    /// The tenant is suspended (403 `tenant_suspended`).
    #[error("{0}")]
    Suspended(String),
    /// Over a tenant setting (`limit_exceeded` with `"limit"`: 429, 413 for
    /// `maxPayloadBytes`, 403 for `allowedTargets`; `Retry-After` for rates).
    #[error("{message}")]
    LimitExceeded {
        limit: Limit,
        message: String,
        retry_after_secs: Option<u64>,
    },
    /// The server failed at something it should not (500 `internal`).
    #[error("{0}")]
    Internal(String),
    /// An API a proxy forwards to could not be reached or answered badly (502
    /// `bad_gateway`).
    #[error("{0}")]
    BadGateway(String),
    /// An API a proxy forwards to did not answer in time (504 `gateway_timeout`).
    #[error("{0}")]
    GatewayTimeout(String),
}

impl From<LimitError> for ApiError {
    fn from(error: LimitError) -> Self {
        match error {
            LimitError::Suspended { .. } => ApiError::Suspended(error.to_string()),
            LimitError::Exceeded {
                limit,
                message,
                retry_after_secs,
            } => ApiError::LimitExceeded {
                limit,
                message,
                retry_after_secs,
            },
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::Suspended(_) => StatusCode::FORBIDDEN,
            ApiError::InvalidEnvelope(_) | ApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::UrlTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::TooManyConnections { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::LimitExceeded { limit, .. } => match limit {
                Limit::MaxPayloadBytes => StatusCode::PAYLOAD_TOO_LARGE,
                Limit::AllowedTargets => StatusCode::FORBIDDEN,
                Limit::MaxConnections
                | Limit::MaxConnectionsPerUser
                | Limit::PublishesPerSecond => StatusCode::TOO_MANY_REQUESTS,
            },
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::InvalidEnvelope(_) => "invalid_envelope",
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::TooLarge(_) => "payload_too_large",
            ApiError::NotFound(_) => "not_found",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Busy { .. } => "busy",
            ApiError::UrlTooLong(_) => "url_too_long",
            ApiError::TooManyConnections { .. } => "too_many_connections",
            ApiError::Suspended(_) => "tenant_suspended",
            ApiError::LimitExceeded { .. } => "limit_exceeded",
            ApiError::Internal(_) => "internal",
            ApiError::BadGateway(_) => "bad_gateway",
            ApiError::GatewayTimeout(_) => "gateway_timeout",
        }
    }

    /// The answer's body: `{"error": code, "message": text}`, plus `"limit"` for a tenant
    /// setting.
    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({"error": self.code(), "message": self.to_string()});
        if let ApiError::LimitExceeded { limit, .. } = self {
            body["limit"] = json!(limit.key());
        }
        body
    }
}

/// The answer to a path no route serves: 404 `not_found`, "no such endpoint".
pub async fn no_such_endpoint() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(self.body())).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthorized(_) => {
                headers.insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer"),
                );
            }
            ApiError::Busy {
                retry_after_secs, ..
            }
            | ApiError::TooManyConnections {
                retry_after_secs, ..
            }
            | ApiError::LimitExceeded {
                retry_after_secs: Some(retry_after_secs),
                ..
            } => {
                headers.insert(
                    axum::http::header::RETRY_AFTER,
                    HeaderValue::from(*retry_after_secs),
                );
            }
            _ => {}
        }
        response
    }
}

/// Whether reading a body failed on the size limit (`DefaultBodyLimit` or `to_bytes`'s).
pub fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = current.source();
    }
    false
}

/// Reads a request body of at most `max` bytes: 413 `payload_too_large` beyond it, and
/// `invalid("body: …")` when it fails to arrive.
pub async fn read_body(
    body: axum::body::Body,
    max: usize,
    invalid: impl FnOnce(String) -> ApiError,
) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, max).await.map_err(|error| {
        if is_length_limit(&error) {
            ApiError::TooLarge(format!("body over {max} bytes"))
        } else {
            invalid(format!("body: {error}"))
        }
    })
}

/// Verifies the `Authorization: Bearer` token of a request.
pub async fn authenticate(verifier: &Verifier, headers: &HeaderMap) -> Result<Claims, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = header
        .and_then(token_from_authorization)
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
    verifier.verify(token).await.map_err(|error| {
        tracing::info!(%error, "HTTP API token refused");
        ApiError::Unauthorized("invalid token".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(error: ApiError) -> (StatusCode, HeaderMap, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        (status, headers, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn limits_answer_with_their_key_status_and_retry_after() {
        let rate = LimitError::Exceeded {
            limit: Limit::PublishesPerSecond,
            message: "slow down".into(),
            retry_after_secs: Some(2),
        };
        let (status, headers, body) = answer(rate.into()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[axum::http::header::RETRY_AFTER], "2");
        assert_eq!(
            body,
            json!({"error":"limit_exceeded","limit":"publishesPerSecond","message":"slow down"})
        );
        let size = LimitError::Exceeded {
            limit: Limit::MaxPayloadBytes,
            message: "big".into(),
            retry_after_secs: None,
        };
        let (status, headers, body) = answer(size.into()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(!headers.contains_key(axum::http::header::RETRY_AFTER));
        assert_eq!(body["limit"], "maxPayloadBytes");
        let suspended = LimitError::Suspended {
            tenant: switchboard_model::TenantId::parse("acme").unwrap(),
        };
        let (status, _, body) = answer(suspended.into()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["error"], "tenant_suspended");
    }

    #[tokio::test]
    async fn the_edges_own_failures_answer_with_their_codes() {
        let cases = [
            (ApiError::Internal("x".into()), 500, "internal"),
            (ApiError::BadGateway("x".into()), 502, "bad_gateway"),
            (ApiError::GatewayTimeout("x".into()), 504, "gateway_timeout"),
            (no_such_endpoint().await, 404, "not_found"),
        ];
        for (error, status, code) in cases {
            let message = error.to_string();
            let (answered, _, body) = answer(error).await;
            assert_eq!(answered.as_u16(), status);
            assert_eq!(body, json!({"error": code, "message": message}));
        }
    }
}
