//! Validated identifiers. Tenant and user ids are 1–128 characters, with no control
//! characters and no `#` (the roster's key separator); the tenant id `*` is reserved (it
//! names "every tenant" in history and receipt keys). Connection ids follow the same
//! rules and additionally may not contain whitespace or `/`, since they travel in URL paths.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest tenant, user or connection id accepted.
pub const MAX_ID_CHARS: usize = 128;

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
    fn deserialization_validates() {
        assert!(serde_json::from_str::<TenantId>("\"acme\"").is_ok());
        assert!(serde_json::from_str::<TenantId>("\"a#b\"").is_err());
    }
}
