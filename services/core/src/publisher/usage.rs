//! The publisher's usage counts: each unit of work adds to its tenant's minute the very
//! `matched`/`delivered`/`gone`/`pushed` it adds to the receipt, at the same point (when it
//! settles, not when it is redelivered), so the work log's "runs once" covers usage too.

use time::OffsetDateTime;

use super::{Publisher, WorkItem};
use crate::receipts::Progress;
use crate::usage::{Counts, Usage};

impl Publisher {
    /// Counts every unit of work in `usage` (`None`: not counted).
    pub fn with_usage(mut self, usage: Option<Usage>) -> Self {
        self.usage = usage;
        self
    }

    /// Adds a settled unit's `done` progress (and its bytes: frame bytes × frames
    /// delivered) to the usage of its tenant: one write per unit. A failure is logged and
    /// counted by the usage handle; delivery goes on.
    pub(super) async fn record_usage(&self, item: &WorkItem, done: &Progress) {
        let Some(usage) = &self.usage else {
            return;
        };
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        let delivered = count(done.delivered);
        let frame_bytes = u64::try_from(item.frame.len()).unwrap_or(u64::MAX);
        let counts = Counts {
            matched: count(done.matched),
            delivered,
            gone: count(done.gone),
            pushed: count(done.pushed),
            bytes_sent: frame_bytes.saturating_mul(delivered),
            ..Counts::default()
        };
        usage
            .record(item.tenant.as_ref(), OffsetDateTime::now_utc(), &counts)
            .await;
    }
}
