//! The management listener's credentials (`MANAGEMENT_ACCESS_KEY_ID`,
//! `MANAGEMENT_SECRET_ACCESS_KEY`, `--management-host`, `--management-insecure`): docs/design.md:
//! The one-machine binary.

use super::super::refusal::Refusal;
use super::super::Env;
use super::ServeArgs;
use crate::serve::host::Host;
use crate::serve::ManagementCredentials;

/// The shortest `MANAGEMENT_SECRET_ACCESS_KEY` accepted (as `JWT_HS256_SECRET`'s).
const MIN_SECRET_BYTES: usize = 32;

/// `MANAGEMENT_ACCESS_KEY_ID` + `MANAGEMENT_SECRET_ACCESS_KEY`: both or neither, neither
/// empty, the secret [`MIN_SECRET_BYTES`]+ bytes. Without them the management listener must
/// be loopback, or `--management-insecure` given (then a warning is logged).
pub(super) fn credentials(
    args: &ServeArgs,
    env: &Env,
) -> Result<Option<ManagementCredentials>, Refusal> {
    const ID: &str = "MANAGEMENT_ACCESS_KEY_ID";
    const SECRET: &str = "MANAGEMENT_SECRET_ACCESS_KEY";
    const INSECURE: &str = "--management-insecure (SWITCHBOARD_MANAGEMENT_INSECURE)";
    const HOSTS: &str = "--management-host (SWITCHBOARD_MANAGEMENT_HOSTS)";
    const LISTEN: &str = "--management-listen (SWITCHBOARD_MANAGEMENT_LISTEN)";
    let both_or_neither =
        format!("set both {ID} and {SECRET} (requests are SigV4-signed), or neither");
    let access_key_id = env.get(ID).map(|v| v.trim().to_string());
    let secret = env.get(SECRET);
    if access_key_id.as_deref() == Some("") {
        return Err(Refusal::new(ID, "is set but empty", both_or_neither));
    }
    if secret.as_deref().is_some_and(|s| s.trim().is_empty()) {
        return Err(Refusal::new(SECRET, "is set but empty", both_or_neither));
    }
    let listen = args.management_listen;
    let credentials = match (access_key_id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => {
            if secret_access_key.len() < MIN_SECRET_BYTES {
                return Err(Refusal::new(
                    SECRET,
                    format!("is shorter than {MIN_SECRET_BYTES} bytes"),
                    format!("use {MIN_SECRET_BYTES}+ random bytes (e.g. `openssl rand -hex 32`)"),
                ));
            }
            let hosts = hosts(&args.management_hosts).map_err(|e| {
                Refusal::new(
                    HOSTS,
                    e,
                    "give host or host:port names, separated by commas",
                )
            })?;
            if listen.ip().is_unspecified() && hosts.is_empty() {
                return Err(Refusal::new(
                    HOSTS,
                    format!("is unset while {LISTEN} {listen} answers on every address"),
                    "set it to the host[:port] names clients sign management requests for",
                ));
            }
            if args.management_insecure {
                return Err(Refusal::new(
                    INSECURE,
                    format!("is given with {ID} set: requests are signed"),
                    format!("drop {INSECURE}, or unset {ID} and {SECRET}"),
                ));
            }
            Some(ManagementCredentials {
                access_key_id,
                secret_access_key,
                hosts,
            })
        }
        (None, None) => None,
        (Some(_), None) => {
            return Err(Refusal::new(
                SECRET,
                format!("is not set while {ID} is"),
                both_or_neither,
            ))
        }
        (None, Some(_)) => {
            return Err(Refusal::new(
                ID,
                format!("is not set while {SECRET} is"),
                both_or_neither,
            ))
        }
    };
    if credentials.is_none() {
        if !args.management_hosts.is_empty() {
            return Err(Refusal::new(
                HOSTS,
                format!("names the hosts signed requests are for, and {ID} / {SECRET} are unset"),
                format!("set {ID} and {SECRET}, or drop {HOSTS}"),
            ));
        }
        if !listen.ip().is_loopback() {
            if !args.management_insecure {
                return Err(Refusal::new(
                    LISTEN,
                    format!(
                        "{listen} is not loopback and {ID} / {SECRET} are unset: whoever \
                         reaches it could post to, read and close every connection"
                    ),
                    format!(
                        "set both (requests are then SigV4-signed), listen on loopback, or \
                         pass {INSECURE} to serve it without authentication"
                    ),
                ));
            }
            tracing::warn!(
                %listen,
                "management API on a non-loopback address without authentication ({INSECURE}): \
                 whoever reaches it can post to, read and close every connection"
            );
        }
    }
    Ok(credentials)
}

/// `--management-host` values: `host` or `host:port` each (no user info, no path).
fn hosts(names: &[String]) -> Result<Vec<String>, String> {
    names
        .iter()
        .map(|name| {
            let name = name.trim();
            match Host::parse(name) {
                Some(_) => Ok(name.to_ascii_lowercase()),
                None => Err(format!("{name:?} is not a host[:port]")),
            }
        })
        .collect()
}
