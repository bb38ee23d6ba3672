//! One page per batch when the rate is limited (docs/design.md: Fan-out at any size).
//!
//! A publisher process with a `fanout_rate` posts at most that many frames per second, all
//! its messages together, and each process has a bucket of its own (`infra/README.md`,
//! "Rate budget"). A batch holding several page items (a broadcast has one chain per scan
//! segment, and the queue hands out what is visible, up to 10) would post them all at this
//! process's rate — four pages of 1,000 at 500/s take 8 s — while other publishers, their
//! buckets idle, find nothing to take; at the end of a broadcast a few publishers post their
//! hoard and the budget goes unused (`broadcast_bench` at the stack's defaults: 0.76–0.87 ×
//! the budget).
//!
//! So a rate-limited publisher runs the first page item of a batch and hands every other page
//! item back to the queue unrun: its exact body again (the same unit in the work log, the
//! same hop, already counted pending on the receipt), for an idle publisher to take. A page
//! the queue refuses to take back runs here, as before. Published messages and `Connections`
//! items (retries, remainders) always run where they are; without a rate limit (`serve`'s
//! default) every item of a batch runs in it.

use super::{Publisher, Work, WorkItem};
use crate::queue::InboundMessage;

impl Publisher {
    /// Which messages of `batch` this publisher hands back rather than runs (with the
    /// message id of each): with a rate limit, every page item after the first.
    pub(super) fn spare_pages(&self, batch: &[InboundMessage]) -> Vec<Option<String>> {
        let mut spare = vec![None; batch.len()];
        if self.limiter.is_none() || batch.len() < 2 {
            return spare;
        }
        let mut pages = batch
            .iter()
            .enumerate()
            .filter_map(|(index, m)| page_id(m).map(|id| (index, id)));
        pages.next();
        for (index, id) in pages {
            spare[index] = Some(id);
        }
        spare
    }

    /// Hands `message` (a page item of message `id`) back to the queue unrun; `false` (it
    /// then runs here) when the queue refused it.
    pub(super) async fn hand_back(&self, message: &InboundMessage, id: &str) -> bool {
        match self.work_queue.enqueue(id, &message.body).await {
            Ok(()) => {
                tracing::debug!(id, message_id = %message.message_id, "page item handed back to the queue");
                true
            }
            Err(error) => {
                tracing::warn!(id, message_id = %message.message_id, %error, "page item not handed back: it runs here");
                false
            }
        }
    }
}

/// The message id of `message` when it is a roster page work item.
fn page_id(message: &InboundMessage) -> Option<String> {
    match WorkItem::from_body(&message.body) {
        Some(Ok(WorkItem {
            id,
            work: Work::Page { .. },
            ..
        })) => Some(id),
        _ => None,
    }
}
