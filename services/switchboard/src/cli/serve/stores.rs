//! The stores `serve` runs on, built in one place (docs/design.md: The one-machine binary):
//! all in memory, each holding at most a tenant's share of its bound; or, with `--roster
//! dynamodb`, one DynamoDB client for the roster table and the history table (history,
//! receipts, usage and Web Push devices live there, as on AWS). One table policy for both
//! tables: against an endpoint override (DynamoDB Local) or with `--create-table` they are
//! made if missing — a failure stops start-up only when `--create-table` asked for it
//! (otherwise lookups fail, and messages are retried then dead-lettered, until the table
//! can be reached); against AWS the tables are infra/'s job. With events on, also the
//! online store (memory, or the history table's `O#` items) and, with `--roster dynamodb`,
//! the lease store (the history table's `L#serve` items).

use std::sync::Arc;

use switchboard_core::devices::{DeviceStore, MemoryDeviceStore, MAX_MEMORY_DEVICES};
use switchboard_core::history::{HistoryConfig, HistoryStore, MemoryHistoryStore};
use switchboard_core::leases::LeaseStore;
use switchboard_core::online::{MemoryOnlineStore, OnlineStore, MAX_MEMORY_ONLINE_USERS};
use switchboard_core::receipts::{MemoryReceiptStore, ReceiptConfig, Receipts};
use switchboard_core::roster::RosterStore;
use switchboard_core::tenants::share_of;
use switchboard_core::usage::{MemoryUsageStore, Usage, UsageConfig, MAX_MEMORY_USAGE_BUCKETS};

use super::ServeArgs;
use crate::cli::{CliError, Env, Refusal};
use crate::serve::{self, RosterKind};

/// What the stores are configured with.
pub struct StoreConfigs<'a> {
    pub history: &'a HistoryConfig,
    pub receipts: &'a ReceiptConfig,
    pub usage: &'a UsageConfig,
    /// Events are on (an endpoint is configured): build the online and lease stores.
    pub events: bool,
}

/// The stores of one `serve` process.
pub struct Stores {
    pub roster: Arc<dyn RosterStore>,
    pub history: Arc<dyn HistoryStore>,
    /// `None` with `RECEIPT_TTL_SECS=0`.
    pub receipts: Option<Receipts>,
    pub usage: Usage,
    /// Web Push devices (used only when push is on).
    pub devices: Arc<dyn DeviceStore>,
    /// Who is online, per user (`None`: events are off).
    pub online: Option<Arc<dyn OnlineStore>>,
    /// Leases of `serve` processes (`--roster dynamodb` with events on).
    pub leases: Option<Arc<dyn LeaseStore>>,
}

pub async fn build(
    args: &ServeArgs,
    env: &Env,
    configs: StoreConfigs<'_>,
) -> Result<Stores, CliError> {
    let share = |capacity| share_of(capacity, args.share_percent);
    let stores = match args.roster {
        RosterKind::Memory => Stores {
            roster: serve::memory_roster(),
            history: Arc::new(
                MemoryHistoryStore::from_config(configs.history)
                    .with_tenant_share(share(configs.history.max_bytes)),
            ),
            receipts: Receipts::new(
                Arc::new(MemoryReceiptStore::shared(
                    configs.receipts.capacity,
                    share(configs.receipts.capacity),
                )),
                configs.receipts,
            ),
            usage: Usage::new(
                Arc::new(MemoryUsageStore::new(
                    MAX_MEMORY_USAGE_BUCKETS,
                    share(MAX_MEMORY_USAGE_BUCKETS),
                    configs.usage.retention,
                )),
                configs.usage,
            ),
            devices: Arc::new(MemoryDeviceStore::shared(
                MAX_MEMORY_DEVICES,
                share(MAX_MEMORY_DEVICES),
            )),
            online: configs.events.then(|| {
                Arc::new(MemoryOnlineStore::shared(
                    MAX_MEMORY_ONLINE_USERS,
                    share(MAX_MEMORY_ONLINE_USERS),
                )) as Arc<dyn OnlineStore>
            }),
            leases: None,
        },
        RosterKind::Dynamodb => {
            let dynamo = switchboard_aws::DynamoConfig::from_lookup(|name: &str| env.get(name))
                .map_err(Refusal::from)?;
            let client = switchboard_aws::dynamodb_client(&dynamo).await;
            let history_table = configs.history.table.clone();
            if args.create_table || dynamo.endpoint.is_some() {
                let made = switchboard_aws::create_table(&client, &dynamo.table).await;
                ensured(args, &dynamo.table, made)?;
                let made = switchboard_aws::create_history_table(&client, &history_table).await;
                ensured(args, &history_table, made)?;
            }
            Stores {
                roster: Arc::new(switchboard_aws::DynamoRosterStore::new(
                    client.clone(),
                    dynamo.table.clone(),
                    dynamo.scan_segments,
                )),
                history: Arc::new(switchboard_aws::DynamoHistoryStore::new(
                    client.clone(),
                    history_table.clone(),
                )),
                receipts: Receipts::new(
                    Arc::new(switchboard_aws::DynamoReceiptStore::new(
                        client.clone(),
                        history_table.clone(),
                    )),
                    configs.receipts,
                ),
                devices: Arc::new(switchboard_aws::DynamoDeviceStore::new(
                    client.clone(),
                    history_table.clone(),
                )),
                online: configs.events.then(|| {
                    Arc::new(switchboard_aws::dynamo::DynamoOnlineStore::new(
                        client.clone(),
                        history_table.clone(),
                    )) as Arc<dyn OnlineStore>
                }),
                leases: configs.events.then(|| {
                    Arc::new(switchboard_aws::dynamo::DynamoLeaseStore::new(
                        client.clone(),
                        history_table.clone(),
                    )) as Arc<dyn LeaseStore>
                }),
                usage: Usage::new(
                    Arc::new(switchboard_aws::dynamo::DynamoUsageStore::new(
                        client,
                        history_table,
                        configs.usage.retention,
                    )),
                    configs.usage,
                ),
            }
        }
    };
    Ok(stores)
}

/// The table policy: a failure to make `table` stops start-up only under `--create-table`.
fn ensured<E: std::fmt::Display>(
    args: &ServeArgs,
    table: &str,
    made: Result<(), E>,
) -> Result<(), CliError> {
    match made {
        Ok(()) => Ok(()),
        Err(e) if args.create_table => {
            Err(CliError::Failed(format!("creating table {table}: {e}")))
        }
        Err(e) => {
            tracing::warn!(%table, error = %e, "could not ensure the table exists");
            Ok(())
        }
    }
}
