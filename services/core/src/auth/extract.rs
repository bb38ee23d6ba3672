//! Where a token sits in a request (docs/design.md: Identity; Publish API). Pure functions shared
//! by every edge: the local WebSocket gateway, the Lambda authorizer and the publish API.
//!
//! - WebSocket handshake: query parameter `token` (percent-decoded), or the two
//!   `Sec-WebSocket-Protocol` entries `bearer, <jwt>`; when the client offered `bearer`,
//!   the handshake must answer `Sec-WebSocket-Protocol: bearer` (browsers drop the
//!   connection otherwise), whichever place the token was taken from.
//! - HTTP API: `Authorization: Bearer <jwt>`.
//! - The handshake URL is at most [`MAX_WEBSOCKET_URL_CHARS`] long, as on API Gateway, so a
//!   token too long for the query must travel in the subprotocol (whose limit is the
//!   verifier's `MAX_TOKEN_BYTES`, 8 KiB).

/// The subprotocol a client offers before its token, and the one the server answers.
pub const BEARER_SUBPROTOCOL: &str = "bearer";

/// Longest WebSocket URL, in characters, that API Gateway accepts: "Length, in characters,
/// of the URL for a WebSocket API", 4096, not adjustable
/// (<https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html>).
/// AWS does not say whether the scheme and host count; [`websocket_url_chars`] counts
/// them (the stricter reading, and the one the client library uses to pick the
/// subprotocol). AWS does not document the status either; `switchboard serve` answers 414.
pub const MAX_WEBSOCKET_URL_CHARS: usize = 4096;

/// The length, in characters, of the URL a WebSocket client opened: `<scheme>://`, the
/// `Host` header and the request target (path and query as sent, percent-encoded).
pub fn websocket_url_chars(scheme: &str, host: Option<&str>, target: &str) -> usize {
    scheme.chars().count()
        + "://".len()
        + host.map_or(0, |h| h.chars().count())
        + target.chars().count()
}

/// Where a handshake token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Query,
    Subprotocol,
}

/// A token found in a WebSocket handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeToken {
    pub token: String,
    pub source: TokenSource,
    /// `Some("bearer")` when the client offered the `bearer` subprotocol: the value of
    /// the `Sec-WebSocket-Protocol` response header.
    pub answer_subprotocol: Option<&'static str>,
}

/// The `token` parameter of a raw query string (without the leading `?`),
/// percent-decoded. The first non-empty occurrence wins.
pub fn token_from_query(query: &str) -> Option<String> {
    let query = query.strip_prefix('?').unwrap_or(query);
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, value)| key == "token" && !value.trim().is_empty())
        .map(|(_, value)| value.trim().to_string())
}

/// The token of a `Sec-WebSocket-Protocol` value offering `bearer, <jwt>`: the entry
/// right after `bearer`. Several header lines may be joined with `,` first.
pub fn token_from_subprotocol(header: &str) -> Option<String> {
    let mut entries = header.split(',').map(str::trim);
    entries.find(|entry| *entry == BEARER_SUBPROTOCOL)?;
    entries
        .next()
        .filter(|token| !token.is_empty())
        .map(str::to_string)
}

/// Whether a `Sec-WebSocket-Protocol` value offers `bearer`.
pub fn offers_bearer(header: &str) -> bool {
    header
        .split(',')
        .any(|entry| entry.trim() == BEARER_SUBPROTOCOL)
}

/// The token of a WebSocket handshake: query `token` first, then the subprotocol pair.
/// `query` is the raw query string, `subprotocol` the `Sec-WebSocket-Protocol` value.
pub fn token_from_handshake(
    query: Option<&str>,
    subprotocol: Option<&str>,
) -> Option<HandshakeToken> {
    let answer_subprotocol = subprotocol
        .filter(|h| offers_bearer(h))
        .map(|_| BEARER_SUBPROTOCOL);
    if let Some(token) = query.and_then(token_from_query) {
        return Some(HandshakeToken {
            token,
            source: TokenSource::Query,
            answer_subprotocol,
        });
    }
    subprotocol
        .and_then(token_from_subprotocol)
        .map(|token| HandshakeToken {
            token,
            source: TokenSource::Subprotocol,
            answer_subprotocol,
        })
}

