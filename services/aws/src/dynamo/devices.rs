//! `DynamoDeviceStore`: the device port (`switchboard_core::devices`) on the history table
//! (`HISTORY_TABLE`), beside history streams (`S#…`), receipts (`R#…`), usage (`U#…`) and
//! the work log (`W#…`), which never share a key with it. One item per device:
//!
//! - `PK` = `D#<tenant>`, `SK` = `<user>#<deviceId>` (user ids never contain `#`, so
//!   `begins_with(SK, "<user>#")` is exactly one user's devices, and a tenant's items sort
//!   by user, then device id);
//! - `endpoint`, `p256dh`, `auth` (the subscription, as the browser gave it),
//!   `registeredAt` (RFC 3339), `expiresAt` (unix seconds; the table's TTL attribute).
//!
//! - `put` is a `PutItem` (replacing the same device), then a strongly consistent `Query`
//!   of the user's devices and a `DeleteItem` of each expired one and of the oldest live
//!   ones beyond the bound (never the device just written).
//! - `remove` is one `DeleteItem` with `ReturnValues = ALL_OLD`: it removed something when
//!   attributes come back (and that something counts only if it had not expired).
//! - `list_users` is one `Query` per user (every page), at most [`USER_QUERY_CONCURRENCY`]
//!   in flight.
//! - `list_page` is a `Query` on the tenant's `PK` from the continuation ([`Continuation`]:
//!   the last item's key), reading one item past the limit to see whether the page ends
//!   inside a user's devices; if so, that user's devices move to the next page (unless they
//!   fill the page alone).
//!
//! No `FilterExpression`: expired items (TTL deletes lazily) are dropped client-side, items
//! that are not valid devices are logged, skipped and counted ([`DevicePage::skipped`]).

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use futures::{stream, StreamExt, TryStreamExt};
use switchboard_core::devices::{
    oldest_beyond, Device, DeviceError, DeviceId, DevicePage, DeviceStore, Subscription,
    SubscriptionKeys,
};
use switchboard_core::roster::RosterError;
use switchboard_model::{TenantId, UserId};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::continuation::Continuation;
use super::table::table_adapter;
use super::{log_skipped, unavailable, PK, SK, TTL_ATTRIBUTE, USER_QUERY_CONCURRENCY};

/// The partition key prefix of device items: `D#<tenant>`.
pub const DEVICE_PREFIX: &str = "D#";

const ENDPOINT: &str = "endpoint";
const P256DH: &str = "p256dh";
const AUTH: &str = "auth";
const REGISTERED_AT: &str = "registeredAt";

/// Pages one `list_page` call reads at most (a page of `Query` stops at 1 MB; devices are a
/// few hundred bytes, so one page is the rule).
const MAX_QUERY_PAGES: usize = 8;

type Item = HashMap<String, AttributeValue>;

table_adapter! {
    /// Devices on DynamoDB (the history table). Cheap to clone.
    DynamoDeviceStore
}

impl DynamoDeviceStore {
    /// Every item (devices or not) under `pk` whose `SK` starts with `prefix` (a user's:
    /// `<user>#`), every page.
    async fn query_user(
        &self,
        pk: String,
        prefix: String,
        consistent: bool,
    ) -> Result<Vec<Item>, DeviceError> {
        let mut pages = self
            .table
            .query(pk)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :user)")
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":user", AttributeValue::S(prefix))
            .consistent_read(consistent)
            .into_paginator()
            .send();
        let mut items = Vec::new();
        while let Some(page) = pages.next().await {
            items.extend(
                page.map_err(|e| error("Query", e))?
                    .items
                    .unwrap_or_default(),
            );
        }
        Ok(items)
    }

    async fn delete(&self, tenant: &TenantId, sk: String) -> Result<Option<Item>, DeviceError> {
        let output = self
            .table
            .delete_item()
            .key(PK, AttributeValue::S(tenant_key(tenant)))
            .key(SK, AttributeValue::S(sk))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| error("DeleteItem", e))?;
        Ok(output.attributes.filter(|item| !item.is_empty()))
    }

    /// The tenant's items from `start` until `want` live devices are among them (or the
    /// partition ends, or [`MAX_QUERY_PAGES`] were read), and the key to go on from when the
    /// query was not read to its end.
    async fn read_entries(
        &self,
        tenant: &TenantId,
        mut start: Option<Item>,
        want: usize,
    ) -> Result<(Vec<Entry>, Option<Item>), DeviceError> {
        let now = now_secs();
        let mut entries: Vec<Entry> = Vec::new();
        let mut live = 0;
        for _ in 0..MAX_QUERY_PAGES {
            let limit = i32::try_from(want.saturating_sub(live).max(1)).unwrap_or(i32::MAX);
            let output = self
                .table
                .query(tenant_key(tenant))
                .set_exclusive_start_key(start)
                .limit(limit)
                .send()
                .await
                .map_err(|e| error("Query", e))?;
            for item in output.items.unwrap_or_default() {
                let entry = Entry::read(item, tenant, now);
                live += usize::from(entry.device.is_some());
                entries.push(entry);
            }
            start = output.last_evaluated_key.filter(|key| !key.is_empty());
            if start.is_none() || live >= want {
                break;
            }
        }
        Ok((entries, start))
    }
}

