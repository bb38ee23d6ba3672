//! `DynamoWorkLog`: the work-log port (`switchboard_core::worklog`) on the history table
//! (`HISTORY_TABLE`): `PK` = `W#<tenant|*>#<message id>`, `SK` = the unit (`message` or
//! `item-<digest>`), beside history streams (`S#…`) and receipts (`R#…`) that never share a
//! key with it. Attributes: `state` (`running` or `done`), `leaseUntil` (epoch seconds, a
//! running claim only) and `expiresAt` (epoch seconds, the table's TTL attribute: a claim's
//! lease plus [`CLAIM_RETENTION`], so an abandoned claim disappears; a finished unit's
//! `expires_at`).
//!
//! - `begin` is one `PutItem` conditional on no live item of that key:
//!   `attribute_not_exists(PK) OR (state = running AND leaseUntil <= now) OR (state = done
//!   AND expiresAt <= now)`. TTL deletes lazily, so an expired `done` item may still be
//!   there and must not block a claim ("Items that have expired and not been deleted will
//!   still show up in reads",
//!   <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ttl-expired-items.html>).
//!   A failed condition hands back the item that failed it
//!   (`ReturnValuesOnConditionCheckFailure = ALL_OLD`,
//!   <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_PutItem.html>);
//!   an endpoint that does not is read with a strongly consistent `GetItem`.
//! - `finish` is one unconditional `PutItem` (`state = done`).
//! - `abandon` is one `DeleteItem` conditional on the claim holding exactly that lease.
//!
//! Times are whole epoch seconds, rounded up: a lease or expiry ending within a second is
//! kept until that second has passed (never released early).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use switchboard_core::worklog::{Begun, UnitKey, WorkLog, WorkLogError};
use time::OffsetDateTime;

use super::table::table_adapter;
use super::{applied, unavailable, PK, SK, TTL_ATTRIBUTE};

/// How long past its lease an unfinished claim stays in the table before TTL removes it
/// (after its lease it no longer blocks anything; this only bounds the table's garbage).
pub const CLAIM_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

const STATE: &str = "state";
const LEASE_UNTIL: &str = "leaseUntil";
const RUNNING: &str = "running";
const DONE: &str = "done";

/// How often `begin` tries again when the item that failed its condition is gone before it
/// could be read (abandoned in between).
const BEGIN_ATTEMPTS: usize = 3;

table_adapter! {
    /// The work log on DynamoDB (the history table). Cheap to clone.
    DynamoWorkLog
}

impl DynamoWorkLog {
    /// Reads the item that failed a `begin` condition (strongly consistent).
    async fn read(
        &self,
        key: &UnitKey,
    ) -> Result<Option<HashMap<String, AttributeValue>>, WorkLogError> {
        let output = self
            .table
            .get_item()
            .set_key(Some(primary_key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| error("GetItem", e))?;
        Ok(output.item)
    }
}

fn error<E, R>(operation: &str, e: SdkError<E, R>) -> WorkLogError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    WorkLogError::Unavailable(unavailable(operation, e).to_string())
}

/// Epoch seconds of `at`, rounded up to the next whole second.
fn epoch_ceil(at: OffsetDateTime) -> i64 {
    let seconds = at.unix_timestamp();
    if at.nanosecond() > 0 {
        seconds.saturating_add(1)
    } else {
        seconds
    }
}

fn number(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn primary_key(key: &UnitKey) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_string(), AttributeValue::S(key.storage_key())),
        (SK.to_string(), AttributeValue::S(key.unit.clone())),
    ])
}

/// The item of a claim held until `lease_until`.
fn claim_item(key: &UnitKey, lease_until: OffsetDateTime) -> HashMap<String, AttributeValue> {
    let lease = epoch_ceil(lease_until);
    let retention = i64::try_from(CLAIM_RETENTION.as_secs()).unwrap_or(i64::MAX);
    let mut item = primary_key(key);
    item.insert(STATE.into(), AttributeValue::S(RUNNING.into()));
    item.insert(LEASE_UNTIL.into(), number(lease));
    item.insert(
        TTL_ATTRIBUTE.into(),
        number(lease.saturating_add(retention)),
    );
    item
}

/// The item of a finished unit, remembered until `expires_at`.
fn done_item(key: &UnitKey, expires_at: OffsetDateTime) -> HashMap<String, AttributeValue> {
    let mut item = primary_key(key);
    item.insert(STATE.into(), AttributeValue::S(DONE.into()));
    item.insert(TTL_ATTRIBUTE.into(), number(epoch_ceil(expires_at)));
    item
}

/// What the item that failed a `begin` condition says: `Done`, `Running`, or `None` (logged)
/// when it is not a work-log item.
fn found(item: &HashMap<String, AttributeValue>) -> Option<Begun> {
    let state = item.get(STATE).and_then(|v| v.as_s().ok());
    let begun = match state.map(String::as_str) {
        Some(DONE) => Some(Begun::Done),
        Some(RUNNING) => Some(Begun::Running),
        _ => None,
    };
    if begun.is_none() {
        tracing::warn!(
            pk = item
                .get(PK)
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                .unwrap_or_default(),
            state = state.map(String::as_str).unwrap_or_default(),
            "a work-log item has no valid state"
        );
    }
    begun
}