/// The token of an `Authorization: Bearer <jwt>` value (scheme case-insensitive).
pub fn token_from_authorization(header: &str) -> Option<&str> {
    let header = header.trim();
    let (scheme, token) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty() && !token.contains(' ')).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_token_is_found_and_percent_decoded() {
        assert_eq!(token_from_query("token=a.b.c"), Some("a.b.c".into()));
        assert_eq!(
            token_from_query("?x=1&token=a.b.c&y=2"),
            Some("a.b.c".into())
        );
        assert_eq!(token_from_query("token=a%2Eb%2Ec"), Some("a.b.c".into()));
        assert_eq!(token_from_query("token=&token=x.y.z"), Some("x.y.z".into()));
    }

    #[test]
    fn query_without_token_yields_none() {
        assert_eq!(token_from_query(""), None);
        assert_eq!(token_from_query("tok=a.b.c"), None);
        assert_eq!(token_from_query("token="), None);
        assert_eq!(token_from_query("xtoken=a"), None);
    }

    #[test]
    fn subprotocol_pair_gives_token() {
        assert_eq!(
            token_from_subprotocol("bearer, a.b.c"),
            Some("a.b.c".into())
        );
        assert_eq!(token_from_subprotocol("bearer,a.b.c"), Some("a.b.c".into()));
        assert_eq!(
            token_from_subprotocol("json, bearer, a.b.c"),
            Some("a.b.c".into())
        );
    }

    #[test]
    fn subprotocol_without_pair_yields_none() {
        assert_eq!(token_from_subprotocol("bearer"), None);
        assert_eq!(token_from_subprotocol("bearer, "), None);
        assert_eq!(token_from_subprotocol("a.b.c"), None);
        assert_eq!(token_from_subprotocol("a.b.c, bearer"), None);
        assert_eq!(token_from_subprotocol("Bearer, a.b.c"), None);
    }

    #[test]
    fn handshake_prefers_query_and_answers_bearer_when_offered() {
        let t = token_from_handshake(Some("token=q.q.q"), None).unwrap();
        assert_eq!(t.token, "q.q.q");
        assert_eq!(t.source, TokenSource::Query);
        assert_eq!(t.answer_subprotocol, None);

        let t = token_from_handshake(None, Some("bearer, s.s.s")).unwrap();
        assert_eq!(t.token, "s.s.s");
        assert_eq!(t.source, TokenSource::Subprotocol);
        assert_eq!(t.answer_subprotocol, Some("bearer"));

        let t = token_from_handshake(Some("token=q.q.q"), Some("bearer, s.s.s")).unwrap();
        assert_eq!(t.source, TokenSource::Query);
        assert_eq!(t.answer_subprotocol, Some("bearer"));

        assert_eq!(token_from_handshake(Some("a=1"), Some("json")), None);
        assert_eq!(token_from_handshake(None, None), None);
    }

    #[test]
    fn websocket_url_counts_scheme_host_and_target() {
        let target = "/main?token=a.b.c";
        let url = "ws://127.0.0.1:8080/main?token=a.b.c";
        assert_eq!(
            websocket_url_chars("ws", Some("127.0.0.1:8080"), target),
            url.len()
        );
        assert_eq!(
            websocket_url_chars("wss", None, target),
            "wss://".len() + target.len()
        );
        assert_eq!(MAX_WEBSOCKET_URL_CHARS, 4096);
    }

    #[test]
    fn authorization_bearer() {
        assert_eq!(token_from_authorization("Bearer a.b.c"), Some("a.b.c"));
        assert_eq!(token_from_authorization("bearer   a.b.c "), Some("a.b.c"));
        assert_eq!(token_from_authorization("Basic dXNlcjpwdw=="), None);
        assert_eq!(token_from_authorization("Bearer"), None);
        assert_eq!(token_from_authorization("Bearer "), None);
        assert_eq!(token_from_authorization("Bearer a b"), None);
        assert_eq!(token_from_authorization("a.b.c"), None);
    }
}
