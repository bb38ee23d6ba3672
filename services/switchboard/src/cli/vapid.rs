//! `switchboard vapid-keys`: a fresh VAPID key pair for Web Push (docs/design.md: Web
//! Push), printed as the two settings, one per line, so that
//! `export $(switchboard vapid-keys)` sets them:
//!
//! ```text
//! VAPID_PUBLIC_KEY=<65-byte uncompressed P-256 point, base64url>
//! VAPID_PRIVATE_KEY=<32-byte P-256 scalar, base64url>
//! ```
//!
//! `VAPID_SUBJECT` (a `mailto:` or `https:` URL) is the operator's to choose; a reminder
//! goes to stderr.

use clap::Args;
use switchboard_core::webpush::VapidKeyPair;

use super::CliError;

#[derive(Args)]
pub struct VapidKeysArgs {}

pub fn vapid_keys_command(_args: VapidKeysArgs) -> Result<(), CliError> {
    let pair = VapidKeyPair::generate().map_err(|e| CliError::Failed(e.to_string()))?;
    println!("VAPID_PUBLIC_KEY={}", pair.public_key);
    println!("VAPID_PRIVATE_KEY={}", pair.private_key);
    eprintln!("# also set VAPID_SUBJECT (mailto:you@example.com or an https: URL)");
    Ok(())
}
