//! `EventBridgeSink`: the [`EventSink`] port on Amazon EventBridge (docs/design.md:
//! Events). Each event becomes one `PutEvents` entry on the bus `EVENT_BUS_NAME`:
//! `Source` [`EVENT_SOURCE`], `DetailType` the event's type (`user.online`, …), `Detail` the
//! event's JSON (`{"id","type","timestamp","data"}`), `Time` its timestamp. Users route
//! them with rules (API destinations, queues, functions).
//!
//! Entries go in requests of at most [`MAX_ENTRIES_PER_REQUEST`] entries and
//! [`MAX_REQUEST_BYTES`] as EventBridge counts them ([`entry_size`]). `PutEvents` can take
//! some entries of a request and refuse others (`FailedEntryCount`, an `ErrorCode` on each
//! refused entry, in request order): those are sent again, at most [`PUT_ATTEMPTS`] times in
//! all with backoff; what is still refused then is [`EventError::Unavailable`] with the
//! count. Every request is bounded by a timeout, so an unreachable EventBridge never holds
//! an invocation past its deadline. Event ids are deterministic, so an event sent twice
//! (a retried stream record) is the same event for a receiver that dedupes on `detail.id`.

use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::DateTime;
use switchboard_core::events::{Event, EventError, EventSink};
use switchboard_core::publisher::{RetryPolicy, STORE_OPERATION_TIMEOUT};

/// The `Source` of every entry.
pub const EVENT_SOURCE: &str = "switchboard";
/// Entries per `PutEvents` request (the service's limit).
pub const MAX_ENTRIES_PER_REQUEST: usize = 10;
/// The service's limit on a `PutEvents` request: its entries, counted as [`entry_size`]
/// does, must total less than 256 KB.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// Attempts at an entry `PutEvents` refuses: the first and two retries.
pub const PUT_ATTEMPTS: u32 = 3;
/// Bytes the `Time` parameter counts for, whatever its value (see [`entry_size`]).
const TIME_BYTES: usize = 14;

/// Backoff before resending refused entries: exponential with full jitter, from 100 ms.
const PUT_BACKOFF: RetryPolicy = RetryPolicy {
    max_attempts: PUT_ATTEMPTS,
    base_delay: Duration::from_millis(100),
    max_delay: Duration::from_secs(1),
};

/// The size of an entry as EventBridge counts it against the request limit: `Time` 14
/// bytes when set, plus the UTF-8 bytes of `Source`, `DetailType`, `Detail` and each of
/// `Resources` (`EventBusName` is not counted). "Calculating Amazon EventBridge PutEvents
/// event entry size":
/// <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html>.
pub fn entry_size(entry: &PutEventsRequestEntry) -> usize {
    let text = |value: Option<&str>| value.map_or(0, str::len);
    entry.time().map_or(0, |_| TIME_BYTES)
        + text(entry.source())
        + text(entry.detail_type())
        + text(entry.detail())
        + entry.resources().iter().map(String::len).sum::<usize>()
}

/// Splits `entries` into requests of at most [`MAX_ENTRIES_PER_REQUEST`] entries and less
/// than [`MAX_REQUEST_BYTES`], keeping their order. An entry larger than the limit on its own
/// goes alone (EventBridge refuses it; it counts as failed).
pub fn requests(entries: Vec<PutEventsRequestEntry>) -> Vec<Vec<PutEventsRequestEntry>> {
    let mut requests: Vec<Vec<PutEventsRequestEntry>> = Vec::new();
    let mut bytes: usize = 0;
    for entry in entries {
        let size = entry_size(&entry);
        match requests.last_mut() {
            Some(last)
                if last.len() < MAX_ENTRIES_PER_REQUEST
                    && bytes.saturating_add(size) < MAX_REQUEST_BYTES =>
            {
                bytes += size;
                last.push(entry);
            }
            _ => {
                bytes = size;
                requests.push(vec![entry]);
            }
        }
    }
    requests
}

/// Puts events on one EventBridge bus.
#[derive(Debug, Clone)]
pub struct EventBridgeSink {
    client: Client,
    bus_name: String,
    timeout: Duration,
}

