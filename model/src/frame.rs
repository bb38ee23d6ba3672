//! What travels on a client's WebSocket (docs/design.md: Messages; The one-machine binary).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A delivered message as the client receives it: exactly `{"id": …, "data": …}`, or
/// `{"id": …, "cursor": …, "data": …}` when the message was recorded in history.
#[derive(Debug, Serialize)]
pub struct DeliveredFrame<'a> {
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<&'a str>,
    pub data: &'a Value,
}

impl DeliveredFrame<'_> {
    /// The frame's JSON text.
    pub fn to_json(&self) -> String {
        // Serializing a `&str` and a `Value` cannot fail; fall back to a valid frame anyway.
        serde_json::to_string(self)
            .unwrap_or_else(|_| format!("{{\"id\":{:?},\"data\":null}}", self.id))
    }
}

/// An action a client sends on its socket (`$default` route).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAction {
    Ping,
    WhoAmI,
    /// `{"action":"resume","since":"<cursor>"}`: the recorded messages after `since`.
    Resume {
        since: String,
    },
    /// `{"action":"refresh","token":"<jwt>"}` (docs/design.md: Token expiry and refresh): a new
    /// token for the same tenant and user extends the connection's life. A `refresh` without a
    /// string `token` is `Unknown`.
    Refresh {
        token: String,
    },
    /// `{"action":"push_subscribe","subscription":{…}}` (docs/design.md: Web Push): register
    /// the browser's `PushSubscription` as a device of the connection's user. The
    /// subscription is validated by the caller (`Null` when absent).
    PushSubscribe {
        subscription: Value,
    },
    /// `{"action":"push_unsubscribe","id":"<device id>"}`: remove one of the user's devices
    /// (an absent or non-string `id` is the empty string, refused by the caller).
    PushUnsubscribe {
        id: String,
    },
    Unknown,
}

impl ClientAction {
    /// Reads a client's text frame; anything that is not a known action is `Unknown`.
    pub fn parse(text: &str) -> Self {
        #[derive(Deserialize)]
        struct Raw {
            action: String,
            #[serde(default)]
            since: Option<Value>,
            token: Option<String>,
            #[serde(default)]
            subscription: Option<Value>,
            #[serde(default)]
            id: Option<Value>,
        }
        match serde_json::from_str::<Raw>(text) {
            Ok(raw) if raw.action == "ping" => ClientAction::Ping,
            Ok(raw) if raw.action == "whoami" => ClientAction::WhoAmI,
            // A missing or non-string `since` is an invalid cursor, answered as such.
            Ok(raw) if raw.action == "resume" => ClientAction::Resume {
                since: match raw.since {
                    Some(Value::String(since)) => since,
                    _ => String::new(),
                },
            },
            Ok(Raw {
                action,
                token: Some(token),
                ..
            }) if action == "refresh" => ClientAction::Refresh { token },
            Ok(raw) if raw.action == "push_subscribe" => ClientAction::PushSubscribe {
                subscription: raw.subscription.unwrap_or(Value::Null),
            },
            Ok(raw) if raw.action == "push_unsubscribe" => ClientAction::PushUnsubscribe {
                id: match raw.id {
                    Some(Value::String(id)) => id,
                    _ => String::new(),
                },
            },
            _ => ClientAction::Unknown,
        }
    }
}

/// The `error` of a `{"type":"error"}` reply: every code either edge sends, one list for
/// `serve`, the Lambdas and the AsyncAPI document (openapi/asyncapi.yaml, `ErrorReply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Not an action this server knows (or a `refresh` without a string `token`).
    UnknownAction,
    /// A `resume` whose `since` is missing or not a cursor.
    InvalidCursor,
    /// The history store could not be read (retry the `resume`).
    HistoryUnavailable,
    /// A `resume` whose replay failed with an error a retry cannot fix (the Lambda edge).
    ResumeFailed,
    /// A `refresh` whose token does not verify.
    InvalidToken,
    /// A `refresh` whose token names another tenant or user than the connection's.
    IdentityMismatch,
    /// A `refresh` whose new expiry could not be recorded.
    RefreshFailed,
    /// A `refresh` where in-band refresh is not available.
    RefreshUnavailable,
    /// A `push_subscribe` or `push_unsubscribe` that is malformed (with a `message`).
    BadRequest,
    /// A `push_unsubscribe` of a device the user does not have.
    UnknownDevice,
    /// A push action where Web Push is not configured.
    PushUnavailable,
    /// The device store could not be read or written (retry later).
    DevicesUnavailable,
}

