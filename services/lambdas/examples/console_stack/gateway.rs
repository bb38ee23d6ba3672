//! The fake API Gateway HTTP API in front of the `publish-api` function: each request that
//! matches one of the stack's routes ([`crate::routes`]) becomes a payload-2.0 event (the
//! shape of tests/fixtures/publish_api_request.json, stage `$default`, `routeKey` and
//! `pathParameters` of the route) and the function's answer
//! (`statusCode`, `headers`, `cookies`, `body`) goes back as HTTP. Where API Gateway itself
//! answers, it answers as API Gateway does: 404 `{"message":"Not Found"}` for a request no
//! route matches, 413 over its 10 MB payload limit, 500
//! `{"message":"Internal Server Error"}` for a function error or an answer it cannot read,
//! 503 `{"message":"Service Unavailable"}` after the integration's 30 s, 429 when throttled.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::encodings::Body as LambdaBody;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::routes::Route;
use crate::runtime::{Function, InvokeError};

/// API Gateway's payload limit.
const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;
/// The HTTP API's integration timeout.
const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);

static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

/// The function and the routes that lead to it.
#[derive(Clone)]
pub struct HttpApi {
    pub function: Arc<Function>,
    pub routes: Arc<Vec<Route>>,
}

/// The HTTP API: every request that matches a route to the function.
pub fn router(api: HttpApi) -> axum::Router {
    axum::Router::new().fallback(forward).with_state(api)
}

fn gateway_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}

async fn forward(State(api): State<HttpApi>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let Some((route, parameters)) = api
        .routes
        .iter()
        .find_map(|r| Some((r, r.matches(parts.method.as_str(), path)?)))
    else {
        return gateway_error(StatusCode::NOT_FOUND, "Not Found");
    };
    let route_key = route.key();
    let parameters: Map<String, Value> = parameters
        .into_iter()
        .map(|(name, value)| (name, Value::String(value)))
        .collect();
    let Ok(body) = axum::body::to_bytes(body, MAX_PAYLOAD_BYTES).await else {
        return gateway_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    let Ok(body) = String::from_utf8(body.to_vec()) else {
        // The publish API takes JSON only; a binary body would need base64 here.
        return gateway_error(StatusCode::BAD_REQUEST, "the rig forwards text bodies only");
    };
    let mut headers = Map::new();
    for name in parts.headers.keys() {
        let values: Vec<&str> = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        headers.insert(name.as_str().to_string(), values.join(",").into());
    }
    headers.insert("x-forwarded-proto".into(), "http".into());
    headers.insert("x-forwarded-for".into(), "127.0.0.1".into());
    let query = parts.uri.query().unwrap_or_default();
    let now = time::OffsetDateTime::now_utc();
    let event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "pathParameters": parameters,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "rig",
            "domainName": parts.headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1"),
            "domainPrefix": "rig",
            "http": {
                "method": parts.method.as_str(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": parts.headers.get("user-agent").and_then(|h| h.to_str().ok()).unwrap_or(""),
            },
            "requestId": format!("rig-{}", NEXT_REQUEST.fetch_add(1, Ordering::Relaxed)),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.to_string(),
            "timeEpoch": now.unix_timestamp_nanos() / 1_000_000,
        },
        "body": if body.is_empty() { Value::Null } else { Value::String(body) },
        "isBase64Encoded": false,
    });
    let payload = Bytes::from(event.to_string());
    match api.function.invoke(payload, INTEGRATION_TIMEOUT).await {
        Ok(answer) => http_response(&answer),
        Err(InvokeError::Throttled) => {
            gateway_error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests")
        }
        Err(InvokeError::Timeout(_)) => {
            gateway_error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
        }
        Err(e) => {
            tracing::warn!(error = %e, "publish-api invocation failed");
            gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

/// The function's payload-2.0 answer as HTTP.
fn http_response(answer: &[u8]) -> Response {
    let parsed: ApiGatewayV2httpResponse = match serde_json::from_slice(answer) {
        Ok(parsed) => parsed,
        Err(e) => {
            tracing::warn!(error = %e, "publish-api answer unreadable");
            return gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    };
    let body = match parsed.body {
        None | Some(LambdaBody::Empty) => Body::empty(),
        Some(LambdaBody::Text(text)) if !parsed.is_base64_encoded => Body::from(text),
        Some(LambdaBody::Binary(bytes)) => Body::from(bytes),
        Some(LambdaBody::Text(_)) => {
            tracing::warn!("publish-api answered base64, which the rig does not decode");
            return gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
        Some(_) => Body::empty(),
    };
    let status = u16::try_from(parsed.status_code)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in &parsed.headers {
        headers.append(name.clone(), value.clone());
    }
    for (name, value) in &parsed.multi_value_headers {
        if !parsed.headers.contains_key(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    for cookie in &parsed.cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(HeaderName::from_static("set-cookie"), value);
        }
    }
    response
}
