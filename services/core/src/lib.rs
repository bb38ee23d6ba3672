#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
//! Switchboard's shared core. Everything here runs the same in AWS Lambda and in the
//! one-machine `switchboard` binary; it reaches the outside only through ports.
//!
//! - [`roster`]: the `RosterStore` port, the connection record and the in-memory adapter.
//! - [`pusher`]: the `ConnectionPusher` port and its error kinds.
//! - [`queue`]: the `MessageQueue` and `DeadLetterSink` ports.

pub mod pusher;
pub mod queue;
pub mod roster;
