//! `DynamoReceiptStore`: the receipt port on the history table (`HISTORY_TABLE`):
//! `PK` = `R#<tenant|*>#<id>`, `SK` = `receipt`, beside the history streams (`S#…`) that
//! never share a key with it. Attributes: `id`, `tenant` (absent for a broadcast), `target`
//! (JSON text), the counts `matched`, `delivered`, `gone`, `failed`, `pushed`, `pushFailed`,
//! `devicesPruned`, `pending` (numbers; a count an older receipt lacks reads 0),
//! `started` (bool), `terminal` (`dead`/`expired`), `acceptedAt`, `updatedAt` (RFC 3339),
//! `expiresAt` (the table's TTL attribute).
//!
//! - `create` is one `PutItem` conditional on no live receipt of that key
//!   (`attribute_not_exists(PK) OR expiresAt <= now`: TTL deletes lazily); a failed
//!   condition hands back the existing item (`ReturnValuesOnConditionCheckFailure`).
//! - `record` is one `UpdateItem`: `ADD` for the counts, `if_not_exists` for what a
//!   missing receipt starts with, `ReturnValues = ALL_NEW` for the totals.
//! - `delete_if_queued` is one `DeleteItem` conditional on the receipt being untouched.
//! - `get` is a strongly consistent `GetItem` (a status read right after a write sees it).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use switchboard_core::receipts::{
    Created, Progress, Receipt, ReceiptError, ReceiptKey, ReceiptStore, Seed, Terminal,
};
use switchboard_model::TenantId;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::table::table_adapter;
use super::{applied, unavailable, PK, SK, TTL_ATTRIBUTE};

/// The sort key of every receipt item.
pub const RECEIPT_SK: &str = "receipt";

const ID: &str = "id";
const TENANT: &str = "tenant";
const TARGET: &str = "target";
const MATCHED: &str = "matched";
const DELIVERED: &str = "delivered";
const GONE: &str = "gone";
const FAILED: &str = "failed";
const PUSHED: &str = "pushed";
const PUSH_FAILED: &str = "pushFailed";
const DEVICES_PRUNED: &str = "devicesPruned";
const PENDING: &str = "pending";
const STARTED: &str = "started";
const TERMINAL: &str = "terminal";
const ACCEPTED_AT: &str = "acceptedAt";
const UPDATED_AT: &str = "updatedAt";

table_adapter! {
    /// Receipts on DynamoDB (the history table). Cheap to clone.
    DynamoReceiptStore
}

impl DynamoReceiptStore {
    fn key(key: &ReceiptKey) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (PK.to_string(), AttributeValue::S(key.storage_key())),
            (SK.to_string(), AttributeValue::S(RECEIPT_SK.to_string())),
        ])
    }
}

fn error<E, R>(operation: &str, e: SdkError<E, R>) -> ReceiptError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    ReceiptError::Unavailable(unavailable(operation, e).to_string())
}

fn time_text(at: OffsetDateTime) -> AttributeValue {
    AttributeValue::S(at.format(&Rfc3339).unwrap_or_default())
}

