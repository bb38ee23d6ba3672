#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
//! Switchboard's AWS adapters for the core ports, and SDK client construction.
//!
//! - [`dynamo`]: [`DynamoRosterStore`] (the `RosterStore` port on one DynamoDB table: key
//!   layout, item mapping, lookups with [`LookupStats`], `create_table`); on the history
//!   table (`create_history_table`), each kind under its own key prefix:
//!   [`DynamoHistoryStore`] (the `HistoryStore` port), [`DynamoReceiptStore`] (receipts),
//!   [`dynamo::DynamoUsageStore`] (usage per tenant per minute), [`DynamoWorkLog`] (the
//!   `WorkLog` port: which units of delivery work ran), [`DynamoDeviceStore`] (Web Push
//!   devices), [`DynamoOnlineStore`] (each user's online state, for presence events) and
//!   [`DynamoLeaseStore`] (`serve`'s leases on a shared roster). [`dynamo::DynamoStores`]
//!   builds them all from one client and the two tables ([`dynamo::CreateTables`]: when
//!   start-up makes those).
//! - [`poster`]: [`ApiGatewayPoster`] (the `ConnectionPoster` port on `PostToConnection`).
//! - [`sqs`]: [`SqsQueue`] (the `MessageQueue` and `DeadLetterSink` ports on SQS).
//! - [`eventbridge`]: [`EventBridgeSink`] (the `EventSink` port on `PutEvents`).
//! - [`config`]: [`DynamoConfig::from_lookup`] (the endpoint and both tables) and client
//!   construction with endpoint overrides (`DYNAMODB_ENDPOINT`, DynamoDB Local's dummy
//!   credentials).
//! - [`testkit`] (tests and the `testkit` feature): the fake SDK configuration for tests.

pub mod config;
pub mod dynamo;
pub mod eventbridge;
pub mod poster;
pub mod sqs;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use config::{dynamodb_client, load_sdk_config, DynamoConfig, LocalDefaults};
pub use dynamo::{
    create_history_table, create_table, delete_table, DynamoDeviceStore, DynamoHistoryStore,
    DynamoLeaseStore, DynamoOnlineStore, DynamoReceiptStore, DynamoRosterStore, DynamoWorkLog,
    LookupStats,
};
pub use eventbridge::EventBridgeSink;
pub use poster::ApiGatewayPoster;
pub use sqs::SqsQueue;
