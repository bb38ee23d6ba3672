//! Reading roster pages: the records a page of items holds (odd items logged and left out),
//! what reading them cost, expired records dropped, and the continuation a page ends with.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use switchboard_core::roster::{ConnectionRecord, PageScope, RosterError};
use time::OffsetDateTime;

use super::super::continuation::Continuation;
use super::super::{item_to_record, log_skipped, parse_connection_key, parse_tenant_key};
use super::LookupStats;

/// The record an item holds, or `None` (logged) when it is not a valid connection record:
/// one odd item written by another tool never fails the lookup for the others.
pub(super) fn readable(item: &HashMap<String, AttributeValue>) -> Option<ConnectionRecord> {
    match item_to_record(item) {
        Ok(record) => Some(record),
        Err(error) => {
            log_skipped(item, "connection record", &error);
            None
        }
    }
}

/// The roster's page continuations ([`Continuation`], JSON so a work item can hold it),
/// checked to be keys of this table and, for a tenant scope, of that tenant.
pub(super) struct DynamoContinuation;

impl DynamoContinuation {
    pub(super) fn from_last_key(
        key: &HashMap<String, AttributeValue>,
    ) -> Result<String, RosterError> {
        Continuation::from_key(key)
            .map(|continuation| continuation.encode())
            .map_err(RosterError::Unavailable)
    }

    /// The `ExclusiveStartKey` for `text`, checked to be a key of this table and, for a
    /// tenant scope, of that tenant.
    pub(super) fn start_key(
        text: &str,
        scope: &PageScope,
    ) -> Result<HashMap<String, AttributeValue>, RosterError> {
        let invalid = |why: String| RosterError::InvalidContinuation(why);
        let continuation = Continuation::decode(text).map_err(invalid)?;
        let tenant = parse_tenant_key(&continuation.pk).map_err(|e| invalid(e.to_string()))?;
        parse_connection_key(&continuation.sk).map_err(|e| invalid(e.to_string()))?;
        if let PageScope::Tenant(scope_tenant) = scope {
            if scope_tenant != &tenant {
                return Err(invalid("continuation of another tenant".into()));
            }
        }
        Ok(continuation.start_key())
    }
}

/// Drops expired records and anything failing `belongs` (defence in depth: the keys
/// already guarantee it).
pub(super) fn keep(
    records: Vec<ConnectionRecord>,
    belongs: impl Fn(&ConnectionRecord) -> bool,
) -> Vec<ConnectionRecord> {
    let now = OffsetDateTime::now_utc();
    records
        .into_iter()
        .filter(|r| !r.is_expired_at(now) && belongs(r))
        .collect()
}

/// Records and read statistics gathered over the pages of one query or scan.
#[derive(Default)]
pub(super) struct PageSet {
    records: Vec<ConnectionRecord>,
    stats: LookupStats,
}

impl PageSet {
    pub(super) fn add(
        &mut self,
        scanned_count: i32,
        count: i32,
        items: Option<Vec<HashMap<String, AttributeValue>>>,
    ) -> Result<(), RosterError> {
        self.stats.requests += 1;
        self.stats.scanned_count += u64::try_from(scanned_count).unwrap_or(0);
        self.stats.count += u64::try_from(count).unwrap_or(0);
        for item in items.unwrap_or_default() {
            match readable(&item) {
                Some(record) => self.records.push(record),
                None => self.stats.skipped += 1,
            }
        }
        Ok(())
    }

    pub(super) fn finish(self) -> (Vec<ConnectionRecord>, LookupStats) {
        (self.records, self.stats)
    }
}
