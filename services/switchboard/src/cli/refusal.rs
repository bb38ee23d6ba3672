//! Start-up refusals: every configuration mistake a command stops on — ours, core's
//! configuration errors and clap's (a bad flag or variable value, an unknown flag) — is told
//! the same way (docs/design.md: The one-machine binary), two lines on stderr and exit code
//! [`EXIT_CODE`]:
//!
//! ```text
//! switchboard: configuration error: <setting>: <problem>
//!   fix: <what to do>
//! ```
//!
//! The mapping from core's error types ([`ConfigError`], [`AuthConfigError`]) and from
//! [`clap::Error`] lives here, in one place. A secret's value is never echoed.

use std::net::SocketAddr;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use switchboard_core::auth::{AuthConfigError, AuthError, KeySource};
use switchboard_core::config::ConfigError;

use super::settings::default_of;
use crate::serve::StartError;

/// The exit code of a refusal: `EX_CONFIG` of sysexits.h.
pub const EXIT_CODE: u8 = 78;

/// The variables naming a JWT key source: exactly one is set (or `serve --dev` runs).
pub const KEY_SOURCES: [&str; 4] = [
    "JWT_HS256_SECRET",
    "JWT_JWKS_FILE",
    "JWT_JWKS_URL",
    "JWT_ISSUERS_FILE",
];

/// Variables and flags whose values are secrets: a refusal names them, never their value.
const SECRETS: [&str; 8] = [
    "JWT_HS256_SECRET",
    "WEBHOOK_SECRET",
    "VAPID_PRIVATE_KEY",
    "MANAGEMENT_SECRET_ACCESS_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "SWITCHBOARD_TOKEN",
    "--token",
];

/// Web Push's keys and contact: all three or none.
const VAPID: [&str; 3] = ["VAPID_PUBLIC_KEY", "VAPID_PRIVATE_KEY", "VAPID_SUBJECT"];

/// Where every setting is listed, with its default and meaning.
const EVERY_SETTING: &str = "every setting: switchboard serve --help";

/// A command's refusal to start: the setting (variable and/or flag), what is wrong with its
/// value, what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {setting}: {problem}\n  fix: {fix}")]
pub struct Refusal {
    pub setting: String,
    pub problem: String,
    pub fix: String,
}

impl Refusal {
    pub fn new(
        setting: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            setting: setting.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// A value `variable` does not accept: the fix is to correct it or to unset it for the
    /// default (from the settings table).
    pub fn invalid(variable: &str, problem: impl Into<String>) -> Self {
        Self::new(
            variable,
            problem,
            correct_or_unset(variable, variable, None),
        )
    }

    /// No JWT key source: every one of them, and `--dev` for a local trial.
    pub fn no_key_source() -> Self {
        Self::new(
            KEY_SOURCES.join(", "),
            "none is set, so no token can be verified",
            "set one: JWT_HS256_SECRET (32+ random bytes, e.g. `openssl rand -hex 32`), \
             JWT_JWKS_FILE (`switchboard keys generate` writes one), JWT_JWKS_URL, or \
             JWT_ISSUERS_FILE (one entry per issuer); or run `switchboard serve --dev` for a \
             local trial",
        )
    }
}

/// "set X to a value it accepts, or unset it for the default (D)", the default from the
/// settings table row of `key` (a variable, or a flag without one); `shown` names the
/// setting (a variable, or a flag and its variable); `accepts` what it accepts, when known.
fn correct_or_unset(shown: &str, key: &str, accepts: Option<&str>) -> String {
    let set = format!("set {shown} to {}", accepts.unwrap_or("a value it accepts"));
    let unset = if shown.starts_with('-') {
        "leave it out"
    } else {
        "unset it"
    };
    let default = default_of(key).unwrap_or_default().trim();
    if default.is_empty() || default == "—" || default == "empty" {
        format!("{set}, or {unset}; {EVERY_SETTING}")
    } else if default.starts_with("none") {
        // A key source: unsetting it is no way out.
        format!("{set}; {EVERY_SETTING}")
    } else if let Some(without) = default.strip_prefix("unset") {
        let without = without.trim_start_matches([':', ' ']);
        format!("{set}, or {unset} ({without}); {EVERY_SETTING}")
    } else {
        format!("{set}, or {unset} for the default ({default}); {EVERY_SETTING}")
    }
}

fn is_secret(name: &str) -> bool {
    SECRETS.contains(&name)
}

/// `"value"` — or `the value` for a secret.
fn shown(name: &str, value: &str) -> String {
    if is_secret(name) {
        "the value".into()
    } else {
        format!("{value:?}")
    }
}

impl From<ConfigError> for Refusal {
    fn from(error: ConfigError) -> Self {
        match error {
            ConfigError::Missing(name) => Self::new(
                name,
                "is required but not set",
                format!("set {name}; {EVERY_SETTING}"),
            ),
            // The three VAPID variables are one setting: the fix names all three.
            ConfigError::Invalid {
                name,
                value,
                reason,
            } if name.starts_with("VAPID_") => {
                let problem = if value.trim().is_empty() {
                    reason
                } else {
                    format!("{}: {reason}", shown(name, &value))
                };
                Self::new(
                    name,
                    problem,
                    format!(
                        "set all three of {} (`switchboard vapid-keys` prints a key pair), or \
                         none of them (Web Push off); {EVERY_SETTING}",
                        VAPID.join(", ")
                    ),
                )
            }
            ConfigError::Invalid {
                name,
                value,
                reason,
            } => Self::invalid(name, format!("{}: {reason}", shown(name, &value))),
        }
    }
}

impl From<AuthConfigError> for Refusal {
    fn from(error: AuthConfigError) -> Self {
        match error {
            AuthConfigError::Invalid { var, reason } => Self::invalid(var, reason),
            AuthConfigError::ConflictingKeySources(set) => Self::new(
                set,
                "more than one JWT key source is set",
                format!(
                    "keep one of {} and unset the others",
                    KEY_SOURCES.join(", ")
                ),
            ),
            AuthConfigError::NoKeySource => Self::no_key_source(),
        }
    }
}

/// The variable naming `keys`, for a refusal of what it names.
pub fn key_source_variable(keys: &KeySource) -> &'static str {
    match keys {
        KeySource::JwksFile(_) => "JWT_JWKS_FILE",
        KeySource::JwksUrl(_) => "JWT_JWKS_URL",
        KeySource::Issuers(_) => "JWT_ISSUERS_FILE",
        KeySource::Hs256(_) | KeySource::None => "JWT_HS256_SECRET",
    }
}

