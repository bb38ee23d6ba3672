//! `ApiGatewayPoster`: the `ConnectionPoster` port on API Gateway's management API
//! (`PostToConnection`), or on anything wire-compatible with it (the `switchboard`
//! binary's local `@connections`).

use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::operation::delete_connection::DeleteConnectionError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_apigatewaymanagement::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::retry::{ErrorKind, RetryConfig};
use aws_smithy_types::timeout::TimeoutConfig;
use switchboard_core::poster::{ConnectionPoster, Frame, PostError};
use switchboard_model::ConnectionId;

/// Default time one `PostToConnection` attempt may take before it counts as
/// [`PostError::Timeout`]: the publisher's time budget counts on it
/// ([`switchboard_core::publisher::POST_ATTEMPT_TIMEOUT`]).
pub const DEFAULT_POST_TIMEOUT: Duration = switchboard_core::publisher::POST_ATTEMPT_TIMEOUT;
/// Default time to establish the HTTP connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Posts frames with `PostToConnection`.
///
/// The client built by [`ApiGatewayPoster::new`] has the SDK's own retries **disabled**:
/// the core publisher retries throttled, failed and timed-out posts itself, with
/// exponential backoff and jitter, and counts them; SDK retries underneath would multiply
/// attempts and hide them from its accounting. Each attempt is bounded by an operation
/// attempt timeout (default 5 s).
#[derive(Debug, Clone)]
pub struct ApiGatewayPoster {
    client: Client,
}

impl ApiGatewayPoster {
    /// A poster for the management API at `endpoint`: its base URL including the stage,
    /// e.g. `https://abc123.execute-api.eu-west-1.amazonaws.com/main` or
    /// `http://127.0.0.1:8080/main`. Region and credentials come from `sdk`.
    pub fn new(sdk: &SdkConfig, endpoint: &str) -> Self {
        Self::with_timeout(sdk, endpoint, DEFAULT_POST_TIMEOUT)
    }

    /// Like [`ApiGatewayPoster::new`] with another per-attempt timeout.
    pub fn with_timeout(sdk: &SdkConfig, endpoint: &str, attempt_timeout: Duration) -> Self {
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(endpoint.trim_end_matches('/'))
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(attempt_timeout)
                    .connect_timeout(DEFAULT_CONNECT_TIMEOUT.min(attempt_timeout))
                    .build(),
            )
            .build();
        Self {
            client: Client::from_conf(config),
        }
    }

    /// Wraps a client configured elsewhere (its retry and timeout settings are kept).
    pub fn from_client(client: Client) -> Self {
        Self { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

#[async_trait]
impl ConnectionPoster for ApiGatewayPoster {
    async fn post(&self, connection: &ConnectionId, frame: &Frame) -> Result<(), PostError> {
        self.client
            .post_to_connection()
            .connection_id(connection.as_str())
            .data(Blob::new(frame.as_str().as_bytes()))
            .send()
            .await
            .map(|_| ())
            .map_err(map_post_error)
    }

    /// `DeleteConnection`; a connection already gone (410) counts as closed.
    async fn close(&self, connection: &ConnectionId) -> Result<(), PostError> {
        match self
            .client
            .delete_connection()
            .connection_id(connection.as_str())
            .send()
            .await
            .map_err(map_delete_error)
        {
            Ok(_) | Err(PostError::Gone) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// The modelled exceptions of the management calls (`PostToConnection`, `DeleteConnection`).
trait ManagementException: std::error::Error + 'static {
    fn is_gone(&self) -> bool;
    fn is_throttled(&self) -> bool;
    fn is_forbidden(&self) -> bool;
    fn is_payload_too_large(&self) -> bool;
}

/// Both management errors model the same exceptions; only a post can be too large.
macro_rules! management_exception {
    ($error:ty, $payload_too_large:expr) => {
        impl ManagementException for $error {
            fn is_gone(&self) -> bool {
                self.is_gone_exception()
            }
            fn is_throttled(&self) -> bool {
                self.is_limit_exceeded_exception()
            }
            fn is_forbidden(&self) -> bool {
                self.is_forbidden_exception()
            }
            fn is_payload_too_large(&self) -> bool {
                $payload_too_large(self)
            }
        }
    };
}

management_exception!(
    PostToConnectionError,
    PostToConnectionError::is_payload_too_large_exception
);
management_exception!(DeleteConnectionError, |_: &DeleteConnectionError| false);

/// Maps a management call's failure by error kind: the modelled exceptions first, then
/// the HTTP status of any other answer, then the kind of transport failure.
fn map_management_error<E: ManagementException>(error: SdkError<E, HttpResponse>) -> PostError {
    let detail = || DisplayErrorContext(&error).to_string();
    match &error {
        SdkError::ServiceError(service) => {
            let err = service.err();
            if err.is_gone() {
                PostError::Gone
            } else if err.is_throttled() {
                PostError::Throttled
            } else if err.is_payload_too_large() {
                PostError::PayloadTooLarge
            } else if err.is_forbidden() {
                PostError::Fatal(detail())
            } else {
                from_status(service.raw().status().as_u16(), detail())
            }
        }
        _ => map_transport_error(&error),
    }
}

/// Maps a `DeleteConnection` failure ([`map_management_error`]).
pub fn map_delete_error(error: SdkError<DeleteConnectionError, HttpResponse>) -> PostError {
    map_management_error(error)
}

/// Maps a `PostToConnection` failure ([`map_management_error`]).
pub fn map_post_error(error: SdkError<PostToConnectionError, HttpResponse>) -> PostError {
    map_management_error(error)
}

/// Any failure but a modelled service error: the HTTP status of an unmodelled answer,
/// else the kind of transport failure.
fn map_transport_error<E>(error: &SdkError<E, HttpResponse>) -> PostError
where
    E: std::error::Error + 'static,
{
    let detail = || DisplayErrorContext(error).to_string();
    match error {
        SdkError::ServiceError(service) => from_status(service.raw().status().as_u16(), detail()),
        SdkError::ResponseError(response) => {
            from_status(response.raw().status().as_u16(), detail())
        }
        SdkError::TimeoutError(_) => PostError::Timeout,
        SdkError::DispatchFailure(failure) => {
            if failure.is_timeout() {
                PostError::Timeout
            } else if failure.is_io() {
                PostError::Transient(detail())
            } else if failure.is_user() {
                PostError::Fatal(detail())
            } else {
                match failure.as_other() {
                    Some(ErrorKind::ThrottlingError) => PostError::Throttled,
                    Some(ErrorKind::ClientError) => PostError::Fatal(detail()),
                    _ => PostError::Transient(detail()),
                }
            }
        }
        // Construction failures (invalid input or configuration) and anything new.
        _ => PostError::Fatal(detail()),
    }
}

/// The publisher's view of an HTTP status from the management API.
pub fn from_status(status: u16, detail: String) -> PostError {
    match status {
        410 => PostError::Gone,
        429 => PostError::Throttled,
        413 => PostError::PayloadTooLarge,
        500..=599 => PostError::Transient(detail),
        _ => PostError::Fatal(detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_post_errors() {
        assert_eq!(from_status(410, String::new()), PostError::Gone);
        assert_eq!(from_status(429, String::new()), PostError::Throttled);
        assert_eq!(from_status(413, String::new()), PostError::PayloadTooLarge);
        assert!(matches!(
            from_status(502, "x".into()),
            PostError::Transient(_)
        ));
        assert!(matches!(from_status(403, "x".into()), PostError::Fatal(_)));
        assert!(matches!(from_status(400, "x".into()), PostError::Fatal(_)));
    }
}
