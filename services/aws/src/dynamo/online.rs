//! `DynamoOnlineStore`: the online-state port (`switchboard_core::online`) on the history
//! table (`HISTORY_TABLE`), beside history streams (`S#…`), receipts (`R#…`), devices
//! (`D#…`), usage (`U#…`), the work log (`W#…`) and leases (`L#…`), which never share a key
//! with it. One item per user:
//!
//! - `PK` = `O#<tenant>`, `SK` = `<user>`;
//! - `n` (live connections), `v` (the version: +1 on every add or remove), `st` (what the
//!   backend was last told: `online` or `offline`), and one attribute per live connection,
//!   `c#<connectionId>`, holding the version its add got.
//!
//! Every change is one conditional `UpdateItem` keyed by the connection's attribute, so a
//! change applied twice (a stream record or queue message delivered again) changes nothing:
//!
//! - `add`: `SET #c = if_not_exists(v, 0) + 1, v = if_not_exists(v, 0) + 1, st = online
//!   ADD n 1` if `attribute_not_exists(#c)`, `ReturnValues = ALL_OLD` (what was before:
//!   the answer's `connections_before` and `before`). When the condition fails the
//!   connection was added before: a strongly consistent `GetItem` answers `Known`.
//! - `remove`: `REMOVE #c SET v = v + 1 ADD n -1` if `attribute_exists(#c)`,
//!   `ReturnValues = ALL_NEW`; when the condition fails a consistent `GetItem` answers
//!   `Unknown` with the user's state.
//! - `mark_offline`: `SET st = offline` if `v = :v AND n = 0 AND st = online`; when the
//!   condition fails a consistent `GetItem` tells `Already` (offline at exactly that
//!   version, no connection) from `Stale`.
//!
//! No TTL on these items: a user's version must never start again from 0. An item holds
//! the user's live connections only (a few dozen bytes each), far below the 400 KB limit.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use switchboard_core::online::{Added, Marked, OnlineError, OnlineStore, Removed, Reported};
use switchboard_model::{ConnectionId, TenantId, UserId};

use super::table::table_adapter;
use super::{unavailable, PK, SK};

/// The partition key prefix of online items: `O#<tenant>`.
pub const ONLINE_PREFIX: &str = "O#";

/// Live connections.
const CONNECTIONS: &str = "n";
/// The version.
const VERSION: &str = "v";
/// What the backend was last told.
const STATUS: &str = "st";
const ONLINE: &str = "online";
const OFFLINE: &str = "offline";
/// The prefix of a live connection's attribute: `c#<connectionId>`.
const CONNECTION_PREFIX: &str = "c#";

type Item = HashMap<String, AttributeValue>;

table_adapter! {
    /// Online state on DynamoDB (the history table). Cheap to clone.
    DynamoOnlineStore
}

impl DynamoOnlineStore {
    /// The user's item now (strongly consistent), empty when there is none.
    async fn read(&self, tenant: &TenantId, user: &UserId) -> Result<Item, OnlineError> {
        let output = self
            .table
            .get_item()
            .set_key(Some(key(tenant, user)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| error("GetItem", e))?;
        Ok(output.item.unwrap_or_default())
    }
}

fn key(tenant: &TenantId, user: &UserId) -> Item {
    HashMap::from([
        (
            PK.to_string(),
            AttributeValue::S(format!("{ONLINE_PREFIX}{tenant}")),
        ),
        (SK.to_string(), AttributeValue::S(user.to_string())),
    ])
}

fn connection_attribute(connection: &ConnectionId) -> String {
    format!("{CONNECTION_PREFIX}{connection}")
}

fn number(n: u64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// A number attribute of `item`, 0 when absent (a user never seen) or not a count.
fn count(item: &Item, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<i64>().ok())
        .map_or(0, |n| u64::try_from(n).unwrap_or(0))
}

fn reported(item: &Item) -> Reported {
    match item
        .get(STATUS)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
    {
        Some(ONLINE) => Reported::Online,
        Some(OFFLINE) => Reported::Offline,
        _ => Reported::Nothing,
    }
}

fn error<E, R>(operation: &str, e: SdkError<E, R>) -> OnlineError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    OnlineError::Unavailable(unavailable(operation, e).to_string())
}

