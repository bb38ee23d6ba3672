//! The message envelope (docs/design.md: Messages): the body of an SQS message and of
//! `POST /v1/messages`.
//!
//! Parsing goes through [`Envelope::parse`], which checks every field and answers with an
//! [`EnvelopeError`] naming the first field that is wrong (`target.users: 1 to 100 users`).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::ids::{ConnectionId, MessageId, TenantId, UserId};
use crate::push::Push;

/// Largest frame (`{"id":…,"data":…}` as sent to a client) Switchboard delivers: 128 KiB,
/// API Gateway's WebSocket message limit.
pub const MAX_FRAME_BYTES: usize = 128 * 1024;
/// Most users or connection ids one `users` / `connections` target may name.
pub const MAX_USERS_PER_TARGET: usize = 100;

/// Who a message is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Target {
    /// Every connection of these users (1–100) in one tenant.
    Users {
        tenant: TenantId,
        users: Vec<UserId>,
    },
    /// Every connection of one tenant.
    Tenant { tenant: TenantId },
    /// These connections (1–100), when they belong to the tenant.
    Connections {
        tenant: TenantId,
        #[serde(rename = "connectionIds")]
        connection_ids: Vec<ConnectionId>,
    },
    /// Every connection of every tenant (admins only).
    Broadcast,
}

/// The kind of a [`Target`]: its `type` word, as written in JSON, logged and counted.
///
/// A new target type is a variant here and in [`Target`]; the compiler then points to
/// every `match` that must decide about it (docs/design.md: Messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetKind {
    Users,
    Tenant,
    Connections,
    Broadcast,
}

impl TargetKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [TargetKind; 4] = [
        TargetKind::Users,
        TargetKind::Tenant,
        TargetKind::Connections,
        TargetKind::Broadcast,
    ];

    /// The kind's `type` word.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Users => "users",
            TargetKind::Tenant => "tenant",
            TargetKind::Connections => "connections",
            TargetKind::Broadcast => "broadcast",
        }
    }

    /// The kind whose `type` word is `word`; `None` for any other text.
    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == word)
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TargetKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TargetKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = String::deserialize(deserializer)?;
        Self::parse(&word).ok_or_else(|| {
            serde::de::Error::custom(format!("{word:?} is not one of {}", kind_list()))
        })
    }
}

/// `users, tenant, connections, broadcast`: the kinds, as error messages list them.
fn kind_list() -> String {
    TargetKind::ALL.map(TargetKind::as_str).join(", ")
}

impl Target {
    /// The kind of this target (its `type` word).
    pub fn kind(&self) -> TargetKind {
        match self {
            Target::Users { .. } => TargetKind::Users,
            Target::Tenant { .. } => TargetKind::Tenant,
            Target::Connections { .. } => TargetKind::Connections,
            Target::Broadcast => TargetKind::Broadcast,
        }
    }

    /// The tenant a targeted message stays within; `None` for a broadcast.
    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            Target::Users { tenant, .. }
            | Target::Tenant { tenant }
            | Target::Connections { tenant, .. } => Some(tenant),
            Target::Broadcast => None,
        }
    }
}

/// A validated message envelope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<MessageId>,
    pub target: Target,
    pub data: Value,
    #[serde(
        rename = "expiresAt",
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub expires_at: Option<OffsetDateTime>,
    /// What users of a `users` or `tenant` target with no live connection are shown as a
    /// Web Push notification (docs/design.md: Web Push).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<Push>,
}

/// Why a body is not a valid envelope: the field at fault and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct EnvelopeError {
    /// Dotted path of the offending field (`target.users[2]`), or `body` for the whole.
    pub field: String,
    pub problem: String,
}

/// A frame over [`MAX_FRAME_BYTES`] (API Gateway refuses larger posts): the one place the
/// limit is checked, by the publish API and the publisher alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("frame is {len} bytes, over the {MAX_FRAME_BYTES}-byte limit")]
pub struct FrameTooLarge {
    pub len: usize,
}

/// `frame` unchanged when it fits within [`MAX_FRAME_BYTES`].
pub fn within_frame_limit(frame: &str) -> Result<&str, FrameTooLarge> {
    if frame.len() > MAX_FRAME_BYTES {
        return Err(FrameTooLarge { len: frame.len() });
    }
    Ok(frame)
}

