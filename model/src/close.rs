//! The close codes a server sends on a client's WebSocket (docs/design.md: The one-machine binary,
//! "Close codes"). One list for both edges: `serve` closes with them, and API Gateway's own closes
//! use the same standard codes (RFC 6455 §7.4.1); 4000–4999 are ours.

/// 1000 Normal Closure: the connection was deleted (`DELETE @connections`, as API Gateway
/// closes it).
pub const CLOSE_NORMAL: u16 = 1000;
/// 1001 Going Away: the idle timeout, the connection's lifetime, or the server stopping.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// 1008 Policy Violation: a client that does not read (its outbox filled or a write timed
/// out), or one that sends actions faster than its allowance.
pub const CLOSE_POLICY_VIOLATION: u16 = 1008;
/// 1009 Message Too Big: a client frame larger than [`crate::MAX_FRAME_BYTES`].
pub const CLOSE_MESSAGE_TOO_BIG: u16 = 1009;
/// 4001: the connection's token expired and was not refreshed in band.
pub const CLOSE_TOKEN_EXPIRED: u16 = 4001;
/// 4003: the connection's tenant was suspended (docs/design.md: Tenants).
pub const CLOSE_TENANT_SUSPENDED: u16 = 4003;
