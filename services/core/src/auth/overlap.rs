//! Tenants vouched for by more than one issuer of `JWT_ISSUERS_FILE` (docs/design.md:
//! Identity per issuer).
//!
//! A user is named by tenant and `sub` only, so two issuers that may both vouch for a
//! tenant share its users: either one's token for `acme`/`alice` receives `alice`'s
//! messages. A list and a `"*"` share every listed tenant; two `"*"` share all of them.
//! [`check`] refuses that at start-up unless, in every such pair, at least one issuer says
//! `"allowSharedTenants": true` ("my users are the same users as another issuer's of the
//! same tenant": typically the operators' `"*"` issuer, or a tenant moving to a new
//! identity provider). Two issuers that both leave it out never share a tenant.

use std::collections::HashMap;

use switchboard_model::TenantId;

use super::issuers::{AllowedTenants, IssuerConfig};

/// The first pair of issuers that share a tenant while neither allows it, as a message
/// naming both entries and the tenant (the caller adds the variable and the file).
pub(super) fn check(issuers: &[IssuerConfig]) -> Result<(), String> {
    let refuse = |deniers: &[usize], tenant: &str| {
        let name = |index: usize| format!("issuers[{index}] ({:?})", issuers[index].issuer);
        let (mut first, mut second) = (deniers[0], deniers[1]);
        if first > second {
            std::mem::swap(&mut first, &mut second);
        }
        Err(format!(
            "{} and {} both vouch for {tenant}, so they would share its users: give each issuer \
             its own tenants, or set \"allowSharedTenants\": true on one of them to share them on purpose",
            name(first),
            name(second),
        ))
    };
    let denies = |index: &usize| !issuers[*index].allow_shared_tenants;
    let any: Vec<usize> = issuers
        .iter()
        .enumerate()
        .filter(|(_, i)| i.tenants == AllowedTenants::Any)
        .map(|(index, _)| index)
        .collect();
    let any_deniers: Vec<usize> = any.iter().copied().filter(denies).collect();
    // Two `"*"` issuers share every tenant.
    if any_deniers.len() > 1 {
        return refuse(&any_deniers, "every tenant");
    }
    // Each listed tenant: its listers plus every `"*"` issuer.
    let mut listers: HashMap<&TenantId, Vec<usize>> = HashMap::new();
    let mut order: Vec<&TenantId> = Vec::new();
    for (index, issuer) in issuers.iter().enumerate() {
        if let AllowedTenants::Only(tenants) = &issuer.tenants {
            for tenant in tenants {
                let entry = listers.entry(tenant).or_default();
                if entry.is_empty() {
                    order.push(tenant);
                }
                entry.push(index);
            }
        }
    }
    for tenant in order {
        let deniers: Vec<usize> = listers[tenant]
            .iter()
            .copied()
            .filter(denies)
            .chain(any_deniers.iter().copied())
            .take(2)
            .collect();
        if deniers.len() == 2 {
            return refuse(&deniers, &format!("tenant {:?}", tenant.as_str()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::issuers::IssuerKeys;

    fn issuer(name: &str, tenants: &[&str], allow: bool) -> IssuerConfig {
        let keys = IssuerKeys::JwksUrl(format!("https://{name}/jwks.json"));
        IssuerConfig {
            allow_shared_tenants: allow,
            ..crate::auth::tests::issuer(name, keys, tenants)
        }
    }

    #[test]
    fn refuses_two_issuers_listing_the_same_tenant_naming_both_and_the_tenant() {
        let error = check(&[
            issuer("a", &["acme", "initech"], false),
            issuer("b", &["globex"], false),
            issuer("c", &["umbrella", "initech"], false),
        ])
        .unwrap_err();
        assert!(
            error.starts_with(
                r#"issuers[0] ("a") and issuers[2] ("c") both vouch for tenant "initech""#
            ),
            "{error}"
        );
        assert!(error.contains("allowSharedTenants"), "{error}");
    }

    #[test]
    fn refuses_a_list_beside_a_star_and_two_stars() {
        let error = check(&[
            issuer("list", &["acme"], false),
            issuer("star", &["*"], false),
        ])
        .unwrap_err();
        assert!(
            error.starts_with(
                r#"issuers[0] ("list") and issuers[1] ("star") both vouch for tenant "acme""#
            ),
            "{error}"
        );
        let error = check(&[issuer("s1", &["*"], false), issuer("s2", &["*"], false)]).unwrap_err();
        assert!(error.contains("every tenant"), "{error}");
    }

    #[test]
    fn one_side_allowing_is_enough() {
        for (a, b) in [(true, false), (false, true), (true, true)] {
            assert_eq!(
                check(&[issuer("a", &["acme"], a), issuer("b", &["acme"], b)]),
                Ok(()),
                "{a} {b}"
            );
            assert_eq!(
                check(&[issuer("ops", &["*"], a), issuer("b", &["acme"], b)]),
                Ok(()),
                "{a} {b}"
            );
        }
    }

    #[test]
    fn an_allowing_star_does_not_let_two_other_issuers_share() {
        // The operators' "*" shares with everyone; two tenant issuers listing "acme" still
        // may not share it with each other.
        let error = check(&[
            issuer("ops", &["*"], true),
            issuer("a", &["acme"], false),
            issuer("b", &["globex"], false),
            issuer("c", &["acme"], false),
        ])
        .unwrap_err();
        assert!(
            error.starts_with(
                r#"issuers[1] ("a") and issuers[3] ("c") both vouch for tenant "acme""#
            ),
            "{error}"
        );
        let error = check(&[
            issuer("ops", &["*"], true),
            issuer("ops2", &["*"], false),
            issuer("a", &["acme"], false),
        ])
        .unwrap_err();
        assert!(
            error.starts_with(
                r#"issuers[1] ("ops2") and issuers[2] ("a") both vouch for tenant "acme""#
            ),
            "{error}"
        );
    }

    #[test]
    fn two_stars_share_when_one_allows() {
        assert_eq!(
            check(&[
                issuer("ops", &["*"], true),
                issuer("ops2", &["*"], false),
                issuer("b", &["acme", "globex"], true),
            ]),
            Ok(())
        );
    }

    #[test]
    fn disjoint_issuers_and_a_lone_star_pass() {
        assert_eq!(
            check(&[
                issuer("a", &["acme"], false),
                issuer("b", &["globex"], false)
            ]),
            Ok(())
        );
        assert_eq!(check(&[issuer("ops", &["*"], false)]), Ok(()));
    }
}
