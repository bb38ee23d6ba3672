#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
//! Switchboard's domain model, free of I/O and of any cloud SDK.
//!
//! - [`ids`]: `TenantId`, `UserId`, `ConnectionId`, `MessageId`, newtypes that validate when
//!   built.
//! - [`envelope`]: the message envelope of docs/design.md: Messages (`Envelope`, `Target`) and its
//!   parser, whose errors name the offending field.
//! - [`frame`]: what travels on a client's WebSocket: delivered frames, client actions and
//!   the server's replies to them.
//! - [`push`]: the envelope's optional `push` object (Web Push for users with no live
//!   connection) and the notification payload it renders.
//! - [`claims`]: who a verified token says the caller is.
//! - [`close`]: the close codes a server ends a client's WebSocket with.

pub mod claims;
pub mod close;
pub mod envelope;
pub mod frame;
pub mod ids;
pub mod push;

pub use claims::{AdminScope, Claims, Role};
pub use envelope::{
    within_frame_limit, Envelope, EnvelopeError, FrameTooLarge, Target, TargetKind,
    MAX_FRAME_BYTES, MAX_USERS_PER_TARGET,
};
pub use frame::{ClientAction, DeliveredFrame, ErrorCode, ServerReply};
pub use ids::{ConnectionId, IdError, MessageId, TenantId, UserId, MAX_MESSAGE_ID_CHARS};
pub use push::Push;