/// One item read for a page: the item, and the live device it holds (`None`: expired, or
/// not a device at all: `corrupt`).
struct Entry {
    item: Item,
    device: Option<Device>,
    corrupt: bool,
}

impl Entry {
    fn read(item: Item, tenant: &TenantId, now: i64) -> Self {
        match readable(&item) {
            Some(device) if &device.tenant == tenant => Self {
                device: (device.expires_at > now).then_some(device),
                corrupt: false,
                item,
            },
            _ => Self {
                item,
                device: None,
                corrupt: true,
            },
        }
    }
}

/// The entries of one page of at most `limit` live devices out of what was read (`rest`:
/// the query was not read to its end), and whether more follow. A user whose devices go on
/// past the page moves to the next page whole, unless the page would be left with none.
fn cut_page(mut entries: Vec<Entry>, limit: usize, rest: bool) -> (Vec<Entry>, bool) {
    let mut end = entries.len();
    let mut live = 0;
    for (i, entry) in entries.iter().enumerate() {
        if entry.device.is_some() {
            live += 1;
            if live == limit {
                end = i + 1;
                break;
            }
        }
    }
    let next_user = entries[end..]
        .iter()
        .find_map(|e| e.device.as_ref())
        .map(|d| d.user.clone());
    let Some(next_user) = next_user else {
        return (entries, rest);
    };
    let last_other = entries[..end]
        .iter()
        .rposition(|e| e.device.as_ref().is_some_and(|d| d.user != next_user));
    let last_user = entries[..end]
        .iter()
        .rev()
        .find_map(|e| e.device.as_ref())
        .map(|d| &d.user);
    if last_user == Some(&next_user) {
        if let Some(last_other) = last_other {
            end = last_other + 1;
        }
    }
    entries.truncate(end);
    (entries, true)
}

/// `D#<tenant>`.
fn tenant_key(tenant: &TenantId) -> String {
    format!("{DEVICE_PREFIX}{tenant}")
}

/// `<user>#<deviceId>`.
fn device_key(user: &UserId, id: &DeviceId) -> String {
    format!("{user}#{id}")
}

fn user_prefix(user: &UserId) -> String {
    format!("{user}#")
}

fn error<E, R>(operation: &str, e: SdkError<E, R>) -> DeviceError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match unavailable(operation, e) {
        RosterError::Unavailable(message) => DeviceError::Unavailable(message),
        other => DeviceError::Unavailable(other.to_string()),
    }
}

fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The item of a device.
fn device_to_item(device: &Device) -> Result<Item, DeviceError> {
    let registered_at = device
        .registered_at
        .format(&Rfc3339)
        .map_err(|e| DeviceError::Corrupt(format!("registeredAt: {e}")))?;
    let text = |value: &str| AttributeValue::S(value.to_string());
    Ok(HashMap::from([
        (
            PK.to_string(),
            AttributeValue::S(tenant_key(&device.tenant)),
        ),
        (
            SK.to_string(),
            AttributeValue::S(device_key(&device.user, &device.id)),
        ),
        (ENDPOINT.to_string(), text(&device.subscription.endpoint)),
        (P256DH.to_string(), text(&device.subscription.keys.p256dh)),
        (AUTH.to_string(), text(&device.subscription.keys.auth)),
        (REGISTERED_AT.to_string(), AttributeValue::S(registered_at)),
        (
            TTL_ATTRIBUTE.to_string(),
            AttributeValue::N(device.expires_at.to_string()),
        ),
    ]))
}

/// The device an item holds, or why it is not one.
fn item_to_device(item: &Item) -> Result<Device, DeviceError> {
    let corrupt = |what: String| DeviceError::Corrupt(what);
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| corrupt(format!("{name} missing or not a string")))
    };
    let tenant = text(PK)?
        .strip_prefix(DEVICE_PREFIX)
        .ok_or_else(|| corrupt(format!("{PK} is not {DEVICE_PREFIX}<tenant>")))
        .and_then(|t| TenantId::parse(t).map_err(|e| corrupt(format!("tenant: {e}"))))?;
    let (user, id) = text(SK)?
        .split_once('#')
        .ok_or_else(|| corrupt(format!("{SK} is not <user>#<deviceId>")))?;
    let user = UserId::parse(user).map_err(|e| corrupt(format!("user: {e}")))?;
    let id = DeviceId::parse(id).ok_or_else(|| corrupt(format!("device id {id:?}")))?;
    let registered_at = OffsetDateTime::parse(text(REGISTERED_AT)?, &Rfc3339)
        .map_err(|e| corrupt(format!("{REGISTERED_AT}: {e}")))?;
    let expires_at = item
        .get(TTL_ATTRIBUTE)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<i64>().ok())
        .ok_or_else(|| corrupt(format!("{TTL_ATTRIBUTE} missing or not a number")))?;
    Ok(Device {
        tenant,
        user,
        id,
        subscription: Subscription {
            endpoint: text(ENDPOINT)?.clone(),
            keys: SubscriptionKeys {
                p256dh: text(P256DH)?.clone(),
                auth: text(AUTH)?.clone(),
            },
        },
        registered_at,
        expires_at,
    })
}

