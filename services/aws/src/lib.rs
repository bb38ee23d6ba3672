#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
//! Switchboard's AWS adapters for the core ports, and SDK client construction.
//!
//! - [`dynamo`]: [`DynamoRosterStore`] (the `RosterStore` port on one DynamoDB table: key
//!   layout, item mapping, lookups with [`LookupStats`], `create_table`) and
//!   [`DynamoHistoryStore`] (the `HistoryStore` port, `create_history_table`),
//!   [`DynamoReceiptStore`] (receipts), [`DynamoWorkLog`] (the `WorkLog` port: which
//!   units of delivery work ran) and [`DynamoDeviceStore`] (Web Push devices), all on the
//!   history table.
//! - [`poster`]: [`ApiGatewayPoster`] (the `ConnectionPoster` port on `PostToConnection`).
//! - [`sqs`]: [`SqsQueue`] (the `MessageQueue` and `DeadLetterSink` ports on SQS).
//! - [`eventbridge`]: [`EventBridgeSink`] (the `EventSink` port on `PutEvents`).
//! - [`config`]: [`DynamoConfig::from_lookup`] and client construction with endpoint
//!   overrides (`DYNAMODB_ENDPOINT`, DynamoDB Local's dummy credentials).

pub mod config;
pub mod dynamo;
pub mod eventbridge;
pub mod poster;
pub mod sqs;

pub use config::{dynamodb_client, load_sdk_config, DynamoConfig, LocalDefaults};
pub use dynamo::{
    create_history_table, create_table, delete_table, DynamoDeviceStore, DynamoHistoryStore,
    DynamoLeaseStore, DynamoOnlineStore, DynamoReceiptStore, DynamoRosterStore, DynamoWorkLog,
    LookupStats,
};
pub use eventbridge::EventBridgeSink;
pub use poster::ApiGatewayPoster;
pub use sqs::SqsQueue;
