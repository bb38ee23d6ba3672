//! The in-process [`LeaseStore`] (tests, and processes sharing one address space): one map
//! under one lock, at most [`MAX_MEMORY_LEASES`] leases (one per process: a renewal of a
//! new tag past that is refused).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{Lease, LeaseError, LeaseStore};

/// Leases the memory store holds at most.
pub const MAX_MEMORY_LEASES: usize = 1_024;

/// Leases in this process's memory: tag → end (epoch ms).
#[derive(Default)]
pub struct MemoryLeaseStore {
    leases: Mutex<BTreeMap<String, i64>>,
}

impl MemoryLeaseStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn leases(&self) -> Result<MutexGuard<'_, BTreeMap<String, i64>>, LeaseError> {
        self.leases
            .lock()
            .map_err(|_| LeaseError::Unavailable("memory lease lock poisoned".into()))
    }
}

#[async_trait]
impl LeaseStore for MemoryLeaseStore {
    async fn renew(&self, tag: &str, until_ms: i64) -> Result<(), LeaseError> {
        let mut leases = self.leases()?;
        if let Some(until) = leases.get_mut(tag) {
            *until = until_ms;
            return Ok(());
        }
        if leases.len() >= MAX_MEMORY_LEASES {
            return Err(LeaseError::Unavailable(format!(
                "lease store full: {MAX_MEMORY_LEASES} leases"
            )));
        }
        leases.insert(tag.to_string(), until_ms);
        Ok(())
    }

    async fn expired(&self, now_ms: i64) -> Result<Vec<Lease>, LeaseError> {
        Ok(self
            .leases()?
            .iter()
            .filter(|(_, until)| **until <= now_ms)
            .map(|(tag, until)| Lease {
                tag: tag.clone(),
                until_ms: *until,
            })
            .collect())
    }

    async fn claim(&self, lease: &Lease) -> Result<bool, LeaseError> {
        let mut leases = self.leases()?;
        if leases.get(&lease.tag) != Some(&lease.until_ms) {
            return Ok(false);
        }
        leases.remove(&lease.tag);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_passes_the_lease_contract() {
        super::super::contract::run_all(|| async { MemoryLeaseStore::new() }).await;
    }

    #[tokio::test]
    async fn a_full_store_refuses_new_tags_but_renews_known_ones() {
        let store = MemoryLeaseStore::new();
        for n in 0..MAX_MEMORY_LEASES {
            store.renew(&format!("t{n}"), 1).await.unwrap();
        }
        assert!(store.renew("new", 1).await.is_err());
        store.renew("t0", 2).await.unwrap();
    }
}
