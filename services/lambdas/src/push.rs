//! Web Push in the Lambdas (docs/design.md: Web Push; AWS deployment): the settings read
//! once at init and the bundle the publisher (it sends), `default` and `publish-api` (they
//! register devices) take.
//!
//! Push is off (`None`) when none of `VAPID_PUBLIC_KEY`, `VAPID_PRIVATE_KEY`,
//! `VAPID_SUBJECT` is set. A partial set, keys that do not match, or a `PUSH_*` value out
//! of bounds stops the function at init with the variable named, as every other
//! configuration error does. Devices live on the history table (`HISTORY_TABLE`, items
//! `D#<tenant>`); the push client trusts the system roots plus `SSL_CERT_FILE` when set.
//! Subscriptions must name public `https` endpoints ([`PushConfig::from_lookup`]'s
//! policy): there is no dev mode on AWS.

use std::sync::Arc;

use switchboard_core::devices::DeviceStore;
use switchboard_core::webpush::{PushConfig, WebPush};

use crate::publish_api::StartupError;

/// Web Push from the environment, its devices from `devices` (called only when push is on).
pub fn web_push(
    lookup: impl Fn(&str) -> Option<String>,
    devices: impl FnOnce() -> Arc<dyn DeviceStore>,
) -> Result<Option<WebPush>, StartupError> {
    let config = PushConfig::from_lookup(&lookup)?;
    Ok(WebPush::from_config(config, devices)?)
}
