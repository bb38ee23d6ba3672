//! Events for the backend (docs/design.md: Events): `user.online`, `user.offline` and
//! `message.settled`, one JSON shape in both deployments.
//!
//! - [`Event`]: the shape, with a deterministic `id` (a retry of the same change makes the
//!   same id, so receivers dedupe) and the tenant it belongs to.
//! - [`EventSink`]: the port events leave through. `serve`: signed webhooks (Standard
//!   Webhooks), `switchboard::serve::webhooks`; AWS: Amazon EventBridge
//!   (`switchboard_aws::EventBridgeSink`). [`MemoryEventSink`] records them (tests).
//! - [`presence`]: turns roster changes into `user.online` / `user.offline` through the
//!   [`crate::online::OnlineStore`], with the offline delay (debounce).
//!
//! Emitting never delays or fails delivery: a sink that cannot take an event logs and
//! counts it.

mod event;
mod memory;
pub mod presence;
#[cfg(test)]
mod presence_tests;

pub use event::{Event, EventKind};
pub use memory::MemoryEventSink;
pub use presence::{
    offline_delay, OfflineCheck, PresenceEvents, DEFAULT_OFFLINE_DELAY_SECS, MAX_OFFLINE_DELAY_SECS,
};

use async_trait::async_trait;

/// Why a sink did not take some events.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The destination failed or could not be reached; `failed` of the events were not
    /// taken (the others were).
    #[error("event sink unavailable ({failed} events not taken): {reason}")]
    Unavailable { failed: usize, reason: String },
    /// The sink's bounded buffer is full (`serve`'s webhook queue): the events were
    /// dropped, counted and logged.
    #[error("event buffer full: {dropped} events dropped")]
    Full { dropped: usize },
}

/// Where events go. Implementations must not block for long: `serve`'s enqueues and
/// returns; EventBridge's `PutEvents` is bounded by its timeout.
#[async_trait]
pub trait EventSink: Send + Sync {
    async fn emit(&self, events: Vec<Event>) -> Result<(), EventError>;
}
