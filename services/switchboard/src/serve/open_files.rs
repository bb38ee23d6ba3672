//! The process's open-files limit (`RLIMIT_NOFILE`): every connection takes a descriptor, and
//! distributions start processes with a soft limit of 1024 although the hard limit allows far
//! more. `serve` raises the soft limit to the hard one at start and logs both numbers.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Raises the soft open-files limit to the hard limit; logs the limits (a warning when the
/// limit could not be raised). Returns the soft limit now in force (`None`: unlimited).
pub fn raise_open_files_limit() -> Option<u64> {
    let before = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: before.maximum,
        maximum: before.maximum,
    };
    if before.current == before.maximum {
        tracing::info!(
            soft = ?before.current,
            hard = ?before.maximum,
            "open-files limit already at its hard limit"
        );
        return before.current;
    }
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            let now = getrlimit(Resource::Nofile);
            tracing::info!(
                was = ?before.current,
                soft = ?now.current,
                hard = ?now.maximum,
                "open-files limit raised to its hard limit"
            );
            now.current
        }
        Err(error) => {
            tracing::warn!(
                %error,
                soft = ?before.current,
                hard = ?before.maximum,
                "could not raise the open-files limit to its hard limit"
            );
            before.current
        }
    }
}