/// Whether `e` is a failed condition (the change was applied before, or is stale).
fn condition_failed<R>(
    e: &SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError, R>,
) -> bool {
    matches!(e, SdkError::ServiceError(failure)
        if failure.err().is_conditional_check_failed_exception())
}

#[async_trait]
impl OnlineStore for DynamoOnlineStore {
    async fn add(
        &self,
        tenant: &TenantId,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<Added, OnlineError> {
        let attribute = connection_attribute(connection);
        let update = self
            .table
            .update_item()
            .set_key(Some(key(tenant, user)))
            .update_expression(
                "SET #c = if_not_exists(#v, :zero) + :one, #v = if_not_exists(#v, :zero) + :one, \
                 #st = :online ADD #n :one",
            )
            .condition_expression("attribute_not_exists(#c)")
            .expression_attribute_names("#c", &attribute)
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_names("#st", STATUS)
            .expression_attribute_names("#n", CONNECTIONS)
            .expression_attribute_values(":zero", number(0))
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":online", AttributeValue::S(ONLINE.into()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match update {
            Ok(output) => {
                let old = output.attributes.unwrap_or_default();
                let connections_before = count(&old, CONNECTIONS);
                Ok(Added::New {
                    connections: connections_before + 1,
                    version: count(&old, VERSION) + 1,
                    connections_before,
                    before: reported(&old),
                })
            }
            Err(e) if condition_failed(&e) => {
                let item = self.read(tenant, user).await?;
                // Removed again between the two requests: the user's version stands in.
                let version = match item.get(&attribute) {
                    Some(_) => count(&item, &attribute),
                    None => count(&item, VERSION),
                };
                Ok(Added::Known {
                    connections: count(&item, CONNECTIONS),
                    version,
                })
            }
            Err(e) => Err(error("UpdateItem", e)),
        }
    }

    async fn remove(
        &self,
        tenant: &TenantId,
        user: &UserId,
        connection: &ConnectionId,
    ) -> Result<Removed, OnlineError> {
        let update = self
            .table
            .update_item()
            .set_key(Some(key(tenant, user)))
            .update_expression("REMOVE #c SET #v = #v + :one ADD #n :minus")
            .condition_expression("attribute_exists(#c)")
            .expression_attribute_names("#c", connection_attribute(connection))
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_names("#n", CONNECTIONS)
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":minus", AttributeValue::N("-1".into()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match update {
            Ok(output) => {
                let new = output.attributes.unwrap_or_default();
                Ok(Removed::Removed {
                    connections: count(&new, CONNECTIONS),
                    version: count(&new, VERSION),
                })
            }
            Err(e) if condition_failed(&e) => {
                let item = self.read(tenant, user).await?;
                Ok(Removed::Unknown {
                    connections: count(&item, CONNECTIONS),
                    version: count(&item, VERSION),
                    reported: reported(&item),
                })
            }
            Err(e) => Err(error("UpdateItem", e)),
        }
    }

    async fn mark_offline(
        &self,
        tenant: &TenantId,
        user: &UserId,
        version: u64,
    ) -> Result<Marked, OnlineError> {
        let update = self
            .table
            .update_item()
            .set_key(Some(key(tenant, user)))
            .update_expression("SET #st = :offline")
            .condition_expression("#v = :v AND #n = :zero AND #st = :online")
            .expression_attribute_names("#st", STATUS)
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_names("#n", CONNECTIONS)
            .expression_attribute_values(":offline", AttributeValue::S(OFFLINE.into()))
            .expression_attribute_values(":online", AttributeValue::S(ONLINE.into()))
            .expression_attribute_values(":v", number(version))
            .expression_attribute_values(":zero", number(0))
            .send()
            .await;
        match update {
            Ok(_) => Ok(Marked::Marked),
            Err(e) if condition_failed(&e) => {
                let item = self.read(tenant, user).await?;
                let already = count(&item, VERSION) == version
                    && count(&item, CONNECTIONS) == 0
                    && reported(&item) == Reported::Offline;
                Ok(if already {
                    Marked::Already
                } else {
                    Marked::Stale
                })
            }
            Err(e) => Err(error("UpdateItem", e)),
        }
    }
}