#[async_trait]
impl WorkLog for DynamoWorkLog {
    async fn begin(
        &self,
        key: &UnitKey,
        lease_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Begun, WorkLogError> {
        let item = claim_item(key, lease_until);
        for _ in 0..BEGIN_ATTEMPTS {
            let put = self
                .table
                .put_item()
                .set_item(Some(item.clone()))
                .condition_expression(
                    "attribute_not_exists(#pk) \
                     OR (#state = :running AND #lease <= :now) \
                     OR (#state = :done AND #exp <= :now)",
                )
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#state", STATE)
                .expression_attribute_names("#lease", LEASE_UNTIL)
                .expression_attribute_names("#exp", TTL_ATTRIBUTE)
                .expression_attribute_values(":running", AttributeValue::S(RUNNING.into()))
                .expression_attribute_values(":done", AttributeValue::S(DONE.into()))
                .expression_attribute_values(":now", number(now.unix_timestamp()))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let failure = match put {
                Ok(_) => return Ok(Begun::Claimed),
                Err(SdkError::ServiceError(failure))
                    if failure.err().is_conditional_check_failed_exception() =>
                {
                    failure
                }
                Err(e) => return Err(error("PutItem", e)),
            };
            let returned = match failure.err() {
                PutItemError::ConditionalCheckFailedException(e) => e.item().cloned(),
                _ => None,
            };
            // An endpoint that does not hand the item back: read it.
            let existing = match returned {
                Some(item) => Some(item),
                None => self.read(key).await?,
            };
            match existing {
                Some(existing) => {
                    return found(&existing).ok_or_else(|| {
                        WorkLogError::Unavailable(format!(
                            "work-log item {} / {} has no valid state",
                            key.storage_key(),
                            key.unit
                        ))
                    })
                }
                // Abandoned between the write and the read: try to claim again.
                None => continue,
            }
        }
        Err(WorkLogError::Unavailable(format!(
            "work-log item {} / {} changed under {BEGIN_ATTEMPTS} begins",
            key.storage_key(),
            key.unit
        )))
    }

    async fn finish(&self, key: &UnitKey, expires_at: OffsetDateTime) -> Result<(), WorkLogError> {
        self.table
            .put_item()
            .set_item(Some(done_item(key, expires_at)))
            .send()
            .await
            .map_err(|e| error("PutItem", e))?;
        Ok(())
    }

    async fn abandon(
        &self,
        key: &UnitKey,
        lease_until: OffsetDateTime,
    ) -> Result<(), WorkLogError> {
        let deleted = self
            .table
            .delete_item()
            .set_key(Some(primary_key(key)))
            .condition_expression("#state = :running AND #lease = :lease")
            .expression_attribute_names("#state", STATE)
            .expression_attribute_names("#lease", LEASE_UNTIL)
            .expression_attribute_values(":running", AttributeValue::S(RUNNING.into()))
            .expression_attribute_values(":lease", number(epoch_ceil(lease_until)))
            .send()
            .await;
        // Not applied: a newer claim, a finished unit or no item at all, nothing of ours to
        // give back.
        applied(deleted)
            .map(|_| ())
            .map_err(|e| error("DeleteItem", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_model::TenantId;

    fn key() -> UnitKey {
        UnitKey::work_item(Some(TenantId::parse("acme").unwrap()), "m-1", "page-1")
    }

    fn at(seconds: i64, nanos: u32) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(seconds)
            .unwrap()
            .replace_nanosecond(nanos)
            .unwrap()
    }

    fn n(item: &HashMap<String, AttributeValue>, name: &str) -> String {
        item[name].as_n().unwrap().clone()
    }

    #[test]
    fn times_round_up_to_whole_seconds() {
        assert_eq!(epoch_ceil(at(1_700_000_000, 0)), 1_700_000_000);
        assert_eq!(epoch_ceil(at(1_700_000_000, 1)), 1_700_000_001);
        assert_eq!(epoch_ceil(at(1_700_000_000, 999_999_999)), 1_700_000_001);
    }

    #[test]
    fn a_claim_holds_its_lease_and_expires_a_day_later() {
        let item = claim_item(&key(), at(1_700_000_000, 500));
        assert_eq!(item[PK].as_s().unwrap(), &key().storage_key());
        assert_eq!(item[SK].as_s().unwrap(), &key().unit);
        assert_eq!(item["state"].as_s().unwrap(), "running");
        assert_eq!(n(&item, "leaseUntil"), "1700000001");
        assert_eq!(n(&item, "expiresAt"), (1_700_000_001 + 86_400).to_string());
        assert_eq!(item.len(), 5);
        assert_eq!(found(&item), Some(Begun::Running));
    }

    #[test]
    fn a_done_item_has_no_lease() {
        let item = done_item(&key(), at(1_700_003_600, 0));
        assert_eq!(item["state"].as_s().unwrap(), "done");
        assert_eq!(n(&item, "expiresAt"), "1700003600");
        assert!(!item.contains_key("leaseUntil"));
        assert_eq!(item.len(), 4);
        assert_eq!(found(&item), Some(Begun::Done));
    }

    #[test]
    fn an_item_without_a_valid_state_is_not_read_as_one() {
        let mut item = done_item(&key(), at(1_700_003_600, 0));
        item.insert("state".into(), AttributeValue::S("paused".into()));
        assert_eq!(found(&item), None);
        item.insert("state".into(), AttributeValue::N("1".into()));
        assert_eq!(found(&item), None);
        item.remove("state");
        assert_eq!(found(&item), None);
    }
}
