//! The envelope's optional `push` object (docs/design.md: Web Push): what a user with no
//! live connection is shown, as a Web Push notification, instead of the frame.
//!
//! [`Push::parse`] checks every field (errors name `push.<field>`); [`Push::payload`] renders
//! the notification JSON the service worker receives, the one rendering both the parse-time
//! size check and the publisher use.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::envelope::EnvelopeError;
use crate::ids::TenantId;

/// Largest notification payload: RFC 8291's 4,096-byte record less its header, tag and
/// padding delimiter (the same number as `switchboard_core::webpush::MAX_PLAINTEXT_BYTES`).
pub const MAX_NOTIFICATION_BYTES: usize = 3_993;
/// Longest `push.ttl`: 28 days, what push services keep a notification at most.
pub const MAX_PUSH_TTL_SECS: u32 = 2_419_200;
/// `push.ttl` when absent: one day.
pub const DEFAULT_PUSH_TTL_SECS: u32 = 86_400;
/// What stands in for a message id the envelope does not carry when the payload's size is
/// checked at parse time (the queue's id, unknown until then, is shorter).
const ID_STAND_IN_CHARS: usize = 128;
/// What stands in for the cursor (history's cursors are 28 characters).
const CURSOR_STAND_IN_CHARS: usize = 32;

/// Which users of the target get a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum When {
    /// Only users with no live connection when the message fans out (never both).
    #[default]
    Offline,
    /// Every user of the target, connected or not.
    Always,
}

/// How urgent a notification is (RFC 8030 §5.3, the `Urgency` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Urgency {
    VeryLow,
    Low,
    #[default]
    Normal,
    High,
}

impl Urgency {
    /// The header value (and the envelope's word).
    pub const fn as_str(self) -> &'static str {
        match self {
            Urgency::VeryLow => "very-low",
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
        }
    }
}

/// A validated `push` object. Absent options stay absent (so the envelope round-trips);
/// [`Push::when`], [`Push::urgency`] and [`Push::ttl_secs`] answer the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Push {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub urgency: Option<Urgency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<When>,
}

/// The notification JSON: `{"id","cursor"?,"tenant","title"?,"body"?,"url"?,"tag"?}`.
#[derive(Serialize)]
struct Payload<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<&'a str>,
    tenant: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<&'a str>,
}

impl Push {
    /// Validates a `push` value of a message to `tenant` whose id is `id` (`None`: the
    /// queue names it later, a 128-character stand-in is measured instead).
    pub fn parse(value: Value, tenant: &TenantId, id: Option<&str>) -> Result<Self, EnvelopeError> {
        let Value::Object(mut map) = value else {
            return Err(EnvelopeError::new("push", "must be an object"));
        };
        if let Some(unknown) = map.keys().find(|k| {
            !matches!(
                k.as_str(),
                "title" | "body" | "url" | "tag" | "ttl" | "urgency" | "when"
            )
        }) {
            return Err(EnvelopeError::new(
                format!("push.{unknown}"),
                "unknown field (expected title, body, url, tag, ttl, urgency, when)",
            ));
        }
        let push = Push {
            title: text(&mut map, "title")?,
            body: text(&mut map, "body")?,
            url: text(&mut map, "url")?,
            tag: text(&mut map, "tag")?,
            ttl: ttl(&mut map)?,
            urgency: word(&mut map, "urgency", URGENCIES)?,
            when: word(&mut map, "when", WHENS)?,
        };
        if push.title.is_none() && push.body.is_none() {
            return Err(EnvelopeError::new("push", "needs a title or a body"));
        }
        if let Some(url) = &push.url {
            if !is_notification_url(url) {
                return Err(EnvelopeError::new(
                    "push.url",
                    "must be an absolute https: (or http:) URL or a path starting with /",
                ));
            }
        }
        let stand_in_id = "i".repeat(ID_STAND_IN_CHARS);
        let stand_in_cursor = "c".repeat(CURSOR_STAND_IN_CHARS);
        let len = push
            .payload(id.unwrap_or(&stand_in_id), Some(&stand_in_cursor), tenant)
            .len();
        if len > MAX_NOTIFICATION_BYTES {
            return Err(EnvelopeError::new(
                "push",
                format!(
                    "the notification is {len} bytes, over the {MAX_NOTIFICATION_BYTES}-byte \
                     Web Push limit (shorten title, body, url or tag)"
                ),
            ));
        }
        Ok(push)
    }

