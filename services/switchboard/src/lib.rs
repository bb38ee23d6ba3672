//! Switchboard on one machine (the `switchboard` binary's library).
//!
//! - [`serve`]: the WebSocket gateway, `@connections`, publish and dead-letter APIs, the
//!   in-process queue and the publisher.
//! - [`console`]: the operator console's page, and `switchboard console`'s forwarding.
//! - [`cli`]: the commands (`serve`, `token`, `publish`); [`cli::serve::start_in_process`]
//!   starts a server as the binary would, for tests.

pub mod cli;
pub mod console;
pub mod serve;