impl ErrorCode {
    /// Every code, in the order the AsyncAPI document lists them.
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::UnknownAction,
        ErrorCode::InvalidCursor,
        ErrorCode::HistoryUnavailable,
        ErrorCode::ResumeFailed,
        ErrorCode::InvalidToken,
        ErrorCode::IdentityMismatch,
        ErrorCode::RefreshFailed,
        ErrorCode::RefreshUnavailable,
        ErrorCode::BadRequest,
        ErrorCode::UnknownDevice,
        ErrorCode::PushUnavailable,
        ErrorCode::DevicesUnavailable,
    ];

    /// The code as it travels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownAction => "unknown_action",
            ErrorCode::InvalidCursor => "invalid_cursor",
            ErrorCode::HistoryUnavailable => "history_unavailable",
            ErrorCode::ResumeFailed => "resume_failed",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::IdentityMismatch => "identity_mismatch",
            ErrorCode::RefreshFailed => "refresh_failed",
            ErrorCode::RefreshUnavailable => "refresh_unavailable",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownDevice => "unknown_device",
            ErrorCode::PushUnavailable => "push_unavailable",
            ErrorCode::DevicesUnavailable => "devices_unavailable",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The server's answer to a client action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerReply {
    Pong,
    #[serde(rename = "whoami")]
    WhoAmI {
        #[serde(rename = "connectionId")]
        connection_id: String,
        tenant: String,
        user: String,
    },
    /// The answer to a successful `refresh`: the connection now lives until `exp`
    /// (epoch seconds, the new token's `exp`).
    Refreshed {
        exp: i64,
    },
    Error {
        error: ErrorCode,
    },
    /// An error that says what was wrong: `{"type":"error","error":code,"message":…}` (the
    /// message names the field at fault, `subscription.keys.auth: …`).
    #[serde(rename = "error")]
    Refused {
        error: ErrorCode,
        message: String,
    },
    /// After a `push_subscribe`: the device's id (pass it to `push_unsubscribe`).
    #[serde(rename = "push_subscribed")]
    PushSubscribed {
        id: String,
    },
    /// After a `push_unsubscribe` that removed the device.
    #[serde(rename = "push_unsubscribed")]
    PushUnsubscribed,
    /// After a `resume`: how many recorded messages were sent, and whether that is all of
    /// them (false: `since` is past retention or more than the limit were missed).
    Resumed {
        count: usize,
        complete: bool,
    },
}

