#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
//! Switchboard's shared core. Everything here runs the same in AWS Lambda and in the
//! one-machine `switchboard` binary; it reaches the outside only through ports.
//!
//! - [`auth`]: JWT/JWKS verification, token extraction, claim mapping, dev token minting.
//! - [`roster`]: the `RosterStore` port, the connection record and the in-memory adapter.
//! - [`poster`]: the `ConnectionPoster` port and its error kinds.
//! - [`queue`]: the `MessageQueue` and `DeadLetterSink` ports.
//! - [`config`]: typed configuration from a lookup function, errors naming the variable.
//! - [`history`]: the `HistoryStore` port, cursors, the memory adapter, `resume`.
//! - [`connection`]: `$connect`, `$disconnect` and the `$default` client actions.
//! - [`http`]: the HTTP edge's one error type and answer, and bearer-token authentication.
//! - [`publish_api`]: `POST /v1/messages` as an `axum::Router` (auth, validation, roles).
//! - [`presence`]: `GET /v1/tenants/{tenant}/presence`, `.../presence/summary` and
//!   `.../users/{user}/presence`; [`overview`]: `GET /v1/tenants` (an admin's tenants).
//! - [`tenants`]: tenant settings (`TENANTS_FILE`): suspension, allowed targets, limits,
//!   rates, and each tenant's share of shared bounds.
//! - [`receipts`]: the `ReceiptStore` port, receipts and their status, the memory adapter.
//! - [`usage`]: usage per tenant per minute: the `UsageStore` port, memory adapter, API.
//! - [`worklog`]: the `WorkLog` port (which units of delivery work ran), memory adapter.
//! - [`events`]: `user.online`/`user.offline`/`message.settled`: the `EventSink` port,
//!   presence events with the offline delay.
//! - [`online`]: the `OnlineStore` port (each user's live connections and version).
//! - [`leases`]: the `LeaseStore` port (which `serve` processes sharing a roster are alive).
//! - [`devices`]: the `DeviceStore` port (each user's Web Push devices), memory adapter;
//!   [`push_api`]: `/v1/push/subscriptions` and the VAPID public key as an `axum::Router`.
//! - [`webpush`]: the `PushSender` port and its one adapter, `WebPushSender` (VAPID, RFC 8291
//!   encryption), serving both deployments.
//! - [`publisher`]: target resolution, bounded fan-out with retries, batch results.
//! - [`testkit`] (tests and the `testkit` feature): scripted poster and push sender,
//!   recording queues, a fake Web Push service; each port's suite is its `contract` module.

pub mod auth;
pub mod config;
pub mod connection;
pub mod devices;
pub mod events;
pub mod history;
pub mod http;
pub mod leases;
pub mod online;
pub mod overview;
pub mod poster;
pub mod presence;
pub mod publish_api;
pub mod publisher;
pub mod push_api;
pub mod queue;
pub mod receipts;
pub mod roster;
pub mod tenants;
pub mod usage;
pub mod webpush;
pub mod worklog;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