    /// Which users get a push (default `offline`).
    pub fn when(&self) -> When {
        self.when.unwrap_or_default()
    }

    /// The notification's urgency (default `normal`).
    pub fn urgency(&self) -> Urgency {
        self.urgency.unwrap_or_default()
    }

    /// How long a push service keeps the notification for an unreachable device (default
    /// [`DEFAULT_PUSH_TTL_SECS`]).
    pub fn ttl_secs(&self) -> u32 {
        self.ttl.unwrap_or(DEFAULT_PUSH_TTL_SECS)
    }

    /// The notification JSON every device of the message receives:
    /// `{"id","cursor"?,"tenant","title"?,"body"?,"url"?,"tag"?}` (absent fields left out).
    pub fn payload(&self, id: &str, cursor: Option<&str>, tenant: &TenantId) -> String {
        let payload = Payload {
            id,
            cursor,
            tenant: tenant.as_str(),
            title: self.title.as_deref(),
            body: self.body.as_deref(),
            url: self.url.as_deref(),
            tag: self.tag.as_deref(),
        };
        // Serialising plain strings cannot fail.
        serde_json::to_string(&payload).unwrap_or_default()
    }
}

const URGENCIES: &[(&str, Urgency)] = &[
    (Urgency::VeryLow.as_str(), Urgency::VeryLow),
    (Urgency::Low.as_str(), Urgency::Low),
    (Urgency::Normal.as_str(), Urgency::Normal),
    (Urgency::High.as_str(), Urgency::High),
];
const WHENS: &[(&str, When)] = &[("offline", When::Offline), ("always", When::Always)];

fn text(map: &mut Map<String, Value>, key: &str) -> Result<Option<String>, EnvelopeError> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Err(EnvelopeError::new(
            format!("push.{key}"),
            "must not be empty",
        )),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(EnvelopeError::new(
            format!("push.{key}"),
            "must be a string",
        )),
    }
}

fn ttl(map: &mut Map<String, Value>) -> Result<Option<u32>, EnvelopeError> {
    match map.remove("ttl") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n <= MAX_PUSH_TTL_SECS)
            .map(Some)
            .ok_or_else(|| {
                EnvelopeError::new(
                    "push.ttl",
                    format!("must be whole seconds from 0 to {MAX_PUSH_TTL_SECS}"),
                )
            }),
    }
}

fn word<T: Copy>(
    map: &mut Map<String, Value>,
    key: &str,
    words: &[(&str, T)],
) -> Result<Option<T>, EnvelopeError> {
    let value = match map.remove(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(value) => value,
    };
    let found = value
        .as_str()
        .and_then(|text| words.iter().find(|(word, _)| *word == text));
    match found {
        Some((_, parsed)) => Ok(Some(*parsed)),
        None => {
            let names: Vec<&str> = words.iter().map(|(word, _)| *word).collect();
            Err(EnvelopeError::new(
                format!("push.{key}"),
                format!("must be one of {}", names.join(", ")),
            ))
        }
    }
}