/// Why `serve` could not start, as a refusal: a listener (of `--listen`, `--management-listen`)
/// that cannot bind, or keys of `key_source` that cannot be loaded.
pub fn not_started(
    error: StartError,
    (listen, management_listen): (SocketAddr, SocketAddr),
    key_source: &str,
) -> Refusal {
    match error {
        StartError::Listen { addr, source } => Refusal::new(
            if addr == management_listen && addr != listen {
                "--management-listen (SWITCHBOARD_MANAGEMENT_LISTEN)"
            } else {
                "--listen (SWITCHBOARD_LISTEN)"
            },
            format!("cannot listen on {addr}: {source}"),
            "choose a free port, or 0 (any free port; the address is printed)",
        ),
        StartError::Auth(AuthError::NoKeySource) => Refusal::no_key_source(),
        StartError::Webhooks(error) => Refusal::new(
            "WEBHOOK_URL, WEBHOOK_FILE",
            error.to_string(),
            "check SSL_CERT_FILE and the system's certificates, or unset both (events off)",
        ),
        StartError::Auth(error) => Refusal::new(
            key_source,
            error.to_string(),
            format!(
                "point {key_source} at a readable JWKS with a usable key (`switchboard keys \
                 generate` writes one)"
            ),
        ),
    }
}

/// A clap error (any kind but help and version) as a refusal. `root` is the command that
/// parsed `argv`; the flag is found in the subcommand `argv` names, with its variable.
pub fn from_clap(error: &clap::Error, root: &clap::Command, argv: &[String]) -> Refusal {
    let (path, command) = used_command(root, argv);
    let help = format!("see {path} --help");
    let invalid_arg = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => vec![arg.clone()],
        Some(ContextValue::Strings(args)) => args.clone(),
        _ => Vec::new(),
    };
    let names: Vec<(String, Option<String>)> =
        invalid_arg.iter().map(|arg| named(command, arg)).collect();
    let setting = match names.as_slice() {
        [] => match error.get(ContextKind::InvalidSubcommand) {
            Some(ContextValue::String(sub)) => sub.clone(),
            _ => path.clone(),
        },
        names => names
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    };
    // The settings-table name of the first argument: its variable, else its flag.
    let key = names.first().map(|(name, variable)| {
        variable
            .clone()
            .unwrap_or_else(|| name.split(' ').next().unwrap_or(name).to_string())
    });
    let secret = names
        .iter()
        .any(|(name, variable)| is_secret(name) || variable.as_deref().is_some_and(is_secret));
    let value = match error.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(_)) if secret => Some("the value".to_string()),
        Some(ContextValue::String(value)) => Some(format!("{value:?}")),
        _ => None,
    };
    let problem = match (error.kind(), &value) {
        (ErrorKind::ValueValidation, Some(value)) => match std::error::Error::source(error) {
            Some(reason) => format!("{value}: {reason}"),
            None => format!("{value} is not accepted"),
        },
        (ErrorKind::InvalidValue, Some(value)) => match error.get(ContextKind::ValidValue) {
            Some(ContextValue::Strings(valid)) => {
                format!("{value} is not one of {}", valid.join(", "))
            }
            _ => format!("{value} is not accepted"),
        },
        (ErrorKind::UnknownArgument, _) => format!("not an argument of `{path}`"),
        (ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand, _) => {
            let subcommands: Vec<&str> = command.get_subcommands().map(|c| c.get_name()).collect();
            format!("needs a subcommand: {}", subcommands.join(", "))
        }
        (ErrorKind::MissingRequiredArgument, _) => "required but not given".into(),
        (ErrorKind::ArgumentConflict, _) => match error.get(ContextKind::PriorArg) {
            Some(ContextValue::String(prior)) => format!("cannot be used with {prior}"),
            Some(ContextValue::Strings(prior)) => {
                format!("cannot be used with {}", prior.join(", "))
            }
            _ => "cannot be used with another flag given".into(),
        },
        _ => clap_summary(error),
    };
    let fix = match suggestion(error) {
        Some(suggestion) => format!("{suggestion}; {help}"),
        None => match (error.kind(), &key) {
            (ErrorKind::ValueValidation | ErrorKind::InvalidValue, Some(key)) => {
                let accepts = match error.get(ContextKind::ValidValue) {
                    Some(ContextValue::Strings(valid)) => {
                        Some(format!("one of: {}", valid.join(", ")))
                    }
                    _ => None,
                };
                correct_or_unset(&setting, key, accepts.as_deref())
            }
            (ErrorKind::MissingRequiredArgument, _) => format!("give it; {help}"),
            _ => help,
        },
    };
    Refusal::new(setting, problem, fix)
}

