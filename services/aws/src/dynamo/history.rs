//! `DynamoHistoryStore`: the history port on one DynamoDB table (`HISTORY_TABLE`):
//! `PK` = the stream key (`S#<tenant>#U#<user>`, `S#<tenant>`, `S#*`), `SK` = the cursor,
//! `id`, `frame`, `expiresAt` (the table's TTL attribute). Appends are `BatchWriteItem`
//! (one item per stream, 25 a request, unprocessed items retried with backoff); reads are
//! one `Query` per stream (`SK > :after`), expired items dropped in code since TTL deletes
//! lazily. The table keeps every entry until its `expiresAt`, so a read vouches for the
//! whole retention ([`StreamRead::vouched_after`] is `None`; `resume` checks the retention
//! itself).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use switchboard_core::history::{
    Cursor, HistoryEntry, HistoryError, HistoryStore, Stream, StreamRead,
};
use time::OffsetDateTime;

use super::table::table_adapter;
use super::{put_items, unavailable, BATCH_WRITE_LIMIT, PK, SK, TTL_ATTRIBUTE};

const ID: &str = "id";
const FRAME: &str = "frame";
/// Query pages one read follows at most through expired items before it gives up and
/// reports itself incomplete.
const MAX_PAGES_PER_READ: usize = 20;

table_adapter! {
    /// History on DynamoDB. Cheap to clone.
    DynamoHistoryStore
}

fn history_error(error: switchboard_core::roster::RosterError) -> HistoryError {
    HistoryError::Unavailable(error.to_string())
}

fn item(entry: &HistoryEntry, stream: &Stream) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_string(), AttributeValue::S(stream.key())),
        (SK.to_string(), AttributeValue::S(entry.cursor.to_string())),
        (ID.to_string(), AttributeValue::S(entry.id.clone())),
        (
            FRAME.to_string(),
            AttributeValue::S(entry.frame.to_string()),
        ),
        (
            TTL_ATTRIBUTE.to_string(),
            AttributeValue::N(entry.expires_at.to_string()),
        ),
    ])
}

/// The entry an item holds, or `None` (logged) when it is not one.
fn entry(item: &HashMap<String, AttributeValue>) -> Option<HistoryEntry> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok());
    let parsed = (|| {
        Some(HistoryEntry {
            cursor: Cursor::parse(text(SK)?).ok()?,
            id: text(ID)?.clone(),
            frame: text(FRAME)?.as_str().into(),
            expires_at: item.get(TTL_ATTRIBUTE)?.as_n().ok()?.parse().ok()?,
        })
    })();
    if parsed.is_none() {
        tracing::warn!(
            pk = text(PK).map(String::as_str).unwrap_or_default(),
            sk = text(SK).map(String::as_str).unwrap_or_default(),
            "skipped a history item that is not a valid entry"
        );
    }
    parsed
}

#[async_trait]
impl HistoryStore for DynamoHistoryStore {
    async fn append(&self, entry: &HistoryEntry, streams: &[Stream]) -> Result<(), HistoryError> {
        for chunk in streams.chunks(BATCH_WRITE_LIMIT) {
            let items = chunk.iter().map(|stream| item(entry, stream)).collect();
            put_items(self.table.client(), self.table.name(), items)
                .await
                .map_err(history_error)?;
        }
        Ok(())
    }

    async fn read_after(
        &self,
        stream: &Stream,
        after: &str,
        limit: usize,
    ) -> Result<StreamRead, HistoryError> {
        let now = OffsetDateTime::now_utc();
        let page_limit = i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX);
        let mut read = StreamRead::default();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        for _ in 0..MAX_PAGES_PER_READ {
            let output = self
                .table
                .query(stream.key())
                .key_condition_expression("#pk = :pk AND #sk > :after")
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":after", AttributeValue::S(after.to_string()))
                .set_exclusive_start_key(start)
                .limit(page_limit)
                .send()
                .await
                .map_err(|e| history_error(unavailable("Query", e)))?;
            for entry in output.items().iter().filter_map(entry) {
                if entry.is_expired_at(now) {
                    continue;
                }
                if read.entries.len() == limit {
                    read.incomplete = true;
                    return Ok(read);
                }
                read.entries.push(entry);
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(read),
            }
        }
        read.incomplete = true;
        Ok(read)
    }
}
