//! Who a verified token says the caller is, and what that lets it do (docs/design.md: Publish API;
//! Identity per issuer).
//!
//! Rights are decided here, in pure functions, so every edge (publish API, presence, dead
//! letters, receipts) asks the same question the same way:
//!
//! - [`Claims::is_global_admin`] (also `has_role(Role::Admin)`): role `admin` from a key
//!   source trusted with global admins — any tenant, `broadcast`.
//! - [`Claims::may_administer`]: a global admin, or an admin of exactly that tenant (role
//!   `admin` from an issuer without `globalAdmin: true`).
//! - [`Claims::may_publish_to`]: [`may_administer`](Claims::may_administer), or role
//!   `publisher` of that tenant.

use serde::{Deserialize, Serialize};

use crate::ids::{TenantId, UserId};

/// A role that grants publish rights (docs/design.md: Publish API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Any target, including broadcast and other tenants — when the admin is global (see
    /// [`AdminScope`]); [`Claims::has_role`] answers `true` for global admins only.
    Admin,
    /// `users`/`tenant`/`connections` targets in its own tenant.
    Publisher,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Publisher => "publisher",
        }
    }
}

/// How far the role `admin` reaches (docs/design.md: Identity per issuer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AdminScope {
    /// Admin of every tenant, may `broadcast`: the single key source (`JWT_HS256_SECRET`,
    /// `JWT_JWKS_FILE`, `JWT_JWKS_URL`) and issuers with `globalAdmin: true`.
    Global,
    /// Admin of its own tenant only. The default wherever the scope is not known (claims
    /// rebuilt from a context that does not say): lacking a right is the safe side.
    #[default]
    Tenant,
}

/// Validated identity: tenant, user, roles, how far `admin` reaches, and when the token
/// expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    pub tenant: TenantId,
    pub user: UserId,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Scope of the role `admin` (meaningless without it).
    #[serde(default)]
    pub admin_scope: AdminScope,
    /// The token's `exp` (epoch seconds). `None` for claims rebuilt from somewhere that
    /// does not carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Which trust source vouched for the token (docs/design.md: Token expiry and refresh): the
    /// `issuer` of its `JWT_ISSUERS_FILE` entry, `JWT_ISSUER` with a single key source
    /// (`None` when that is unset), the dev issuer for `serve --dev` tokens. A `refresh`
    /// must come from the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

impl Claims {
    /// Claims with no roles, tenant-scoped, no expiry: start here and set what you need.
    pub fn new(tenant: TenantId, user: UserId) -> Self {
        Self {
            tenant,
            user,
            roles: Vec::new(),
            admin_scope: AdminScope::default(),
            exp: None,
            issuer: None,
        }
    }

    /// Whether the caller holds `role`. For [`Role::Admin`] that means a *global* admin:
    /// a tenant-scoped admin answers `false` here (ask [`Claims::may_administer`]), so a
    /// check written as "admin may do anything" never lets one tenant's admin into
    /// another tenant.
    pub fn has_role(&self, role: Role) -> bool {
        match role {
            Role::Admin => self.is_global_admin(),
            Role::Publisher => self.holds(Role::Publisher),
        }
    }

    /// Whether the token lists `role`, whatever its scope.
    pub fn holds(&self, role: Role) -> bool {
        self.roles.iter().any(|r| r == role.as_str())
    }

    /// Role `admin` with [`AdminScope::Global`]: every tenant, `broadcast`.
    pub fn is_global_admin(&self) -> bool {
        self.admin_scope == AdminScope::Global && self.holds(Role::Admin)
    }

    /// Whether the caller is an admin of `tenant`: a global admin, or role `admin` of that
    /// very tenant. For tenant-wide admin actions (dead letters, presence, redrive).
    pub fn may_administer(&self, tenant: &TenantId) -> bool {
        self.is_global_admin() || (self.holds(Role::Admin) && self.tenant == *tenant)
    }

    /// Whether the caller may publish to (or read) `tenant`: an admin of it, or role
    /// `publisher` of its own tenant.
    pub fn may_publish_to(&self, tenant: &TenantId) -> bool {
        self.may_administer(tenant) || (self.holds(Role::Publisher) && self.tenant == *tenant)
    }

    /// Roles joined by spaces, as carried in an authorizer context.
    pub fn roles_joined(&self) -> String {
        self.roles.join(" ")
    }

    /// Splits an authorizer-context roles string (space or comma separated).
    pub fn split_roles(text: &str) -> Vec<String> {
        text.split(|c: char| c.is_whitespace() || c == ',')
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(tenant: &str, roles: &[&str], scope: AdminScope) -> Claims {
        Claims {
            roles: roles.iter().map(|r| r.to_string()).collect(),
            admin_scope: scope,
            ..Claims::new(
                TenantId::parse(tenant).unwrap(),
                UserId::parse("u").unwrap(),
            )
        }
    }

    fn t(tenant: &str) -> TenantId {
        TenantId::parse(tenant).unwrap()
    }

    #[test]
    fn global_admin_administers_every_tenant() {
        let c = claims("acme", &["admin"], AdminScope::Global);
        assert!(c.is_global_admin());
        assert!(c.has_role(Role::Admin));
        assert!(c.may_administer(&t("acme")));
        assert!(c.may_administer(&t("globex")));
        assert!(c.may_publish_to(&t("globex")));
    }

    #[test]
    fn tenant_admin_administers_its_own_tenant_only() {
        let c = claims("acme", &["admin"], AdminScope::Tenant);
        assert!(!c.is_global_admin());
        assert!(!c.has_role(Role::Admin), "has_role(Admin) means global");
        assert!(c.holds(Role::Admin));
        assert!(c.may_administer(&t("acme")));
        assert!(!c.may_administer(&t("globex")));
        assert!(c.may_publish_to(&t("acme")));
        assert!(!c.may_publish_to(&t("globex")));
    }

    #[test]
    fn publisher_publishes_to_its_tenant_and_administers_nothing() {
        for scope in [AdminScope::Global, AdminScope::Tenant] {
            let c = claims("acme", &["publisher"], scope);
            assert!(!c.is_global_admin());
            assert!(c.has_role(Role::Publisher));
            assert!(!c.may_administer(&t("acme")));
            assert!(c.may_publish_to(&t("acme")));
            assert!(!c.may_publish_to(&t("globex")));
        }
    }

    #[test]
    fn no_roles_no_rights() {
        let c = claims("acme", &["reader"], AdminScope::Global);
        assert!(!c.may_administer(&t("acme")));
        assert!(!c.may_publish_to(&t("acme")));
    }

    #[test]
    fn scope_defaults_to_tenant_when_absent() {
        let c: Claims =
            serde_json::from_str(r#"{"tenant":"acme","user":"u","roles":["admin"]}"#).unwrap();
        assert_eq!(c.admin_scope, AdminScope::Tenant);
        assert_eq!(c.exp, None);
        assert!(!c.is_global_admin());
        let json = serde_json::to_value(claims("acme", &[], AdminScope::Global)).unwrap();
        assert_eq!(json["adminScope"], "global");
    }
}
