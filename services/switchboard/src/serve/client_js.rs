//! Dev mode only: `GET /switchboard-client.js`, the client library (`clients/js`) as one ES
//! module, which the demo page imports.
//!
//! The file is the bundle of `clients/js`, committed so the binary builds without Node;
//! `clients/js`'s tests (`scripts/client-test.sh`) fail when it differs from a fresh build.

use axum::http::header;
use axum::response::IntoResponse;

const CLIENT_JS: &str = include_str!("switchboard-client.js");

/// The client library as an ES module.
pub async fn get() -> impl IntoResponse {
    script(CLIENT_JS)
}

/// A JavaScript file (the library, the demo's service worker), `no-cache` so a rebuilt
/// binary's copy is picked up at once.
pub fn script(text: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_the_client_library_as_an_es_module() {
        let response = get().await.into_response();
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("function createClient("),
            "the bundle of clients/js"
        );
        assert!(text.contains("export {"), "an ES module");
    }
}
