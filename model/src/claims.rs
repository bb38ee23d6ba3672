//! Who a verified token says the caller is.

use serde::{Deserialize, Serialize};

use crate::ids::{TenantId, UserId};

/// A role that grants publish rights (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Any target, including broadcast and other tenants.
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

/// Validated identity: tenant, user and roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub tenant: TenantId,
    pub user: UserId,
    #[serde(default)]
    pub roles: Vec<String>,
}

impl Claims {
    /// Whether the caller holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.iter().any(|r| r == role.as_str())
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
