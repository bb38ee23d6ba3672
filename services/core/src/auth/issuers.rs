//! `JWT_ISSUERS_FILE` (docs/design.md: Identity per issuer): one trusted identity provider per
//! entry, read and checked once at start-up.
//!
//! ```json
//! {"issuers": [
//!   {"issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Acme",
//!    "jwksUrl":
//!      "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Acme/.well-known/jwks.json",
//!    "audience": "7f3c0example", "tenants": ["acme"],
//!    "tenantClaim": "custom:tenant_id", "rolesClaim": "cognito:groups"},
//!   {"issuer": "https://login.switchboard.example/", "jwksFile": "ops-jwks.json",
//!    "tenants": "*", "globalAdmin": true, "allowSharedTenants": true}
//! ]}
//! ```
//!
//! Checked strictly, each problem an error naming the file and the entry (`issuers[1]`
//! and its `issuer` when known): unknown fields, a missing or empty `issuer`, the same
//! `issuer` twice, neither or both of `jwksUrl`/`jwksFile`, a URL that is not http(s), an
//! empty `tenants` list or `audience` list, an invalid or repeated tenant id, an empty
//! claim name; two issuers that may both vouch for one tenant (two lists naming it, a list
//! and a `"*"`, two `"*"`) unless one of them says `"allowSharedTenants": true` (see
//! `overlap`). A relative `jwksFile` is relative to the issuers file's folder. The JWKS
//! files themselves are read when the [`Verifier`](super::Verifier) is built (like
//! `JWT_JWKS_FILE`).
//!
//! `tenantClaim`/`rolesClaim` default to `TENANT_CLAIM`/`ROLES_CLAIM` (themselves
//! defaulting to `tenant`/`roles`); `audience` absent means `aud` is not checked;
//! `globalAdmin` defaults to `false` (role `admin` is then an admin of the token's own
//! tenant only); `allowSharedTenants` defaults to `false`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use switchboard_model::TenantId;

use super::config::AuthConfigError;

/// The variable naming the file.
pub const ISSUERS_FILE_VAR: &str = "JWT_ISSUERS_FILE";
/// Largest issuers file read.
pub const MAX_ISSUERS_FILE_BYTES: u64 = 1024 * 1024;
/// Most issuers in one file.
pub const MAX_ISSUERS: usize = 1000;

/// The parsed `JWT_ISSUERS_FILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuersConfig {
    /// Where it was read from (for messages).
    pub path: PathBuf,
    /// At least one; `issuer` values are unique.
    pub issuers: Vec<IssuerConfig>,
}

/// One trusted issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerConfig {
    /// The exact `iss` of its tokens.
    pub issuer: String,
    pub keys: IssuerKeys,
    /// `aud` must name one of these; empty: `aud` is not checked.
    pub audience: Vec<String>,
    pub tenants: AllowedTenants,
    /// `None`: `TENANT_CLAIM`.
    pub tenant_claim: Option<String>,
    /// `None`: `ROLES_CLAIM`.
    pub roles_claim: Option<String>,
    /// Whether its `admin` role is global (any tenant, `broadcast`).
    pub global_admin: bool,
    /// `allowSharedTenants`: other issuers may vouch for its tenants too (their users are
    /// then the same users); without it on either side, two issuers never share a tenant.
    pub allow_shared_tenants: bool,
}

/// Where an issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerKeys {
    /// Fetched, cached per issuer, refreshed on an unknown `kid` (rate-limited per issuer).
    JwksUrl(String),
    /// Read once at start-up (resolved against the issuers file's folder).
    JwksFile(PathBuf),
}

/// Which tenants an issuer may vouch for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedTenants {
    /// `"*"`: any tenant.
    Any,
    /// Exactly these (at least one, no repeats).
    Only(Vec<TenantId>),
}