impl EnvelopeError {
    pub(crate) fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl Envelope {
    /// Parses and validates an envelope from raw bytes.
    pub fn parse(body: &[u8]) -> Result<Self, EnvelopeError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| EnvelopeError::new("body", format!("not valid JSON ({e})")))?;
        Self::from_value(value)
    }

    /// Whether `body` claims to be an envelope: any JSON object does (docs/design.md: The
    /// one-machine binary), so a mistyped envelope (`{"Target":…}`) is dead-lettered, never sent
    /// raw. Only bodies that are not JSON objects are what `LEGACY_BROADCAST` sends verbatim.
    pub fn looks_like_envelope(body: &[u8]) -> bool {
        matches!(serde_json::from_slice::<Value>(body), Ok(Value::Object(_)))
    }

    /// Validates an already-parsed JSON value.
    pub fn from_value(value: Value) -> Result<Self, EnvelopeError> {
        let Value::Object(mut map) = value else {
            return Err(EnvelopeError::new("body", "must be a JSON object"));
        };
        if let Some(unknown) = map
            .keys()
            .find(|k| !matches!(k.as_str(), "id" | "target" | "data" | "expiresAt" | "push"))
        {
            return Err(EnvelopeError::new(
                unknown.clone(),
                "unknown field (expected id, target, data, expiresAt, push)",
            ));
        }
        let id = match map.remove("id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => {
                Some(MessageId::parse(id).map_err(|e| EnvelopeError::new("id", e.to_string()))?)
            }
            Some(_) => return Err(EnvelopeError::new("id", "must be a string")),
        };
        let target = match map.remove("target") {
            Some(Value::Object(target)) => parse_target(target)?,
            Some(_) => return Err(EnvelopeError::new("target", "must be an object")),
            None => return Err(EnvelopeError::new("target", "required")),
        };
        let data = map
            .remove("data")
            .ok_or_else(|| EnvelopeError::new("data", "required"))?;
        let expires_at = match map.remove("expiresAt") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => {
                Some(OffsetDateTime::parse(&text, &Rfc3339).map_err(|_| {
                    EnvelopeError::new("expiresAt", "must be an RFC 3339 timestamp")
                })?)
            }
            Some(_) => {
                return Err(EnvelopeError::new(
                    "expiresAt",
                    "must be an RFC 3339 timestamp string",
                ))
            }
        };
        let push = match map.remove("push") {
            None | Some(Value::Null) => None,
            Some(value) => Some(parse_push(
                value,
                &target,
                id.as_ref().map(MessageId::as_str),
            )?),
        };
        Ok(Envelope {
            id,
            target,
            data,
            expires_at,
            push,
        })
    }

    /// Whether the message has expired at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The text frame a client receives: exactly `{"id": <id>, "data": <data>}`.
    pub fn frame(&self, id: &str) -> String {
        self.frame_with_cursor(id, None)
    }

    /// [`Envelope::frame_with_cursor`], refused over [`MAX_FRAME_BYTES`].
    pub fn checked_frame(&self, id: &str, cursor: Option<&str>) -> Result<String, FrameTooLarge> {
        let frame = self.frame_with_cursor(id, cursor);
        within_frame_limit(&frame)?;
        Ok(frame)
    }

    /// The frame of a message recorded in history: `{"id", "cursor", "data"}`.
    pub fn frame_with_cursor(&self, id: &str, cursor: Option<&str>) -> String {
        crate::frame::DeliveredFrame {
            id,
            cursor,
            data: &self.data,
        }
        .to_json()
    }
}

/// The `push` of a message to `target`: only `users` and `tenant` targets name users.
fn parse_push(value: Value, target: &Target, id: Option<&str>) -> Result<Push, EnvelopeError> {
    match target {
        Target::Users { tenant, .. } | Target::Tenant { tenant } => Push::parse(value, tenant, id),
        Target::Connections { .. } | Target::Broadcast => Err(EnvelopeError::new(
            "push",
            format!(
                "not allowed for {} targets (only users and tenant targets reach users)",
                target.kind()
            ),
        )),
    }
}

fn parse_target(mut target: Map<String, Value>) -> Result<Target, EnvelopeError> {
    let word = match target.remove("type") {
        Some(Value::String(word)) => word,
        Some(_) => return Err(EnvelopeError::new("target.type", "must be a string")),
        None => return Err(EnvelopeError::new("target.type", "required")),
    };
    let Some(kind) = TargetKind::parse(&word) else {
        return Err(EnvelopeError::new(
            "target.type",
            format!("must be one of {}", kind_list()),
        ));
    };
    let allowed: &[&str] = match kind {
        TargetKind::Users => &["tenant", "users"],
        TargetKind::Tenant => &["tenant"],
        TargetKind::Connections => &["tenant", "connectionIds"],
        TargetKind::Broadcast => &[],
    };
    if let Some(unknown) = target.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(EnvelopeError::new(
            format!("target.{unknown}"),
            format!("not allowed in a {kind} target"),
        ));
    }
    let parsed = match kind {
        TargetKind::Users => Target::Users {
            tenant: parse_tenant(&mut target)?,
            users: parse_list(&mut target, "users", "users", UserId::parse)?,
        },
        TargetKind::Tenant => Target::Tenant {
            tenant: parse_tenant(&mut target)?,
        },
        TargetKind::Connections => Target::Connections {
            tenant: parse_tenant(&mut target)?,
            connection_ids: parse_list(
                &mut target,
                "connectionIds",
                "connection ids",
                ConnectionId::parse,
            )?,
        },
        TargetKind::Broadcast => Target::Broadcast,
    };
    Ok(parsed)
}

