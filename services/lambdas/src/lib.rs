#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
//! Switchboard's Lambda functions. Each binary in `src/bin/` is a thin `main`: read
//! configuration, build its adapters once at init, then hand every event to a function
//! of this library, where the tests drive it with real-shaped API Gateway events.
//!
//! - [`authorizer`]: the WebSocket API's REQUEST authorizer (`src/bin/authorizer.rs`).
//! - [`telemetry`]: JSON logs for every function.

pub mod authorizer;
pub mod telemetry;