impl AllowedTenants {
    pub fn allows(&self, tenant: &TenantId) -> bool {
        match self {
            AllowedTenants::Any => true,
            AllowedTenants::Only(list) => list.contains(tenant),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    issuers: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawIssuer {
    issuer: String,
    jwks_url: Option<String>,
    jwks_file: Option<String>,
    audience: Option<Value>,
    tenants: Value,
    tenant_claim: Option<String>,
    roles_claim: Option<String>,
    #[serde(default)]
    global_admin: bool,
    #[serde(default)]
    allow_shared_tenants: bool,
}

impl IssuersConfig {
    /// Reads and checks the file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, AuthConfigError> {
        let path = path.as_ref();
        let fail = |reason: String| AuthConfigError::Invalid {
            var: ISSUERS_FILE_VAR,
            reason: format!("{}: {reason}", path.display()),
        };
        let size = std::fs::metadata(path)
            .map_err(|e| fail(format!("cannot read: {e}")))?
            .len();
        if size > MAX_ISSUERS_FILE_BYTES {
            return Err(fail(format!(
                "larger than {MAX_ISSUERS_FILE_BYTES} bytes ({size})"
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let base = path.parent().unwrap_or_else(|| Path::new(""));
        let issuers = parse(&bytes, base).map_err(fail)?;
        Ok(Self {
            path: path.to_path_buf(),
            issuers,
        })
    }

    /// The entry for `iss`, if trusted.
    pub fn get(&self, iss: &str) -> Option<&IssuerConfig> {
        self.issuers.iter().find(|i| i.issuer == iss)
    }
}

/// Parses a document; `base` resolves relative `jwksFile` paths. The error names the
/// entry but not the file (the caller adds it).
fn parse(bytes: &[u8], base: &Path) -> Result<Vec<IssuerConfig>, String> {
    let raw: RawFile = serde_json::from_slice(bytes)
        .map_err(|e| format!("not an issuers document ({{\"issuers\":[...]}}): {e}"))?;
    if raw.issuers.is_empty() {
        return Err("\"issuers\" is empty: list at least one issuer".to_string());
    }
    if raw.issuers.len() > MAX_ISSUERS {
        return Err(format!(
            "{} issuers, more than the {MAX_ISSUERS} allowed",
            raw.issuers.len()
        ));
    }
    let mut seen = HashSet::new();
    let mut issuers = Vec::with_capacity(raw.issuers.len());
    for (index, value) in raw.issuers.into_iter().enumerate() {
        let name = value
            .get("issuer")
            .and_then(Value::as_str)
            .map(|i| format!(" ({i:?})"))
            .unwrap_or_default();
        let entry = parse_entry(value, base).map_err(|e| format!("issuers[{index}]{name}: {e}"))?;
        if !seen.insert(entry.issuer.clone()) {
            return Err(format!(
                "issuers[{index}]{name}: issuer listed twice (each issuer once)"
            ));
        }
        issuers.push(entry);
    }
    super::overlap::check(&issuers)?;
    Ok(issuers)
}

fn parse_entry(value: Value, base: &Path) -> Result<IssuerConfig, String> {
    let raw: RawIssuer = serde_json::from_value(value).map_err(|e| e.to_string())?;
    if raw.issuer.trim().is_empty() || raw.issuer.trim() != raw.issuer {
        return Err("\"issuer\" must be non-empty, without surrounding spaces".to_string());
    }
    let keys = match (raw.jwks_url, raw.jwks_file) {
        (Some(url), None) => {
            let url = crate::config::http_url("jwksUrl", &url).map_err(|e| e.to_string())?;
            IssuerKeys::JwksUrl(url)
        }
        (None, Some(file)) if !file.trim().is_empty() => {
            IssuerKeys::JwksFile(base.join(file.trim()))
        }
        (None, Some(_)) => return Err("\"jwksFile\" is empty".to_string()),
        (None, None) => return Err("set one of \"jwksUrl\", \"jwksFile\"".to_string()),
        (Some(_), Some(_)) => return Err("set only one of \"jwksUrl\", \"jwksFile\"".to_string()),
    };
    let audience = match raw.audience {
        None => Vec::new(),
        Some(Value::String(a)) if !a.trim().is_empty() => vec![a],
        Some(Value::Array(items)) if !items.is_empty() => items
            .into_iter()
            .map(|item| match item {
                Value::String(a) if !a.trim().is_empty() => Ok(a),
                _ => Err("\"audience\" entries must be non-empty strings".to_string()),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(
                "\"audience\" must be a non-empty string or a non-empty list of them (omit it to skip the check)"
                    .to_string(),
            )
        }
    };
    let tenants = match raw.tenants {
        Value::String(star) if star == "*" => AllowedTenants::Any,
        Value::Array(items) if !items.is_empty() => {
            let mut list: Vec<TenantId> = Vec::with_capacity(items.len());
            for item in items {
                let Value::String(text) = item else {
                    return Err("\"tenants\" entries must be strings".to_string());
                };
                let tenant = TenantId::parse(&text).map_err(|e| format!("tenant {text:?}: {e}"))?;
                if list.contains(&tenant) {
                    return Err(format!("tenant {text:?} listed twice"));
                }
                list.push(tenant);
            }
            AllowedTenants::Only(list)
        }
        _ => return Err("\"tenants\" must be \"*\" or a non-empty list of tenant ids".to_string()),
    };
    let claim = |field: &str, value: Option<String>| match value {
        Some(name) if name.trim().is_empty() => Err(format!("\"{field}\" is empty")),
        other => Ok(other.map(|n| n.trim().to_string())),
    };
    Ok(IssuerConfig {
        issuer: raw.issuer,
        keys,
        audience,
        tenants,
        tenant_claim: claim("tenantClaim", raw.tenant_claim)?,
        roles_claim: claim("rolesClaim", raw.roles_claim)?,
        global_admin: raw.global_admin,
        allow_shared_tenants: raw.allow_shared_tenants,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Vec<IssuerConfig>, String> {
        parse(text.as_bytes(), Path::new("/etc/switchboard"))
    }

    #[test]
    fn reads_every_field_and_defaults() {
        let issuers = parse_str(
            r#"{"issuers":[
              {"issuer":"https://a.example","jwksUrl":"https://a.example/jwks.json",
               "audience":"app","tenants":["acme","initech"],
               "tenantClaim":"custom:tenant_id","rolesClaim":"cognito:groups"},
              {"issuer":"https://ops.example","jwksFile":"ops.json","audience":["x","y"],
               "tenants":"*","globalAdmin":true,"allowSharedTenants":true}
            ]}"#,
        )
        .unwrap();
        assert_eq!(
            issuers[0],
            IssuerConfig {
                issuer: "https://a.example".into(),
                keys: IssuerKeys::JwksUrl("https://a.example/jwks.json".into()),
                audience: vec!["app".into()],
                tenants: AllowedTenants::Only(vec![
                    TenantId::parse("acme").unwrap(),
                    TenantId::parse("initech").unwrap()
                ]),
                tenant_claim: Some("custom:tenant_id".into()),
                roles_claim: Some("cognito:groups".into()),
                global_admin: false,
                allow_shared_tenants: false,
            }
        );
        assert_eq!(
            issuers[1].keys,
            IssuerKeys::JwksFile("/etc/switchboard/ops.json".into())
        );
        assert_eq!(issuers[1].audience, vec!["x", "y"]);
        assert_eq!(issuers[1].tenants, AllowedTenants::Any);
        assert_eq!(issuers[1].tenant_claim, None);
        assert!(issuers[1].global_admin);
        assert!(issuers[1].allow_shared_tenants);
    }

    #[test]
    fn absolute_jwks_file_is_kept() {
        let issuers =
            parse_str(r#"{"issuers":[{"issuer":"i","jwksFile":"/keys/j.json","tenants":["a"]}]}"#)
                .unwrap();
        assert_eq!(issuers[0].keys, IssuerKeys::JwksFile("/keys/j.json".into()));
        assert!(!issuers[0].global_admin);
        assert!(issuers[0].audience.is_empty());
    }

    /// Every malformed document, with a piece of the message it must produce.
    #[test]
    fn refuses_malformed_documents_naming_the_entry() {
        let ok = r#""issuer":"https://a","jwksUrl":"https://a/j","tenants":["acme"]"#;
        let cases: Vec<(String, &str)> = vec![
            ("[]".into(), "not an issuers document"),
            (r#"{"issuers":[], "x":1}"#.into(), "unknown field"),
            (r#"{"issuers":[]}"#.into(), "empty"),
            (format!(r#"{{"issuers":[{{{ok},"extra":1}}]}}"#), "issuers[0] (\"https://a\"): unknown field `extra`"),
            (format!(r#"{{"issuers":[{{{ok}}},{{{ok}}}]}}"#), "issuers[1] (\"https://a\"): issuer listed twice"),
            (r#"{"issuers":[{"jwksUrl":"https://a/j","tenants":"*"}]}"#.into(), "issuers[0]: missing field `issuer`"),
            (r#"{"issuers":[{"issuer":"","jwksUrl":"https://a/j","tenants":"*"}]}"#.into(), "non-empty"),
            (r#"{"issuers":[{"issuer":"i","tenants":"*"}]}"#.into(), "set one of"),
            (r#"{"issuers":[{"issuer":"i","jwksUrl":"https://a/j","jwksFile":"f","tenants":"*"}]}"#.into(), "only one of"),
            (r#"{"issuers":[{"issuer":"i","jwksUrl":"ftp://a/j","tenants":"*"}]}"#.into(), "http:// or https://"),
            (r#"{"issuers":[{"issuer":"i","jwksUrl":"not a url","tenants":"*"}]}"#.into(), "not a URL"),
            (r#"{"issuers":[{"issuer":"i","jwksFile":" ","tenants":"*"}]}"#.into(), "\"jwksFile\" is empty"),
            (r#"{"issuers":[{"issuer":"i","jwksUrl":"https://a/j","tenants":[]}]}"#.into(), "\"tenants\" must be"),
            (r#"{"issuers":[{"issuer":"i","jwksUrl":"https://a/j","tenants":"acme"}]}"#.into(), "\"tenants\" must be"),
            (r#"{"issuers":[{"issuer":"i","jwksUrl":"https://a/j"}]}"#.into(), "missing field `tenants`"),
            (r#"{"issuers":[{"issuer":"i","jwksUrl":"https://a/j","tenants":["a#b"]}]}"#.into(), "tenant \"a#b\""),
            (r#"{"issuers":[{"issuer":"i","jwksUrl":"https://a/j","tenants":["a","a"]}]}"#.into(), "listed twice"),
            (r#"{"issuers":[{"issuer":"i","jwksUrl":"https://a/j","tenants":[1]}]}"#.into(), "must be strings"),
            (r#"{"issuers":[{"issuer":"i","jwksUrl":"https://a/j","tenants":"*","audience":[]}]}"#.into(), "\"audience\" must be"),
            (r#"{"issuers":[{"issuer":"i","jwksUrl":"https://a/j","tenants":"*","audience":[""]}]}"#.into(), "\"audience\" entries"),
            (r#"{"issuers":[{"issuer":"i","jwksUrl":"https://a/j","tenants":"*","tenantClaim":""}]}"#.into(), "\"tenantClaim\" is empty"),
            (r#"{"issuers":[{"issuer":"i","jwksUrl":"https://a/j","tenants":"*","globalAdmin":"yes"}]}"#.into(), "issuers[0] (\"i\")"),
            (r#"{"issuers":[{"issuer":"i","jwksUrl":"https://a/j","tenants":"*","allowSharedTenants":1}]}"#.into(), "issuers[0] (\"i\")"),
            (r#"{"issuers":[{"issuer":"i","jwksUrl":"https://a/j","tenants":["a"]},{"issuer":"j","jwksUrl":"https://a/j","tenants":"*"}]}"#.into(), "issuers[0] (\"i\") and issuers[1] (\"j\") both vouch for tenant \"a\""),
        ];
        for (text, expected) in cases {
            let error = parse_str(&text).unwrap_err();
            assert!(
                error.contains(expected),
                "{text}\n  gave: {error}\n  expected to contain: {expected}"
            );
        }
    }

    #[test]
    fn load_names_the_variable_and_the_file() {
        let dir = std::env::temp_dir().join(format!("issuers-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("issuers.json");
        std::fs::write(
            &path,
            r#"{"issuers":[{"issuer":"i","jwksFile":"k.json","tenants":["t"]}]}"#,
        )
        .unwrap();
        let config = IssuersConfig::load(&path).unwrap();
        assert_eq!(
            config.issuers[0].keys,
            IssuerKeys::JwksFile(dir.join("k.json"))
        );
        assert!(config.get("i").is_some());
        assert!(config.get("j").is_none());

        std::fs::write(&path, r#"{"issuers":[{"issuer":"i","tenants":["t"]}]}"#).unwrap();
        let error = IssuersConfig::load(&path).unwrap_err().to_string();
        assert!(error.starts_with("JWT_ISSUERS_FILE: "), "{error}");
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("issuers[0] (\"i\")"), "{error}");

        let missing = dir.join("missing.json");
        let error = IssuersConfig::load(&missing).unwrap_err().to_string();
        assert!(error.contains("missing.json"), "{error}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn environment_takes_the_file_instead_of_a_single_key_source() {
        use crate::auth::{AuthConfig, KeySource};
        let dir = std::env::temp_dir().join(format!("issuers-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("issuers.json");
        std::fs::write(
            &path,
            r#"{"issuers":[{"issuer":"i","jwksUrl":"https://i/j","tenants":"*"}]}"#,
        )
        .unwrap();
        let file = path.display().to_string();
        let from = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            AuthConfig::from_lookup(|k| {
                pairs
                    .iter()
                    .find(|(name, _)| name == k)
                    .map(|(_, v)| v.clone())
            })
        };

        let config = from(&[("JWT_ISSUERS_FILE", &file)]).unwrap();
        assert!(config.has_key_source());
        let KeySource::Issuers(issuers) = &config.keys else {
            panic!("{config:?}")
        };
        assert_eq!(issuers.issuers[0].issuer, "i");

        // Both kinds configured: refused, naming both.
        for other in ["JWT_HS256_SECRET", "JWT_JWKS_FILE", "JWT_JWKS_URL"] {
            let error = from(&[("JWT_ISSUERS_FILE", &file), (other, "https://x/y")])
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("JWT_ISSUERS_FILE") && error.contains(other),
                "{error}"
            );
        }
        // The global issuer/audience would be ambiguous next to per-issuer ones.
        for var in ["JWT_ISSUER", "JWT_AUDIENCE"] {
            let error = from(&[("JWT_ISSUERS_FILE", &file), (var, "x")])
                .unwrap_err()
                .to_string();
            assert!(error.starts_with(&format!("{var}:")), "{error}");
        }
        // Neither: no key source (dev mode locally), and the error names all four.
        let none = from(&[]).unwrap();
        let error = none.require_key_source().unwrap_err().to_string();
        assert!(error.contains("JWT_ISSUERS_FILE") && error.contains("JWT_HS256_SECRET"));
        // A bad file stops start-up naming the variable.
        let error = from(&[("JWT_ISSUERS_FILE", "/nonexistent/issuers.json")])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("JWT_ISSUERS_FILE: /nonexistent/issuers.json"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn allowed_tenants() {
        let acme = TenantId::parse("acme").unwrap();
        let globex = TenantId::parse("globex").unwrap();
        assert!(AllowedTenants::Any.allows(&globex));
        let only = AllowedTenants::Only(vec![acme.clone()]);
        assert!(only.allows(&acme));
        assert!(!only.allows(&globex));
    }
}
