//! Validated identifiers. Tenant and user ids are 1–128 characters, with no control
//! characters and no `#` (the roster's key separator); the tenant id `*` is reserved (it
//! names "every tenant" in history and receipt keys). Connection ids follow the same
//! rules and additionally may not contain whitespace or `/`, since they travel in URL paths.
//! Message ids are 1–256 characters with no control characters.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest tenant, user or connection id accepted.
pub const MAX_ID_CHARS: usize = 128;
/// Longest message id accepted.
pub const MAX_MESSAGE_ID_CHARS: usize = 256;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_ID_CHARS} characters (got {0})")]
    TooLong(usize),
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("must not contain '#'")]
    Hash,
    #[error("must not contain whitespace or '/'")]
    NotUrlSafe,
    #[error("'*' is reserved")]
    Reserved,
    #[error("must be 1 to {MAX_MESSAGE_ID_CHARS} characters")]
    MessageIdLength,
}

fn check_common(value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty);
    }
    let chars = value.chars().count();
    if chars > MAX_ID_CHARS {
        return Err(IdError::TooLong(chars));
    }
    if value.chars().any(char::is_control) {
        return Err(IdError::ControlCharacter);
    }
    if value.contains('#') {
        return Err(IdError::Hash);
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `value` and wraps it.
            pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                $check(&value)?;
                Ok(Self(value))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(value: &str) -> Result<Self, IdError> {
                Self::parse(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

fn check_connection(value: &str) -> Result<(), IdError> {
    check_common(value)?;
    if value.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(IdError::NotUrlSafe);
    }
    Ok(())
}

fn check_tenant(value: &str) -> Result<(), IdError> {
    check_common(value)?;
    if value == "*" {
        return Err(IdError::Reserved);
    }
    Ok(())
}

/// A message id's one rule, wherever an id comes from (an envelope's `id`, a receipt's path).
fn check_message(value: &str) -> Result<(), IdError> {
    let chars = value.chars().count();
    if chars == 0 || chars > MAX_MESSAGE_ID_CHARS {
        return Err(IdError::MessageIdLength);
    }
    if value.chars().any(char::is_control) {
        return Err(IdError::ControlCharacter);
    }
    Ok(())
}

id_type!(
    /// A tenant: the isolation boundary. Nothing crosses from one tenant to another.
    TenantId,
    check_tenant
);
id_type!(
    /// A user within a tenant (the token's `sub`). The same user id in two tenants names
    /// two different people.
    UserId,
    check_common
);
id_type!(
    /// One live WebSocket connection, as API Gateway (or the local server) names it.
    ConnectionId,
    check_connection
);
id_type!(
    /// A message's id: the envelope's `id` (the publish API makes one when it has none),
    /// what receipts and repeated publishes are keyed by.
    MessageId,
    check_message
);

impl MessageId {
    /// The id written as the UUID whose 128 bits are `bits` (lowercase `8-4-4-4-12` hex, as
    /// `uuid` writes it): the id given to an envelope that has none. Always valid.
    pub fn of_uuid(bits: u128) -> Self {
        let hex = format!("{bits:032x}");
        let (a, rest) = hex.split_at(8);
        let (b, rest) = rest.split_at(4);
        let (c, rest) = rest.split_at(4);
        let (d, e) = rest.split_at(4);
        Self(format!("{a}-{b}-{c}-{d}-{e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids() {
        assert_eq!(TenantId::parse("acme").unwrap().as_str(), "acme");
        assert!(UserId::parse("alice@example.com").is_ok());
        assert!(UserId::parse("ü".repeat(128)).is_ok());
        assert!(ConnectionId::parse("L0SM9cOFvHcCIhw=").is_ok());
    }

    #[test]
    fn refuses_empty_long_control_and_hash() {
        assert_eq!(TenantId::parse(""), Err(IdError::Empty));
        assert_eq!(UserId::parse("a".repeat(129)), Err(IdError::TooLong(129)));
        assert_eq!(UserId::parse("a\nb"), Err(IdError::ControlCharacter));
        assert_eq!(TenantId::parse("a#b"), Err(IdError::Hash));
        assert_eq!(TenantId::parse("*"), Err(IdError::Reserved));
        assert!(UserId::parse("*").is_ok());
        assert_eq!(ConnectionId::parse("a b"), Err(IdError::NotUrlSafe));
        assert_eq!(ConnectionId::parse("a/b"), Err(IdError::NotUrlSafe));
    }

    #[test]
    fn message_ids_are_1_to_256_characters_without_control_characters() {
        assert!(MessageId::parse("m-1").is_ok());
        assert!(MessageId::parse("ü".repeat(256)).is_ok());
        assert!(MessageId::parse("a#b c/d*").is_ok());
        assert_eq!(MessageId::parse(""), Err(IdError::MessageIdLength));
        assert_eq!(
            MessageId::parse("a".repeat(257)),
            Err(IdError::MessageIdLength)
        );
        assert_eq!(MessageId::parse("a\u{7f}b"), Err(IdError::ControlCharacter));
        assert_eq!(
            IdError::MessageIdLength.to_string(),
            "must be 1 to 256 characters"
        );
        let uuid = MessageId::of_uuid(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        assert_eq!(uuid.as_str(), "01234567-89ab-cdef-0011-223344556677");
        assert_eq!(MessageId::parse(uuid.as_str()), Ok(uuid));
    }

    #[test]
    fn deserialization_validates() {
        assert!(serde_json::from_str::<TenantId>("\"acme\"").is_ok());
        assert!(serde_json::from_str::<TenantId>("\"a#b\"").is_err());
    }
}
