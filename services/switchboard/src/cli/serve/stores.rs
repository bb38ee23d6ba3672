//! The stores `serve` runs on, built in one place (docs/design.md: The one-machine binary):
//! all in memory, each holding at most a tenant's share of its bound; or, with `--roster
//! dynamodb`, the DynamoDB stores as on AWS ([`DynamoStores`]), the tables made as
//! [`CreateTables::from_flag`] says (`--create-table`, or an endpoint override). With
//! events on, also the online store and, with `--roster dynamodb`, the lease store.

use std::sync::Arc;

use switchboard_core::devices::{DeviceStore, MemoryDeviceStore, MAX_MEMORY_DEVICES};
use switchboard_core::history::{HistoryConfig, HistoryStore, MemoryHistoryStore};
use switchboard_core::leases::LeaseStore;
use switchboard_core::online::{MemoryOnlineStore, OnlineStore, MAX_MEMORY_ONLINE_USERS};
use switchboard_core::receipts::{MemoryReceiptStore, ReceiptConfig, Receipts};
use switchboard_core::roster::RosterStore;
use switchboard_core::tenants::share_of;
use switchboard_core::usage::{MemoryUsageStore, Usage, UsageConfig, MAX_MEMORY_USAGE_BUCKETS};

use switchboard_aws::dynamo::{CreateTables, DynamoStores};
use switchboard_aws::DynamoConfig;

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
            let config =
                DynamoConfig::from_lookup(|name: &str| env.get(name)).map_err(Refusal::from)?;
            let dynamo = DynamoStores::connect(&config).await;
            dynamo
                .create_tables(CreateTables::from_flag(args.create_table, &config))
                .await
                .map_err(|e| CliError::Failed(e.to_string()))?;
            Stores {
                roster: Arc::new(dynamo.roster()),
                history: Arc::new(dynamo.history()),
                receipts: Receipts::new(Arc::new(dynamo.receipts()), configs.receipts),
                usage: Usage::new(
                    Arc::new(dynamo.usage(configs.usage.retention)),
                    configs.usage,
                ),
                devices: Arc::new(dynamo.devices()),
                online: configs
                    .events
                    .then(|| Arc::new(dynamo.online()) as Arc<dyn OnlineStore>),
                leases: configs
                    .events
                    .then(|| Arc::new(dynamo.leases()) as Arc<dyn LeaseStore>),
            }
        }
    };
    Ok(stores)
}