/// clap's own suggestion: a similar flag, value or subcommand, or a tip.
fn suggestion(error: &clap::Error) -> Option<String> {
    let one_of = |value: &ContextValue| match value {
        ContextValue::String(one) => Some(one.clone()),
        ContextValue::Strings(many) => Some(many.join(" or ")),
        _ => None,
    };
    for kind in [
        ContextKind::SuggestedArg,
        ContextKind::SuggestedValue,
        ContextKind::SuggestedSubcommand,
    ] {
        if let Some(similar) = error.get(kind).and_then(one_of) {
            return Some(format!("use {similar}, the nearest match"));
        }
    }
    match error.get(ContextKind::Suggested) {
        Some(ContextValue::StyledStrs(tips)) if !tips.is_empty() => Some(
            tips.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        _ => None,
    }
}

/// The first line of clap's own message, without its `error: ` prefix.
fn clap_summary(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// The subcommand `argv` runs (`switchboard serve`, `switchboard keys generate`) and its
/// definition.
fn used_command<'a>(root: &'a clap::Command, argv: &[String]) -> (String, &'a clap::Command) {
    let mut path = vec!["switchboard".to_string()];
    if root.get_name() != "switchboard" {
        path.push(root.get_name().to_string());
    }
    let mut command = root;
    for arg in argv.iter().skip(1) {
        if let Some(sub) = command.find_subcommand(arg) {
            path.push(sub.get_name().to_string());
            command = sub;
        }
    }
    (path.join(" "), command)
}

/// A clap argument as shown in its errors (`--queue-capacity <QUEUE_CAPACITY>`) as a
/// setting: the flag and its variable (`--queue-capacity (QUEUE_CAPACITY)`), and the variable.
fn named(command: &clap::Command, shown: &str) -> (String, Option<String>) {
    let flag = shown.split([' ', '=']).next().unwrap_or(shown);
    let variable = flag.strip_prefix("--").and_then(|long| {
        command
            .get_arguments()
            .find(|arg| arg.get_long() == Some(long))
            .and_then(|arg| arg.get_env())
            .and_then(|env| env.to_str())
            .map(str::to_string)
    });
    match &variable {
        Some(variable) => (format!("{flag} ({variable})"), Some(variable.clone())),
        None => (flag.to_string(), None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_two_lines_naming_the_setting() {
        let refusal = Refusal::invalid("RECEIPT_TTL_SECS", "\"x\": bad");
        let text = refusal.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("configuration error: RECEIPT_TTL_SECS: "));
        assert!(lines[1].starts_with("  fix: set RECEIPT_TTL_SECS to "));
    }

    #[test]
    fn a_secret_value_is_never_echoed() {
        let refusal = Refusal::from(ConfigError::Invalid {
            name: "MANAGEMENT_SECRET_ACCESS_KEY",
            value: "hunter2".into(),
            reason: "too short".into(),
        });
        assert!(!refusal.to_string().contains("hunter2"), "{refusal}");
    }

    #[test]
    fn a_vapid_refusal_names_all_three_and_never_the_private_key() {
        let missing = Refusal::from(ConfigError::Invalid {
            name: "VAPID_PRIVATE_KEY",
            value: String::new(),
            reason: "must be set when VAPID_PUBLIC_KEY is".into(),
        });
        assert_eq!(missing.problem, "must be set when VAPID_PUBLIC_KEY is");
        for name in VAPID {
            assert!(missing.fix.contains(name), "{missing}");
        }
        let bad = Refusal::from(ConfigError::Invalid {
            name: "VAPID_PRIVATE_KEY",
            value: "secret-scalar".into(),
            reason: "not 32 bytes".into(),
        });
        assert!(!bad.to_string().contains("secret-scalar"), "{bad}");
    }

    #[test]
    fn the_missing_key_source_names_every_source_and_dev() {
        let text = Refusal::no_key_source().to_string();
        for name in KEY_SOURCES.iter().chain(&["--dev"]) {
            assert!(text.contains(name), "{name}: {text}");
        }
    }
}
