//! The state every `serve` handler shares ([`App`]: the registry, the roster, the verifier,
//! the queue, the client actions' ports, tenants, usage and events) and the per-socket
//! limits it carries. The handler modules (gateway, management, dead letters, the demo) take
//! it from here; `serve/mod.rs` builds it and assembles the routers.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use switchboard_core::auth::{DevMint, Verifier};
use switchboard_core::connection::{ActionDeps, ConnectConfig};
use switchboard_core::roster::RosterStore;
use switchboard_core::tenants::Tenants;
use switchboard_core::usage::Usage;

use super::events::Events;
use super::local_queue::LocalQueue;
use super::metrics::Metrics;
use super::registry::{InstanceTag, Registry};

/// Shared state of every handler.
pub struct App {
    pub stage: String,
    pub registry: Arc<Registry>,
    pub roster: Arc<dyn RosterStore>,
    pub verifier: Arc<Verifier>,
    pub connect_config: ConnectConfig,
    pub limits: SocketLimits,
    pub metrics: Arc<Metrics>,
    pub queue: Arc<LocalQueue>,
    pub dev: Option<DevMint>,
    /// Prefix of this process's connection ids.
    pub instance: InstanceTag,
    /// What the client actions (`resume`, `refresh`) need.
    pub actions: ActionDeps,
    /// Tenant settings: suspension and connection caps at the handshake.
    pub tenants: Tenants,
    /// Usage per tenant (its failed writes are reported in `/metrics`).
    pub usage: Usage,
    /// Presence events after roster writes; `None`: events are off.
    pub events: Option<Arc<Events>>,
}

/// Per-socket limits (docs/design.md: The one-machine binary).
#[derive(Debug, Clone, Copy)]
pub struct SocketLimits {
    /// `SEND_TIMEOUT_SECS`: longest write to a client; beyond, the socket is closed (1008).
    pub send_timeout: Duration,
    /// `IDLE_TIMEOUT_SECS`: a socket without a client frame this long is closed (1001).
    pub idle_timeout: Duration,
    /// `ACTIONS_PER_SECOND` and `ACTION_BURST`: each socket's allowance of client frames
    /// (a token bucket); a socket beyond it is closed (1008).
    pub actions: ActionAllowance,
}

/// A socket's allowance of client frames: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionAllowance {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

impl Default for ActionAllowance {
    fn default() -> Self {
        Self {
            per_second: NonZeroU32::MIN.saturating_add(DEFAULT_ACTIONS_PER_SECOND - 1),
            burst: NonZeroU32::MIN.saturating_add(DEFAULT_ACTION_BURST - 1),
        }
    }
}

/// `ACTIONS_PER_SECOND`'s default: the client library sends a `ping` every few minutes, a
/// `resume` per socket and a `refresh` per token; ten a second is far above any of them.
pub const DEFAULT_ACTIONS_PER_SECOND: u32 = 10;
/// `ACTION_BURST`'s default.
pub const DEFAULT_ACTION_BURST: u32 = 20;

impl Default for SocketLimits {
    fn default() -> Self {
        Self {
            send_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(600),
            actions: ActionAllowance::default(),
        }
    }
}
