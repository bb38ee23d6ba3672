//! The publisher's tests, by subject, on one rig: the memory roster, a scripted poster,
//! recording queues for the dead letters and the work items, and (when asked) a memory
//! receipt store.

mod events;
mod fanout;
mod handback;
mod history;
mod intake;
mod once;
mod push;
mod receipts;
mod settle;
mod usage;
mod work_items;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_model::{TenantId, UserId, MAX_FRAME_BYTES};
use time::OffsetDateTime;

use super::*;
use crate::poster::PostError;
use crate::queue::InboundMessage;
use crate::receipts::{MemoryReceiptStore, Receipt, ReceiptConfig, ReceiptKey, ReceiptStore};
use crate::roster::PageScope;
use crate::roster::{ConnectionRecord, MemoryRosterStore, RosterStore};
use crate::testkit::{run_to_completion, RecordingQueue, ScriptedPoster};

struct Rig {
    roster: Arc<MemoryRosterStore>,
    poster: Arc<ScriptedPoster>,
    dlq: Arc<RecordingQueue>,
    work: Arc<RecordingQueue>,
    /// The receipt store [`Rig::with_receipts`] wires in by default (unused before).
    receipts: Arc<MemoryReceiptStore>,
    publisher: Publisher,
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(10),
    }
}

/// A rig posting through `poster`, receipts off.
fn rig_with(poster: ScriptedPoster, config: PublisherConfig) -> Rig {
    let roster = Arc::new(MemoryRosterStore::new());
    let poster = Arc::new(poster);
    let dlq = Arc::new(RecordingQueue::new());
    let work = Arc::new(RecordingQueue::new());
    let publisher = Publisher::new(
        PublisherPorts {
            roster: roster.clone(),
            poster: poster.clone(),
            dead_letters: dlq.clone(),
            work_queue: work.clone(),
        },
        config,
    );
    Rig {
        roster,
        poster,
        dlq,
        work,
        receipts: Arc::new(MemoryReceiptStore::new(1_000)),
        publisher,
    }
}

/// Fast retries, no `410` grace (fixtures connect "now").
fn test_config() -> PublisherConfig {
    PublisherConfig {
        retry: fast_retry(),
        gone_grace: Duration::ZERO,
        retry_item_delay: Duration::ZERO,
        ..PublisherConfig::default()
    }
}

/// [`test_config`] with pages of `page_size` connections.
fn paged(page_size: usize) -> PublisherConfig {
    PublisherConfig {
        page_size,
        ..test_config()
    }
}

fn rig() -> Rig {
    rig_with(ScriptedPoster::new(), test_config())
}

impl Rig {
    /// Keeps receipts in `store` (`None`: the rig's own [`Rig::receipts`]).
    fn with_receipts(self, store: Option<Arc<dyn ReceiptStore>>) -> Self {
        let store = store.unwrap_or_else(|| self.receipts.clone());
        let publisher = self
            .publisher
            .clone()
            .with_receipts(Receipts::new(store, &ReceiptConfig::default()));
        Self { publisher, ..self }
    }

    /// Handles a batch of one queue message (with this id and `body`).
    async fn publish(&self, id: &str, body: impl ToString) -> BatchOutcome {
        self.publisher.handle_batch(&[message(id, body)]).await
    }

    /// Runs `batch`, then every work item it leads to.
    async fn run(&self, batch: Vec<InboundMessage>) -> Vec<MessageReport> {
        run_to_completion(&self.publisher, &self.work, batch, 1_000).await
    }

    async fn connect(&self, tenant: &str, user: &str, connection: &str) {
        let record = crate::testkit::record(tenant, user, connection);
        self.roster.put(&record).await.unwrap();
    }

    async fn populate(&self) {
        self.connect("acme", "alice", "acme-alice-1").await;
        self.connect("acme", "alice", "acme-alice-2").await;
        self.connect("acme", "bob", "acme-bob-1").await;
        self.connect("globex", "alice", "globex-alice-1").await;
        self.connect("globex", "carol", "globex-carol-1").await;
    }

    /// The receipt under `key` in the rig's own store.
    async fn receipt(&self, key: &ReceiptKey) -> Receipt {
        self.receipts.get(key).await.unwrap().expect("a receipt")
    }
}

/// A queue message with this id and `body` (JSON, or any text).
fn message(id: &str, body: impl ToString) -> InboundMessage {
    InboundMessage {
        message_id: id.to_string(),
        body: body.to_string(),
        receive_count: 1,
    }
}

/// `count` connections of `tenant`, spread over seven users.
async fn connect_many(rig: &Rig, tenant: &str, count: usize) {
    for i in 0..count {
        rig.connect(tenant, &format!("u{}", i % 7), &format!("{tenant}-{i:05}"))
            .await;
    }
}

/// Posts per connection so far: every one must be 1.
fn posts_per_connection(rig: &Rig) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for connection in rig.poster.delivered_to() {
        *counts.entry(connection).or_insert(0) += 1;
    }
    counts
}
