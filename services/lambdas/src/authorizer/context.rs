//! The authorizer context: what the authorizer writes into its answer and what the
//! WebSocket routes read back from `requestContext.authorizer`, one type for both sides
//! (docs/design.md: Token expiry and refresh).
//!
//! Reading is lenient where API Gateway may change a value: `exp` arrives as a number or
//! as its decimal text; a text field that is not a string reads as absent; an `adminScope`
//! other than `global` (or none) is the narrower tenant scope; an absent or empty `issuer`
//! is none.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use switchboard_core::connection::ConnectionError;
use switchboard_model::{AdminScope, Claims, TenantId, UserId};

/// What the routes behind the authorizer see as `requestContext.authorizer`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerContext {
    #[serde(default, deserialize_with = "text")]
    pub tenant: String,
    #[serde(default, deserialize_with = "text")]
    pub user: String,
    /// Roles joined by single spaces (`Claims::split_roles` reads them back), at most
    /// [`super::MAX_CONTEXT_ROLES_BYTES`] (see the authorizer's module docs).
    #[serde(default, deserialize_with = "text")]
    pub roles: String,
    /// The token's `exp`, epoch seconds (the roster's `tokenExpiresAt`). `None` only when
    /// read from a context without it (an older authorizer): claims without expiry.
    #[serde(default, deserialize_with = "epoch_seconds")]
    pub exp: Option<i64>,
    /// How far role `admin` reaches: `global` or `tenant`.
    #[serde(default, deserialize_with = "text")]
    pub admin_scope: String,
    /// The trust source that vouched ([`Claims::issuer`]): a `refresh` on `$default` must
    /// come from the same one. Left out when `None` (context values cannot be null).
    #[serde(
        default,
        deserialize_with = "issuer",
        skip_serializing_if = "Option::is_none"
    )]
    pub issuer: Option<String>,
}

impl AuthorizerContext {
    /// The context of verified `claims` whose token expires at `exp`, with `roles`
    /// already fitted to the budget.
    pub fn of(claims: &Claims, roles: String, exp: i64) -> Self {
        Self {
            tenant: claims.tenant.to_string(),
            user: claims.user.to_string(),
            roles,
            exp: Some(exp),
            admin_scope: match claims.admin_scope {
                AdminScope::Global => "global",
                AdminScope::Tenant => "tenant",
            }
            .to_string(),
            issuer: claims.issuer.clone(),
        }
    }

    /// Reads the context API Gateway hands a route (`requestContext.authorizer`'s fields).
    pub fn from_fields<'a>(
        fields: impl IntoIterator<Item = (&'a String, &'a Value)>,
    ) -> Result<Self, ConnectionError> {
        let object: serde_json::Map<String, Value> = fields
            .into_iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        serde_json::from_value(Value::Object(object))
            .map_err(|e| ConnectionError::Identity(e.to_string()))
    }
}

impl TryFrom<&AuthorizerContext> for Claims {
    type Error = ConnectionError;

    /// The claims a route acts with: tenant and user must be valid ids.
    fn try_from(context: &AuthorizerContext) -> Result<Self, Self::Error> {
        let identity = ConnectionError::Identity;
        if context.tenant.is_empty() {
            return Err(identity("tenant missing".into()));
        }
        if context.user.is_empty() {
            return Err(identity("user missing".into()));
        }
        Ok(Claims {
            tenant: TenantId::parse(&context.tenant)
                .map_err(|e| identity(format!("tenant: {e}")))?,
            user: UserId::parse(&context.user).map_err(|e| identity(format!("user: {e}")))?,
            roles: Claims::split_roles(&context.roles),
            admin_scope: if context.admin_scope == "global" {
                AdminScope::Global
            } else {
                AdminScope::Tenant
            },
            exp: context.exp,
            issuer: context.issuer.clone(),
        })
    }
}

/// A text field: a string as is, anything else as absent (empty).
fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(text) => text,
        _ => String::new(),
    })
}

/// `issuer`: a non-empty string, else none.
fn issuer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Some(text(deserializer)?).filter(|issuer| !issuer.is_empty()))
}

