//! An [`EventSink`] that keeps what it was given, for tests (bounded: the oldest go).

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Event, EventError, EventSink};

/// Events kept at most by a [`MemoryEventSink`].
const MAX_KEPT: usize = 100_000;

/// Records every event it is given (at most 100,000; the oldest go first).
#[derive(Default)]
pub struct MemoryEventSink {
    events: Mutex<VecDeque<Event>>,
}

impl MemoryEventSink {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event kept so far, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .map(|events| events.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl EventSink for MemoryEventSink {
    async fn emit(&self, events: Vec<Event>) -> Result<(), EventError> {
        let mut kept = self.events.lock().unwrap_or_else(|e| e.into_inner());
        for event in events {
            if kept.len() == MAX_KEPT {
                kept.pop_front();
            }
            kept.push_back(event);
        }
        Ok(())
    }
}