/// An absolute `https:`/`http:` URL with a host, or a path of the app's own origin (`/…`,
/// never `//host`, which would be another origin); no whitespace or control characters.
fn is_notification_url(url: &str) -> bool {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    if let Some(path) = url.strip_prefix('/') {
        return !path.starts_with('/') && !path.starts_with('\\');
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.and_then(|rest| rest.split(['/', '?', '#']).next())
        .is_some_and(|host| !host.is_empty() && !host.starts_with('@'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn acme() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    fn parse(value: Value) -> Result<Push, EnvelopeError> {
        Push::parse(value, &acme(), Some("m-1"))
    }

    #[test]
    fn defaults_apply_when_options_are_absent() {
        let push = parse(json!({"title": "Hi"})).unwrap();
        assert_eq!(push.when(), When::Offline);
        assert_eq!(push.urgency(), Urgency::Normal);
        assert_eq!(push.ttl_secs(), DEFAULT_PUSH_TTL_SECS);
        assert_eq!(serde_json::to_value(&push).unwrap(), json!({"title": "Hi"}));
    }

    #[test]
    fn every_field_parses_and_round_trips() {
        let value = json!({"title":"T","body":"B","url":"https://app.example/x?y#z","tag":"chat",
                           "ttl":60,"urgency":"very-low","when":"always"});
        let push = parse(value.clone()).unwrap();
        assert_eq!(push.when(), When::Always);
        assert_eq!(push.urgency(), Urgency::VeryLow);
        assert_eq!(push.ttl_secs(), 60);
        assert_eq!(serde_json::to_value(&push).unwrap(), value);
    }

    #[test]
    fn each_invalid_field_is_named() {
        let cases = [
            (json!("hi"), "push"),
            (json!({}), "push"),
            (json!({"url": "/x"}), "push"),
            (json!({"title": 3}), "push.title"),
            (json!({"title": ""}), "push.title"),
            (json!({"title": "t", "ttl": -1}), "push.ttl"),
            (json!({"title": "t", "ttl": 2_419_201}), "push.ttl"),
            (json!({"title": "t", "ttl": 1.5}), "push.ttl"),
            (json!({"title": "t", "urgency": "urgent"}), "push.urgency"),
            (json!({"title": "t", "when": "never"}), "push.when"),
            (json!({"title": "t", "when": 1}), "push.when"),
            (json!({"title": "t", "icon": "x"}), "push.icon"),
            (
                json!({"title": "t", "url": "javascript:alert(1)"}),
                "push.url",
            ),
            (json!({"title": "t", "url": "//evil.example/"}), "push.url"),
            (json!({"title": "t", "url": "https://"}), "push.url"),
            (json!({"title": "t", "url": "https://a b/"}), "push.url"),
            (json!({"title": "t", "url": "x/y"}), "push.url"),
            (json!({"body": "x".repeat(4_000)}), "push"),
        ];
        for (case, field) in cases {
            assert_eq!(parse(case.clone()).unwrap_err().field, field, "case {case}");
        }
    }

    #[test]
    fn urls_of_the_app_and_absolute_ones_are_accepted() {
        for url in ["/inbox/7", "https://app.example", "http://localhost:8080/x"] {
            assert!(parse(json!({"title": "t", "url": url})).is_ok(), "{url}");
        }
    }

    #[test]
    fn the_payload_names_the_message_and_leaves_absent_fields_out() {
        let push = parse(json!({"title":"T","tag":"x","ttl":5})).unwrap();
        let payload: Value = serde_json::from_str(&push.payload("m-1", None, &acme())).unwrap();
        assert_eq!(
            payload,
            json!({"id":"m-1","tenant":"acme","title":"T","tag":"x"})
        );
        let with_cursor: Value =
            serde_json::from_str(&push.payload("m-1", Some("c-1"), &acme())).unwrap();
        assert_eq!(with_cursor["cursor"], "c-1");
    }

    #[test]
    fn the_size_check_counts_the_id_or_its_stand_in() {
        // A body that fits with a short id but not with the 128-character stand-in.
        let fixed = Push {
            body: Some(String::new()),
            ..Push::default()
        }
        .payload("m-1", Some(&"c".repeat(CURSOR_STAND_IN_CHARS)), &acme())
        .len();
        let body = "b".repeat(MAX_NOTIFICATION_BYTES - fixed);
        let value = json!({ "body": body });
        assert!(Push::parse(value.clone(), &acme(), Some("m-1")).is_ok());
        assert_eq!(
            Push::parse(value, &acme(), None).unwrap_err().field,
            "push",
            "measured with the stand-in id"
        );
    }
}