/// The device an item holds, or `None` (logged) when it is not a valid device.
fn readable(item: &Item) -> Option<Device> {
    match item_to_device(item) {
        Ok(device) => Some(device),
        Err(error) => {
            log_skipped(item, "device", &error);
            None
        }
    }
}

/// The live devices among `items` of `tenant`, and how many items were not devices.
fn live_devices(items: &[Item], tenant: &TenantId, now: i64) -> (Vec<Device>, usize) {
    let mut skipped = 0;
    let mut devices = Vec::new();
    for item in items {
        match readable(item) {
            Some(device) if &device.tenant == tenant => {
                if device.expires_at > now {
                    devices.push(device);
                }
            }
            _ => skipped += 1,
        }
    }
    (devices, skipped)
}

#[async_trait]
impl DeviceStore for DynamoDeviceStore {
    async fn put(
        &self,
        device: &Device,
        max_per_user: usize,
    ) -> Result<Vec<DeviceId>, DeviceError> {
        self.table
            .put_item()
            .set_item(Some(device_to_item(device)?))
            .send()
            .await
            .map_err(|e| error("PutItem", e))?;
        let now = now_secs();
        let items = self
            .query_user(tenant_key(&device.tenant), user_prefix(&device.user), true)
            .await?;
        let mut expired = Vec::new();
        let mut others = Vec::new();
        for found in items.iter().filter_map(readable) {
            if found.user != device.user || found.id == device.id {
                continue;
            }
            if found.expires_at <= now {
                expired.push(found.id);
            } else {
                others.push(found);
            }
        }
        let evicted = oldest_beyond(&others, max_per_user);
        for id in expired.iter().chain(&evicted) {
            self.delete(&device.tenant, device_key(&device.user, id))
                .await?;
        }
        Ok(evicted)
    }

    async fn remove(
        &self,
        tenant: &TenantId,
        user: &UserId,
        id: &DeviceId,
    ) -> Result<bool, DeviceError> {
        let old = self.delete(tenant, device_key(user, id)).await?;
        let now = now_secs();
        Ok(old
            .as_ref()
            .and_then(readable)
            .is_some_and(|device| device.expires_at > now))
    }

    async fn list_users(
        &self,
        tenant: &TenantId,
        users: &[UserId],
    ) -> Result<Vec<Device>, DeviceError> {
        let prefixes: BTreeSet<String> = users.iter().map(user_prefix).collect();
        let found: Vec<Vec<Item>> = stream::iter(prefixes)
            .map(|prefix| self.query_user(tenant_key(tenant), prefix, false))
            .buffer_unordered(USER_QUERY_CONCURRENCY)
            .try_collect()
            .await?;
        let now = now_secs();
        let (devices, _) = live_devices(&found.concat(), tenant, now);
        Ok(devices)
    }

    async fn list_page(
        &self,
        tenant: &TenantId,
        start: Option<&str>,
        limit: usize,
    ) -> Result<DevicePage, DeviceError> {
        let limit = limit.max(1);
        let start = start.map(|text| start_key(text, tenant)).transpose()?;
        let (entries, rest) = self.read_entries(tenant, start, limit + 1).await?;
        let (entries, more) = cut_page(entries, limit, rest.is_some());
        let next = match entries.last().map(|e| &e.item).or(rest.as_ref()) {
            Some(key) if more => Some(
                Continuation::from_key(key)
                    .map_err(DeviceError::Unavailable)?
                    .encode(),
            ),
            _ => None,
        };
        let skipped = entries.iter().filter(|e| e.corrupt).count();
        Ok(DevicePage {
            devices: entries.into_iter().filter_map(|e| e.device).collect(),
            next,
            skipped,
        })
    }
}

/// The `ExclusiveStartKey` of a continuation, checked to be one of `tenant`'s device pages.
fn start_key(text: &str, tenant: &TenantId) -> Result<Item, DeviceError> {
    let continuation = Continuation::decode(text).map_err(DeviceError::InvalidContinuation)?;
    if continuation.pk != tenant_key(tenant) {
        return Err(DeviceError::InvalidContinuation(
            "not a continuation of this tenant's devices".into(),
        ));
    }
    if continuation.sk.is_empty() || continuation.sk.len() > 1_024 {
        return Err(DeviceError::InvalidContinuation("not a device key".into()));
    }
    Ok(continuation.start_key())
}

#[cfg(test)]
mod tests;
