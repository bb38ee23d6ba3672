//! Web Push for `serve` (docs/design.md: Web Push): the `VAPID_*` and `PUSH_*` settings, and
//! with keys set the bundle the publisher, the socket actions and the push API share — the
//! device store of the composition root and the HTTPS sender. Without keys push is off
//! (`None`). `--dev` lets subscriptions name `https` endpoints on loopback, so a local push
//! service can be used.

use std::sync::Arc;

use switchboard_core::devices::{DeviceStore, EndpointPolicy};
use switchboard_core::webpush::{PushConfig, WebPush};

use crate::cli::{CliError, Refusal};

/// The push settings from `lookup`, with `--dev`'s endpoint policy.
pub fn config(lookup: impl Fn(&str) -> Option<String>, dev: bool) -> Result<PushConfig, Refusal> {
    let mut config = PushConfig::from_lookup(lookup).map_err(Refusal::from)?;
    config.endpoint_policy = if dev {
        EndpointPolicy::AllowLoopback
    } else {
        EndpointPolicy::Public
    };
    Ok(config)
}

/// Web Push on `devices`, or `None` when no VAPID keys are set.
pub fn web_push(
    config: PushConfig,
    devices: Arc<dyn DeviceStore>,
) -> Result<Option<WebPush>, CliError> {
    WebPush::from_config(config, || devices)
        .map_err(|e| CliError::Failed(format!("the Web Push client: {e}")))
}