impl EventBridgeSink {
    /// A sink on `bus_name` (a name or ARN), each request bounded by
    /// [`STORE_OPERATION_TIMEOUT`].
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
            timeout: STORE_OPERATION_TIMEOUT,
        }
    }

    /// A sink from the shared configuration (`AWS_ENDPOINT_URL_EVENTBRIDGE` is honoured by
    /// `aws-config`).
    pub fn from_sdk_config(sdk: &SdkConfig, bus_name: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), bus_name)
    }

    /// The same sink with each `PutEvents` request bounded by `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn bus_name(&self) -> &str {
        &self.bus_name
    }

    /// The entry of one event.
    pub fn entry(&self, event: &Event) -> PutEventsRequestEntry {
        let nanos = event.timestamp.unix_timestamp_nanos();
        PutEventsRequestEntry::builder()
            .time(DateTime::from_nanos(nanos).unwrap_or_else(|_| DateTime::from_secs(0)))
            .source(EVENT_SOURCE)
            .detail_type(event.kind.as_str())
            .detail(event.to_json().to_string())
            .event_bus_name(&self.bus_name)
            .build()
    }

    /// Sends one request; answers the entries it refused (all of them when the request
    /// failed or timed out) and why.
    async fn put(
        &self,
        entries: Vec<PutEventsRequestEntry>,
    ) -> (Vec<PutEventsRequestEntry>, Option<String>) {
        let call = self
            .client
            .put_events()
            .set_entries(Some(entries.clone()))
            .send();
        let output = match tokio::time::timeout(self.timeout, call).await {
            Err(_) => {
                return (
                    entries,
                    Some(format!("PutEvents: no answer within {:?}", self.timeout)),
                )
            }
            Ok(Err(error)) => {
                return (
                    entries,
                    Some(format!("PutEvents: {}", DisplayErrorContext(&error))),
                )
            }
            Ok(Ok(output)) => output,
        };
        if output.failed_entry_count() == 0 {
            return (Vec::new(), None);
        }
        // Result entries are in request order; a refused one carries an `ErrorCode`. An
        // answer with fewer results than entries leaves the rest unconfirmed: sent again.
        let results = output.entries();
        let mut reason = None;
        let refused: Vec<PutEventsRequestEntry> = entries
            .into_iter()
            .enumerate()
            .filter(|(index, _)| match results.get(*index) {
                Some(result) => match result.error_code() {
                    Some(code) => {
                        reason = Some(format!(
                            "PutEvents refused an entry: {code}: {}",
                            result.error_message().unwrap_or_default()
                        ));
                        true
                    }
                    None => false,
                },
                None => true,
            })
            .map(|(_, entry)| entry)
            .collect();
        if refused.is_empty() {
            return (refused, None);
        }
        let reason = reason.unwrap_or_else(|| "PutEvents answered fewer entries than sent".into());
        (refused, Some(reason))
    }
}

#[async_trait]
impl EventSink for EventBridgeSink {
    async fn emit(&self, events: Vec<Event>) -> Result<(), EventError> {
        let mut pending: Vec<PutEventsRequestEntry> =
            events.iter().map(|event| self.entry(event)).collect();
        let mut reason = None;
        for attempt in 0..PUT_ATTEMPTS {
            if pending.is_empty() {
                return Ok(());
            }
            if attempt > 0 {
                tokio::time::sleep(PUT_BACKOFF.delay(attempt)).await;
            }
            let mut refused = Vec::new();
            for request in requests(std::mem::take(&mut pending)) {
                let (again, why) = self.put(request).await;
                refused.extend(again);
                reason = why.or(reason);
            }
            pending = refused;
        }
        if pending.is_empty() {
            return Ok(());
        }
        let reason = reason.unwrap_or_default();
        tracing::warn!(
            bus = %self.bus_name,
            failed = pending.len(),
            %reason,
            "events not taken by EventBridge after {PUT_ATTEMPTS} attempts"
        );
        Err(EventError::Unavailable {
            failed: pending.len(),
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchboard_core::events::EventKind;
    use switchboard_model::{TenantId, UserId};
    use time::OffsetDateTime;

    fn sink() -> EventBridgeSink {
        let config = aws_sdk_eventbridge::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        EventBridgeSink::new(Client::from_conf(config), "switchboard-events")
    }

    fn detail_of(bytes: usize) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .source("s")
            .detail_type("t")
            .detail("x".repeat(bytes - 2))
            .build()
    }

    #[test]
    fn an_entry_counts_as_the_aws_page_says() {
        let event = Event::user(
            EventKind::UserOnline,
            &TenantId::parse("acme").unwrap(),
            &UserId::parse("élodie").unwrap(),
            1,
            1,
            OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        );
        let entry = sink().entry(&event);
        let detail = event.to_json().to_string();
        assert_eq!(
            entry_size(&entry),
            14 + "switchboard".len() + "user.online".len() + detail.len()
        );
        assert_eq!(entry.source(), Some("switchboard"));
        assert_eq!(entry.detail_type(), Some("user.online"));
        assert_eq!(entry.event_bus_name(), Some("switchboard-events"));
        assert_eq!(entry.time().map(|t| t.secs()), Some(1_700_000_000));
        let parsed: serde_json::Value = serde_json::from_str(entry.detail().unwrap()).unwrap();
        assert_eq!(parsed["data"]["user"], json!("élodie"));
        // UTF-8 bytes, not characters.
        assert!(detail.len() > detail.chars().count());
        let bare = PutEventsRequestEntry::builder().source("ab").build();
        assert_eq!(entry_size(&bare), 2);
    }

    #[test]
    fn requests_hold_at_most_ten_entries_and_256_kb() {
        let sizes = |requests: &[Vec<PutEventsRequestEntry>]| -> Vec<usize> {
            requests.iter().map(Vec::len).collect()
        };
        let small: Vec<_> = (0..25).map(|_| detail_of(100)).collect();
        assert_eq!(sizes(&requests(small)), [10, 10, 5]);
        // 100 KB each: two fit in 256 KB, a third does not.
        let big: Vec<_> = (0..5).map(|_| detail_of(100 * 1024)).collect();
        assert_eq!(sizes(&requests(big)), [2, 2, 1]);
        // One byte under the limit fits; the limit itself starts a new request.
        let under = vec![detail_of(MAX_REQUEST_BYTES - 10), detail_of(9)];
        assert_eq!(sizes(&requests(under)), [2]);
        let over = vec![detail_of(MAX_REQUEST_BYTES - 10), detail_of(10)];
        assert_eq!(sizes(&requests(over)), [1, 1]);
        // Too big alone: alone.
        let huge = vec![
            detail_of(10),
            detail_of(MAX_REQUEST_BYTES + 1),
            detail_of(10),
        ];
        assert_eq!(sizes(&requests(huge)), [1, 1, 1]);
        assert!(requests(Vec::new()).is_empty());
    }
}