fn number(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn item(receipt: &Receipt) -> HashMap<String, AttributeValue> {
    let mut item = DynamoReceiptStore::key(&receipt.key);
    item.insert(ID.into(), AttributeValue::S(receipt.key.id.clone()));
    if let Some(tenant) = &receipt.key.tenant {
        item.insert(TENANT.into(), AttributeValue::S(tenant.to_string()));
    }
    if let Some(target) = &receipt.target {
        item.insert(TARGET.into(), AttributeValue::S(target.to_string()));
    }
    for (name, value) in [
        (MATCHED, receipt.matched),
        (DELIVERED, receipt.delivered),
        (GONE, receipt.gone),
        (FAILED, receipt.failed),
        (PUSHED, receipt.pushed),
        (PUSH_FAILED, receipt.push_failed),
        (DEVICES_PRUNED, receipt.devices_pruned),
        (PENDING, receipt.pending),
    ] {
        item.insert(name.into(), number(value));
    }
    if receipt.started {
        item.insert(STARTED.into(), AttributeValue::Bool(true));
    }
    if let Some(terminal) = receipt.terminal {
        item.insert(TERMINAL.into(), AttributeValue::S(terminal.as_str().into()));
    }
    item.insert(ACCEPTED_AT.into(), time_text(receipt.accepted_at));
    item.insert(UPDATED_AT.into(), time_text(receipt.updated_at));
    item.insert(TTL_ATTRIBUTE.into(), number(receipt.expires_at));
    item
}

/// The receipt an item holds, or `None` (logged) when it is not one.
fn receipt(item: &HashMap<String, AttributeValue>) -> Option<Receipt> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok());
    let count = |name: &str| -> i64 {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let at = |name: &str| text(name).and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
    let parsed = (|| {
        let tenant = match text(TENANT) {
            Some(tenant) => Some(TenantId::parse(tenant.as_str()).ok()?),
            None => None,
        };
        Some(Receipt {
            key: ReceiptKey::new(tenant, text(ID)?.clone()),
            target: text(TARGET).and_then(|t| serde_json::from_str(t).ok()),
            matched: count(MATCHED),
            delivered: count(DELIVERED),
            gone: count(GONE),
            failed: count(FAILED),
            pushed: count(PUSHED),
            push_failed: count(PUSH_FAILED),
            devices_pruned: count(DEVICES_PRUNED),
            pending: count(PENDING),
            started: item
                .get(STARTED)
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
            terminal: text(TERMINAL).and_then(|t| Terminal::parse(t)),
            accepted_at: at(ACCEPTED_AT)?,
            updated_at: at(UPDATED_AT)?,
            expires_at: item.get(TTL_ATTRIBUTE)?.as_n().ok()?.parse().ok()?,
        })
    })();
    if parsed.is_none() {
        tracing::warn!(
            pk = text(PK).map(String::as_str).unwrap_or_default(),
            "skipped a receipt item that is not a valid receipt"
        );
    }
    parsed
}