/// `exp`: a whole number or its decimal text; null is absent; anything else is refused.
fn epoch_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("exp: {n} is not whole"))),
        Value::String(text) => text
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("exp: {text:?} is not a number"))),
        other => Err(D::Error::custom(format!("exp: {other} is not a number"))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The claims read from a context given as JSON.
    fn claims(context: Value) -> Result<Claims, ConnectionError> {
        let Value::Object(fields) = context else {
            panic!("a context is an object");
        };
        Claims::try_from(&AuthorizerContext::from_fields(&fields)?)
    }

    #[test]
    fn roles_split_and_ids_validated() {
        let c = claims(json!({"tenant": "acme", "user": "alice", "roles": "admin publisher"}));
        assert_eq!(c.unwrap().roles, vec!["admin", "publisher"]);
        assert!(claims(json!({"tenant": "a#b", "user": "u"})).is_err());
        assert!(claims(json!({"tenant": "acme", "user": "a#b"})).is_err());
        assert!(claims(json!({"user": "u"})).is_err(), "tenant missing");
        assert!(claims(json!({"tenant": "acme"})).is_err(), "user missing");
        assert!(
            claims(json!({"tenant": 7, "user": "u"})).is_err(),
            "not text"
        );
        let c = claims(json!({"tenant": "acme", "user": "alice", "roles": 7})).unwrap();
        assert!(c.roles.is_empty(), "roles that are not text are none");
    }

    #[test]
    fn exp_as_number_or_text_and_admin_scope() {
        let c = claims(json!({"tenant": "acme", "user": "alice", "roles": "admin",
                              "exp": 1_900_000_000, "adminScope": "global"}))
        .unwrap();
        assert_eq!(c.exp, Some(1_900_000_000));
        assert!(c.is_global_admin());
        let c = claims(json!({"tenant": "acme", "user": "alice", "roles": "admin",
                              "exp": "1900000000", "adminScope": "tenant"}))
        .unwrap();
        assert_eq!(c.exp, Some(1_900_000_000));
        assert!(!c.is_global_admin());
        let c = claims(json!({"tenant": "acme", "user": "alice", "exp": null})).unwrap();
        assert_eq!((c.exp, c.admin_scope), (None, AdminScope::Tenant));
        for bad in [json!("soon"), json!(1.5), json!(true)] {
            let context = json!({"tenant": "a", "user": "u", "exp": bad});
            assert!(claims(context).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_context_without_scope_has_tenant_scoped_admin() {
        let c = claims(json!({"tenant": "acme", "user": "alice", "roles": "admin"})).unwrap();
        assert_eq!(c.admin_scope, AdminScope::Tenant);
        assert!(c.may_administer(&c.tenant));
        assert!(!c.is_global_admin());
        let c = claims(json!({"tenant": "acme", "user": "a", "adminScope": "everything"}));
        assert_eq!(c.unwrap().admin_scope, AdminScope::Tenant);
    }

    #[test]
    fn issuer_is_kept_when_given_and_not_empty() {
        let c = claims(json!({"tenant": "acme", "user": "a", "issuer": "https://id"})).unwrap();
        assert_eq!(c.issuer.as_deref(), Some("https://id"));
        for absent in [json!({}), json!({"issuer": ""}), json!({"issuer": 3})] {
            let mut context = json!({"tenant": "acme", "user": "a"});
            context
                .as_object_mut()
                .unwrap()
                .extend(absent.as_object().unwrap().clone());
            assert_eq!(claims(context).unwrap().issuer, None);
        }
    }

    #[test]
    fn what_the_writer_writes_reads_back_as_the_same_claims() {
        let claims = Claims {
            roles: vec!["admin".into(), "publisher".into()],
            admin_scope: AdminScope::Global,
            exp: Some(1_900_000_000),
            issuer: Some("https://id".into()),
            ..Claims::new(
                TenantId::parse("acme").unwrap(),
                UserId::parse("alice").unwrap(),
            )
        };
        let written = AuthorizerContext::of(&claims, claims.roles_joined(), 1_900_000_000);
        let Value::Object(fields) = serde_json::to_value(&written).unwrap() else {
            panic!("a context is an object");
        };
        let read = AuthorizerContext::from_fields(&fields).unwrap();
        assert_eq!(read, written);
        assert_eq!(Claims::try_from(&read).unwrap(), claims);
    }
}
