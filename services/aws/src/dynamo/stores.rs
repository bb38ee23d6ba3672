//! The one place DynamoDB is put together ([`DynamoStores`]): one client, the two tables of
//! [`DynamoConfig`], every DynamoDB adapter on them, and when start-up makes the tables
//! ([`CreateTables`]). `serve` (`--roster dynamodb`) and every Lambda function build their
//! stores here.
//!
//! Two tables: the roster (`ROSTER_TABLE`) on its own, with the `byUser` index and the
//! stream the events function reads; and the history table (`HISTORY_TABLE`), which holds
//! history and everything else, each kind under its own key prefix: receipts, usage, the
//! work log, Web Push devices, online state and `serve`'s leases (docs/design.md: AWS
//! deployment).

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use switchboard_core::roster::RosterError;

use super::{
    create_history_table, create_table, DynamoDeviceStore, DynamoHistoryStore, DynamoLeaseStore,
    DynamoOnlineStore, DynamoReceiptStore, DynamoRosterStore, DynamoUsageStore, DynamoWorkLog,
    Table,
};
use crate::config::{
    dynamodb_client, dynamodb_client_from, load_sdk_config, with_store_timeouts, DynamoConfig,
};

/// One DynamoDB client and the two tables, handing out each store on its table. Cheap to
/// clone; every store it makes shares the client.
#[derive(Debug, Clone)]
pub struct DynamoStores {
    roster: Table,
    history: Table,
    scan_segments: usize,
}

impl DynamoStores {
    /// The stores of `config` with the SDK's default timeouts (`serve`, the WebSocket and
    /// HTTP functions).
    pub async fn connect(config: &DynamoConfig) -> Self {
        Self::with_client(dynamodb_client(config).await, config)
    }

    /// The stores of `config` with every call bounded by the store timeouts
    /// ([`with_store_timeouts`]): for the functions with a deadline to keep (the publisher,
    /// the events function).
    pub async fn connect_bounded(config: &DynamoConfig) -> Self {
        let sdk = with_store_timeouts(&load_sdk_config(config.local).await);
        Self::with_client(
            dynamodb_client_from(&sdk, config.endpoint.as_deref()),
            config,
        )
    }

    /// The stores of `config` through a client made elsewhere.
    pub fn with_client(client: Client, config: &DynamoConfig) -> Self {
        Self {
            roster: Table::new(client.clone(), config.roster_table.clone()),
            history: Table::new(client, config.history_table.clone()),
            scan_segments: config.scan_segments,
        }
    }

    pub fn client(&self) -> &Client {
        self.roster.client()
    }

    /// The roster, on the roster table, scanning with `SCAN_SEGMENTS` segments.
    pub fn roster(&self) -> DynamoRosterStore {
        DynamoRosterStore::on(self.roster.clone(), self.scan_segments)
    }

    pub fn history(&self) -> DynamoHistoryStore {
        DynamoHistoryStore::on(self.history.clone())
    }

    pub fn receipts(&self) -> DynamoReceiptStore {
        DynamoReceiptStore::on(self.history.clone())
    }

    /// Usage buckets, each kept for `retention` (`USAGE_RETENTION_DAYS`).
    pub fn usage(&self, retention: Duration) -> DynamoUsageStore {
        DynamoUsageStore::on(self.history.clone(), retention)
    }

    pub fn devices(&self) -> DynamoDeviceStore {
        DynamoDeviceStore::on(self.history.clone())
    }

    pub fn online(&self) -> DynamoOnlineStore {
        DynamoOnlineStore::on(self.history.clone())
    }

    pub fn leases(&self) -> DynamoLeaseStore {
        DynamoLeaseStore::on(self.history.clone())
    }

    pub fn work_log(&self) -> DynamoWorkLog {
        DynamoWorkLog::on(self.history.clone())
    }

    /// Makes the roster table, then the history table, where missing, as `policy` says.
    pub async fn create_tables(&self, policy: CreateTables) -> Result<(), CreateTablesError> {
        if policy == CreateTables::Never {
            return Ok(());
        }
        let client = self.client();
        let roster = self.roster.name();
        policy.settle(roster, create_table(client, roster).await)?;
        let history = self.history.name();
        policy.settle(history, create_history_table(client, history).await)
    }
}

/// Whether start-up makes the tables, and what a failure to make one means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateTables {
    /// Never: on AWS the tables are infra/'s.
    Never,
    /// Make the missing ones; a failure is logged and start-up goes on (lookups fail, and
    /// messages are retried then dead-lettered, until the table can be reached).
    Try,
    /// Make the missing ones; a failure stops start-up.
    Require,
}

impl CreateTables {
    /// `serve`'s policy: asked for (`--create-table`), the tables are required; against an
    /// endpoint override (DynamoDB Local) they are tried; against AWS, never.
    pub fn from_flag(asked: bool, config: &DynamoConfig) -> Self {
        match (asked, config.endpoint.is_some()) {
            (true, _) => Self::Require,
            (false, true) => Self::Try,
            (false, false) => Self::Never,
        }
    }

    fn settle(self, table: &str, made: Result<(), RosterError>) -> Result<(), CreateTablesError> {
        match made {
            Ok(()) => Ok(()),
            Err(source) if self == Self::Require => Err(CreateTablesError {
                table: table.to_string(),
                source,
            }),
            Err(e) => {
                tracing::warn!(%table, error = %e, "could not ensure the table exists");
                Ok(())
            }
        }
    }
}

/// A table [`CreateTables::Require`] asked for could not be made.
#[derive(Debug, thiserror::Error)]
#[error("creating table {table}: {source}")]
pub struct CreateTablesError {
    pub table: String,
    pub source: RosterError,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: Option<&str>) -> DynamoConfig {
        DynamoConfig::from_lookup(|name| match name {
            "DYNAMODB_ENDPOINT" => endpoint.map(str::to_string),
            _ => None,
        })
        .unwrap()
    }

    #[test]
    fn serve_requires_tables_asked_for_and_tries_them_locally() {
        let local = config(Some("http://127.0.0.1:8000"));
        let aws = config(None);
        assert_eq!(CreateTables::from_flag(true, &aws), CreateTables::Require);
        assert_eq!(CreateTables::from_flag(true, &local), CreateTables::Require);
        assert_eq!(CreateTables::from_flag(false, &local), CreateTables::Try);
        assert_eq!(CreateTables::from_flag(false, &aws), CreateTables::Never);
    }

    #[test]
    fn only_a_required_table_fails_start_up() {
        let failed = || Err(RosterError::Unavailable("CreateTable: refused".into()));
        let error = CreateTables::Require.settle("t-1", failed()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "creating table t-1: roster store unavailable: CreateTable: refused"
        );
        assert!(CreateTables::Try.settle("t-1", failed()).is_ok());
    }
}
