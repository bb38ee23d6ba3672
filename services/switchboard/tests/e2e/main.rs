#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end tests: `switchboard serve` on port 0 — started in this process through the
//! binary's own start-up path, or as the real binary where the CLI, signals, exit status or
//! logs are under test — real WebSocket clients, real signed JWTs, the official
//! `aws-sdk-apigatewaymanagement` client. Every scenario runs twice: with the memory roster
//! and with `--roster dynamodb` on DynamoDB Local.

mod cli;
mod client_frames;
mod console_api;
mod console_serving;
mod cost;
mod events_config;
mod events_isolation;
mod events_presence;
mod events_restart;
mod events_retry;
mod events_settled;
mod hardening;
mod harness;
mod help;
mod history;
mod history_bounds;
mod identity;
mod identity_edges;
mod keep_alive;
mod keys;
mod listeners;
mod management;
mod push_api;
mod push_crypto;
mod push_delivery;
mod receipts;
mod refusals;
mod scenarios;
mod tenant_limits;
mod tenant_queue;
mod tenant_shares;
mod url_limit;
mod usage;
mod vapid_keys;
mod webhook_receiver;

use history::*;
use receipts::*;
use scenarios::*;

macro_rules! both_rosters {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::harness::Backend;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn memory_roster() {
                    super::$name(Backend::Memory).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn dynamodb_roster() {
                    super::$name(Backend::Dynamodb).await;
                }
            }
        )*
    };
}

both_rosters!(
    every_target_reaches_exactly_its_connections,
    bad_tokens_are_refused_with_401_and_no_roster_entry,
    client_actions_follow_the_spec,
    closing_removes_the_connection,
    management_api_works_with_the_official_sdk,
    publish_api_answers_each_case,
    graceful_shutdown_closes_sockets_with_1001,
    connections_close_when_their_roster_item_expires,
    paged_fan_out_reaches_each_connection_once,
    rate_limited_paged_fan_out_reaches_each_connection_once,
    resume_after_a_reconnect_gets_exactly_what_was_missed,
    resume_past_retention_is_incomplete,
    concurrent_publishers_and_a_resuming_client_lose_nothing,
    presence_follows_connections,
    token_expiry_closes_unless_refreshed,
    receipts_report_delivery_and_repeated_ids_are_not_resent,
    receipts_off_means_no_receipts_and_no_idempotency,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_pages_a_large_tenant() {
    history::presence_pages_a_large_tenant(harness::Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_roster_redelivers_then_dead_letters() {
    scenarios::failing_roster_redelivers_then_dead_letters().await;
}