impl ServerReply {
    /// The reply's JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|_| "{\"type\":\"error\",\"error\":\"internal\"}".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_actions() {
        assert_eq!(
            ClientAction::parse(r#"{"action":"ping"}"#),
            ClientAction::Ping
        );
        assert_eq!(
            ClientAction::parse(r#"{"action":"whoami"}"#),
            ClientAction::WhoAmI
        );
        assert_eq!(
            ClientAction::parse(r#"{"action":"dance"}"#),
            ClientAction::Unknown
        );
        assert_eq!(ClientAction::parse("garbage"), ClientAction::Unknown);
        assert_eq!(
            ClientAction::parse(r#"{"action":"resume","since":"0001733000000000-ab"}"#),
            ClientAction::Resume {
                since: "0001733000000000-ab".into()
            }
        );
        assert_eq!(
            ClientAction::parse(r#"{"action":"resume","since":7}"#),
            ClientAction::Resume { since: "".into() }
        );
        assert_eq!(
            ClientAction::parse(r#"{"action":"refresh","token":"a.b.c"}"#),
            ClientAction::Refresh {
                token: "a.b.c".into()
            }
        );
        assert_eq!(
            ClientAction::parse(r#"{"action":"refresh"}"#),
            ClientAction::Unknown
        );
        assert_eq!(
            ClientAction::parse(r#"{"action":"refresh","token":7}"#),
            ClientAction::Unknown
        );
    }

    #[test]
    fn replies_have_spec_shape() {
        let v: Value = serde_json::from_str(&ServerReply::Pong.to_json()).unwrap();
        assert_eq!(v, json!({"type":"pong"}));
        let v: Value = serde_json::from_str(
            &ServerReply::WhoAmI {
                connection_id: "c1".into(),
                tenant: "t".into(),
                user: "u".into(),
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"type":"whoami","connectionId":"c1","tenant":"t","user":"u"})
        );
        let v: Value = serde_json::from_str(
            &ServerReply::Error {
                error: ErrorCode::UnknownAction,
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(v, json!({"type":"error","error":"unknown_action"}));
        let v: Value = serde_json::from_str(
            &ServerReply::Resumed {
                count: 3,
                complete: true,
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(v, json!({"type":"resumed","count":3,"complete":true}));
    }

    #[test]
    fn a_recorded_frame_carries_its_cursor_between_id_and_data() {
        let data = json!({"n": 1});
        let frame = DeliveredFrame {
            id: "m",
            cursor: Some("0001733000000000-00000001aabbcc"),
            data: &data,
        };
        assert_eq!(
            frame.to_json(),
            r#"{"id":"m","cursor":"0001733000000000-00000001aabbcc","data":{"n":1}}"#
        );
    }

    #[test]
    fn push_actions_and_replies_have_their_shapes() {
        assert_eq!(
            ClientAction::parse(r#"{"action":"push_subscribe","subscription":{"endpoint":"e"}}"#),
            ClientAction::PushSubscribe {
                subscription: json!({"endpoint":"e"})
            }
        );
        assert_eq!(
            ClientAction::parse(r#"{"action":"push_subscribe"}"#),
            ClientAction::PushSubscribe {
                subscription: Value::Null
            }
        );
        assert_eq!(
            ClientAction::parse(r#"{"action":"push_unsubscribe","id":"abc"}"#),
            ClientAction::PushUnsubscribe { id: "abc".into() }
        );
        assert_eq!(
            ClientAction::parse(r#"{"action":"push_unsubscribe","id":7}"#),
            ClientAction::PushUnsubscribe { id: String::new() }
        );
        let shape = |reply: ServerReply| serde_json::from_str::<Value>(&reply.to_json()).unwrap();
        assert_eq!(
            shape(ServerReply::PushSubscribed { id: "d1".into() }),
            json!({"type":"push_subscribed","id":"d1"})
        );
        assert_eq!(
            shape(ServerReply::PushUnsubscribed),
            json!({"type":"push_unsubscribed"})
        );
        assert_eq!(
            shape(ServerReply::Refused {
                error: ErrorCode::BadRequest,
                message: "id: required".into()
            }),
            json!({"type":"error","error":"bad_request","message":"id: required"})
        );
    }

    #[test]
    fn the_asyncapi_document_lists_every_error_code_and_no_other() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/asyncapi.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let reply = &text[text.find("    ErrorReply:").unwrap()..];
        let listed: Vec<&str> = reply[reply.find("enum:").unwrap()..]
            .lines()
            .skip(1)
            .map_while(|line| line.trim().strip_prefix("- "))
            .collect();
        let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(listed, codes, "openapi/asyncapi.yaml ErrorReply.error.enum");
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(ServerReply::Error { error: code }).unwrap();
            assert_eq!(json, json!({"type": "error", "error": code.as_str()}));
        }
    }

    #[test]
    fn refreshed_has_its_shape() {
        let v: Value =
            serde_json::from_str(&ServerReply::Refreshed { exp: 1_900_000_000 }.to_json()).unwrap();
        assert_eq!(v, json!({"type":"refreshed","exp":1_900_000_000}));
    }
}
