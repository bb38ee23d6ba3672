#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
//! Switchboard's Lambda functions. Each binary in `src/bin/` is a thin `main`: read
//! configuration, build its adapters once at init, then hand every event to a function
//! of this library, where the tests drive it with real-shaped API Gateway and SQS events.
//!
//! - [`authorizer`]: the WebSocket API's REQUEST authorizer (`src/bin/authorizer.rs`).
//! - [`connect`], [`disconnect`], [`default`]: the WebSocket routes `$connect`,
//!   `$disconnect`, `$default`, sharing [`websocket`] (event, identity, response).
//! - [`publisher`]: the SQS-triggered publisher (partial batch responses).
//! - [`events`]: `user.online` / `user.offline` to EventBridge from the roster table's
//!   stream and the delayed offline checks (partial batch responses).
//! - [`publish_api`]: the HTTP publish API, the core's router under `lambda_http`.
//! - [`push`]: Web Push from the environment (the publisher sends, `default` and
//!   `publish-api` register devices).
//! - [`telemetry`]: JSON logs for every function.
//! - [`usage`]: the usage store the connection routes count in.
//! - [`emf`]: CloudWatch Embedded Metric Format documents from the publisher and the
//!   publish API.

pub mod authorizer;
pub mod connect;
pub mod default;
pub mod disconnect;
pub mod emf;
pub mod events;
pub mod publish_api;
pub mod publisher;
pub mod push;
pub mod telemetry;
pub mod usage;
pub mod websocket;