fn parse_tenant(target: &mut Map<String, Value>) -> Result<TenantId, EnvelopeError> {
    match target.remove("tenant") {
        Some(Value::String(tenant)) => {
            TenantId::parse(tenant).map_err(|e| EnvelopeError::new("target.tenant", e.to_string()))
        }
        Some(_) => Err(EnvelopeError::new("target.tenant", "must be a string")),
        None => Err(EnvelopeError::new("target.tenant", "required")),
    }
}

fn parse_list<T>(
    target: &mut Map<String, Value>,
    key: &str,
    noun: &str,
    parse: impl Fn(String) -> Result<T, crate::ids::IdError>,
) -> Result<Vec<T>, EnvelopeError> {
    let field = format!("target.{key}");
    let items = match target.remove(key) {
        Some(Value::Array(items)) => items,
        Some(_) => return Err(EnvelopeError::new(field, "must be an array")),
        None => return Err(EnvelopeError::new(field, "required")),
    };
    if items.is_empty() || items.len() > MAX_USERS_PER_TARGET {
        return Err(EnvelopeError::new(
            field,
            format!("1 to {MAX_USERS_PER_TARGET} {noun}"),
        ));
    }
    let mut parsed: Vec<T> = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let Value::String(text) = item else {
            return Err(EnvelopeError::new(
                format!("{field}[{index}]"),
                "must be a string",
            ));
        };
        parsed.push(
            parse(text)
                .map_err(|e| EnvelopeError::new(format!("{field}[{index}]"), e.to_string()))?,
        );
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<Envelope, EnvelopeError> {
        Envelope::parse(value.to_string().as_bytes())
    }

    fn field_of(value: Value) -> String {
        parse(value).unwrap_err().field
    }

    #[test]
    fn spec_examples_round_trip() {
        let examples = [
            json!({"id":"m-1","target":{"type":"users","tenant":"acme","users":["alice","bob"]},
                   "data":{"any":"JSON value"},"expiresAt":"2030-01-01T00:00:00Z"}),
            json!({"target":{"type":"tenant","tenant":"acme"},"data":[1,2,3]}),
            json!({"target":{"type":"connections","tenant":"acme","connectionIds":["abc=","def="]},"data":"hi"}),
            json!({"target":{"type":"broadcast"},"data":null}),
            json!({"id":"m-2","target":{"type":"users","tenant":"acme","users":["alice"]},"data":1,
                   "push":{"title":"New message","url":"/inbox","when":"always"}}),
            json!({"target":{"type":"tenant","tenant":"acme"},"data":1,"push":{"body":"b"}}),
        ];
        for example in examples {
            let envelope = parse(example.clone()).unwrap();
            let again = serde_json::to_value(&envelope).unwrap();
            assert_eq!(again, example);
            assert_eq!(parse(again).unwrap(), envelope);
        }
    }

    #[test]
    fn frame_is_exactly_id_and_data() {
        let envelope = parse(json!({"target":{"type":"broadcast"},"data":{"k":1}})).unwrap();
        let frame: Value = serde_json::from_str(&envelope.frame("m-9")).unwrap();
        assert_eq!(frame, json!({"id":"m-9","data":{"k":1}}));
    }

    #[test]
    fn each_invalid_case_names_its_field() {
        let cases = [
            (json!([1]), "body"),
            (json!({"data":1}), "target"),
            (json!({"target":"x","data":1}), "target"),
            (json!({"target":{},"data":1}), "target.type"),
            (json!({"target":{"type":"nope"},"data":1}), "target.type"),
            (
                json!({"target":{"type":"tenant"},"data":1}),
                "target.tenant",
            ),
            (
                json!({"target":{"type":"tenant","tenant":"a#b"},"data":1}),
                "target.tenant",
            ),
            (
                json!({"target":{"type":"tenant","tenant":""},"data":1}),
                "target.tenant",
            ),
            (
                json!({"target":{"type":"users","tenant":"a","users":[]},"data":1}),
                "target.users",
            ),
            (
                json!({"target":{"type":"users","tenant":"a","users":"bob"},"data":1}),
                "target.users",
            ),
            (
                json!({"target":{"type":"users","tenant":"a","users":["ok", 3]},"data":1}),
                "target.users[1]",
            ),
            (
                json!({"target":{"type":"users","tenant":"a","users":["ok", "x".repeat(129)]},"data":1}),
                "target.users[1]",
            ),
            (
                json!({"target":{"type":"connections","tenant":"a"},"data":1}),
                "target.connectionIds",
            ),
            (
                json!({"target":{"type":"connections","tenant":"a","connectionIds":["a b"]},"data":1}),
                "target.connectionIds[0]",
            ),
            (
                json!({"target":{"type":"broadcast","tenant":"a"},"data":1}),
                "target.tenant",
            ),
            (json!({"target":{"type":"broadcast"}}), "data"),
            (json!({"target":{"type":"broadcast"},"data":1,"id":5}), "id"),
            (
                json!({"target":{"type":"broadcast"},"data":1,"id":""}),
                "id",
            ),
            (
                json!({"target":{"type":"broadcast"},"data":1,"expiresAt":"tomorrow"}),
                "expiresAt",
            ),
            (
                json!({"target":{"type":"broadcast"},"data":1,"extra":true}),
                "extra",
            ),
            (
                json!({"target":{"type":"broadcast"},"data":1,"push":{"title":"t"}}),
                "push",
            ),
            (
                json!({"target":{"type":"connections","tenant":"a","connectionIds":["c"]},
                       "data":1,"push":{"title":"t"}}),
                "push",
            ),
            (
                json!({"target":{"type":"tenant","tenant":"a"},"data":1,"push":{"title":"t","when":"x"}}),
                "push.when",
            ),
        ];
        for (case, field) in cases {
            assert_eq!(field_of(case.clone()), field, "case {case}");
        }
        assert_eq!(Envelope::parse(b"not json").unwrap_err().field, "body");
    }

    #[test]
    fn users_limit_is_one_to_one_hundred() {
        let users: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
        assert!(
            parse(json!({"target":{"type":"users","tenant":"a","users":users}, "data":1})).is_ok()
        );
        let users: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
        let err = parse(json!({"target":{"type":"users","tenant":"a","users":users}, "data":1}))
            .unwrap_err();
        assert_eq!(err.to_string(), "target.users: 1 to 100 users");
    }

    #[test]
    fn expiry_is_checked_against_now() {
        let envelope = parse(
            json!({"target":{"type":"broadcast"},"data":1,"expiresAt":"2000-01-01T00:00:00Z"}),
        )
        .unwrap();
        assert!(envelope.is_expired(OffsetDateTime::now_utc()));
        let envelope = parse(json!({"target":{"type":"broadcast"},"data":1})).unwrap();
        assert!(!envelope.is_expired(OffsetDateTime::now_utc()));
    }

    #[test]
    fn legacy_detection() {
        assert!(Envelope::looks_like_envelope(br#"{"target":1}"#));
        // A mistyped envelope is still an envelope (dead-lettered), not a legacy body.
        assert!(Envelope::looks_like_envelope(
            br#"{"Target":{"type":"broadcast"}}"#
        ));
        assert!(Envelope::looks_like_envelope(br#"{"message":"hi"}"#));
        assert!(Envelope::looks_like_envelope(br#" {} "#));
        assert!(!Envelope::looks_like_envelope(b"hello"));
        assert!(!Envelope::looks_like_envelope(b"[1,2]"));
        assert!(!Envelope::looks_like_envelope(br#""text""#));
        assert!(!Envelope::looks_like_envelope(b"42"));
    }

    proptest! {
        #[test]
        fn parser_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Envelope::parse(&bytes);
            let _ = Envelope::looks_like_envelope(&bytes);
        }

        #[test]
        fn parser_never_panics_on_json(value in arb_json()) {
            let _ = Envelope::from_value(value.clone());
            let _ = Envelope::from_value(json!({"target": value.clone(), "data": value}));
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            prop_oneof![
                Just("users".to_string()),
                Just("tenant".to_string()),
                Just("connections".to_string()),
                Just("broadcast".to_string()),
                ".{0,140}",
            ]
            .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("type".to_string()),
                        Just("tenant".to_string()),
                        Just("users".to_string()),
                        Just("connectionIds".to_string()),
                        Just("target".to_string()),
                        Just("data".to_string()),
                        Just("id".to_string()),
                        Just("expiresAt".to_string()),
                        "[a-z]{1,6}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