#[async_trait]
impl ReceiptStore for DynamoReceiptStore {
    async fn create(&self, new: &Receipt) -> Result<Created, ReceiptError> {
        let now = OffsetDateTime::now_utc();
        let put = self
            .table
            .put_item()
            .set_item(Some(item(new)))
            .condition_expression("attribute_not_exists(#pk) OR #exp <= :now")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#exp", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", number(now.unix_timestamp()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match put {
            Ok(_) => Ok(Created::New),
            Err(SdkError::ServiceError(failure))
                if failure.err().is_conditional_check_failed_exception() =>
            {
                let existing = match failure.err() {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) => {
                        e.item().and_then(receipt)
                    }
                    _ => None,
                };
                match existing {
                    Some(existing) => Ok(Created::Existing(existing)),
                    // An endpoint that does not hand the item back: read it.
                    None => match self.get(&new.key).await? {
                        Some(existing) => Ok(Created::Existing(existing)),
                        None => Err(ReceiptError::Unavailable(
                            "a receipt exists but could not be read".into(),
                        )),
                    },
                }
            }
            Err(e) => Err(error("PutItem", e)),
        }
    }

    async fn get(&self, key: &ReceiptKey) -> Result<Option<Receipt>, ReceiptError> {
        let output = self
            .table
            .get_item()
            .set_key(Some(Self::key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| error("GetItem", e))?;
        let now = OffsetDateTime::now_utc();
        Ok(output
            .item()
            .and_then(receipt)
            .filter(|r| !r.is_expired_at(now)))
    }

    async fn record(
        &self,
        key: &ReceiptKey,
        seed: &Seed,
        progress: &Progress,
    ) -> Result<Receipt, ReceiptError> {
        let mut set = vec![
            "#id = if_not_exists(#id, :id)",
            "#acc = if_not_exists(#acc, :now)",
            "#exp = if_not_exists(#exp, :exp)",
            "#upd = :now",
        ];
        let mut request = self
            .table
            .update_item()
            .set_key(Some(Self::key(key)))
            .expression_attribute_names("#id", ID)
            .expression_attribute_names("#acc", ACCEPTED_AT)
            .expression_attribute_names("#exp", TTL_ATTRIBUTE)
            .expression_attribute_names("#upd", UPDATED_AT)
            .expression_attribute_names("#matched", MATCHED)
            .expression_attribute_names("#delivered", DELIVERED)
            .expression_attribute_names("#gone", GONE)
            .expression_attribute_names("#failed", FAILED)
            .expression_attribute_names("#pushed", PUSHED)
            .expression_attribute_names("#pushFailed", PUSH_FAILED)
            .expression_attribute_names("#pruned", DEVICES_PRUNED)
            .expression_attribute_names("#pending", PENDING)
            .expression_attribute_values(":id", AttributeValue::S(key.id.clone()))
            .expression_attribute_values(":now", time_text(seed.now))
            .expression_attribute_values(":exp", number(seed.expires_at))
            .expression_attribute_values(":m", number(progress.matched))
            .expression_attribute_values(":d", number(progress.delivered))
            .expression_attribute_values(":g", number(progress.gone))
            .expression_attribute_values(":f", number(progress.failed))
            .expression_attribute_values(":pu", number(progress.pushed))
            .expression_attribute_values(":pf", number(progress.push_failed))
            .expression_attribute_values(":dp", number(progress.devices_pruned))
            .expression_attribute_values(":p", number(progress.pending));
        if let Some(tenant) = &key.tenant {
            set.push("#tenant = if_not_exists(#tenant, :tenant)");
            request = request
                .expression_attribute_names("#tenant", TENANT)
                .expression_attribute_values(":tenant", AttributeValue::S(tenant.to_string()));
        }
        if let Some(target) = &seed.target {
            set.push("#target = if_not_exists(#target, :target)");
            request = request
                .expression_attribute_names("#target", TARGET)
                .expression_attribute_values(":target", AttributeValue::S(target.to_string()));
        }
        if progress.started {
            set.push("#started = :true");
            request = request
                .expression_attribute_names("#started", STARTED)
                .expression_attribute_values(":true", AttributeValue::Bool(true));
        }
        if let Some(terminal) = progress.terminal {
            set.push("#terminal = :terminal");
            request = request
                .expression_attribute_names("#terminal", TERMINAL)
                .expression_attribute_values(
                    ":terminal",
                    AttributeValue::S(terminal.as_str().into()),
                );
        }
        let expression = format!(
            "SET {} ADD #matched :m, #delivered :d, #gone :g, #failed :f, #pending :p, \
             #pushed :pu, #pushFailed :pf, #pruned :dp",
            set.join(", ")
        );
        let output = request
            .update_expression(expression)
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| error("UpdateItem", e))?;
        output
            .attributes()
            .and_then(receipt)
            .ok_or_else(|| ReceiptError::Unavailable("UpdateItem returned no receipt".into()))
    }

    async fn delete_if_queued(&self, key: &ReceiptKey) -> Result<bool, ReceiptError> {
        let deleted = self
            .table
            .delete_item()
            .set_key(Some(Self::key(key)))
            .condition_expression(
                "attribute_exists(#pk) AND attribute_not_exists(#started) \
                 AND attribute_not_exists(#terminal) AND #pending = :zero \
                 AND #matched = :zero AND #delivered = :zero AND #gone = :zero",
            )
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#started", STARTED)
            .expression_attribute_names("#terminal", TERMINAL)
            .expression_attribute_names("#pending", PENDING)
            .expression_attribute_names("#matched", MATCHED)
            .expression_attribute_names("#delivered", DELIVERED)
            .expression_attribute_names("#gone", GONE)
            .expression_attribute_values(":zero", number(0))
            .send()
            .await;
        applied(deleted).map_err(|e| error("DeleteItem", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_stored_before_web_push_reads_zero_push_counts() {
        let now = OffsetDateTime::now_utc();
        let mut stored = item(&Receipt::from_seed(
            ReceiptKey::new(Some(TenantId::parse("acme").unwrap()), "m-1"),
            &Seed::new(None, now, std::time::Duration::from_secs(60)),
        ));
        stored.insert(PUSHED.into(), number(4));
        let read = receipt(&stored).unwrap();
        assert_eq!(read.pushed, 4, "the counts are read back");
        for name in [PUSHED, PUSH_FAILED, DEVICES_PRUNED] {
            stored.remove(name);
        }
        let old = receipt(&stored).unwrap();
        assert_eq!((old.pushed, old.push_failed, old.devices_pruned), (0, 0, 0));
    }
}
