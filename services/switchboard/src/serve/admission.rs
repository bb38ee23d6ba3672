//! Which accepted TCP connections a listener keeps: at most `LISTENER_MAX_CONNECTIONS` open
//! at once, and at most `LISTENER_MAX_CONNECTIONS_PER_ADDRESS` from one peer address. A
//! connection over either cap is closed at once (the caller counts it), so a flood costs a
//! descriptor for an instant instead of filling the process's open-files limit.
//!
//! The count per address has an entry only while that address has a connection open: at
//! most `LISTENER_MAX_CONNECTIONS` entries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Why a connection was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The listener has `LISTENER_MAX_CONNECTIONS` open.
    ListenerFull,
    /// The peer address has `LISTENER_MAX_CONNECTIONS_PER_ADDRESS` open.
    AddressFull,
}

impl Refusal {
    /// The `reason` label of `switchboard_listener_connections_refused_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::ListenerFull => "listener_max",
            Refusal::AddressFull => "address_max",
        }
    }
}

#[derive(Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// The open connections of one listener.
pub struct Admission {
    max_connections: usize,
    max_per_address: usize,
    open: Mutex<Open>,
}

/// One kept connection; dropping it (the connection ended) frees its place.
pub struct Admitted {
    admission: Arc<Admission>,
    address: IpAddr,
}

impl Admission {
    pub fn new(max_connections: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            max_connections,
            max_per_address,
            open: Mutex::new(Open::default()),
        })
    }

    /// Takes a place for a connection from `address`, or says why there is none.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<Admitted, Refusal> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.max_connections {
            return Err(Refusal::ListenerFull);
        }
        let from_address = open.by_address.entry(address).or_insert(0);
        if *from_address >= self.max_per_address {
            return Err(Refusal::AddressFull);
        }
        *from_address += 1;
        open.total += 1;
        Ok(Admitted {
            admission: self.clone(),
            address,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self
            .admission
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_address.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn refuses_past_the_per_address_cap_and_frees_places_on_drop() {
        let admission = Admission::new(10, 2);
        let first = admission.admit(ip(1)).unwrap();
        let _second = admission.admit(ip(1)).unwrap();
        assert_eq!(admission.admit(ip(1)).err(), Some(Refusal::AddressFull));
        // Another address is not affected.
        let _other = admission.admit(ip(2)).unwrap();
        drop(first);
        assert!(admission.admit(ip(1)).is_ok());
    }

    #[test]
    fn refuses_past_the_listener_cap_and_forgets_idle_addresses() {
        let admission = Admission::new(2, 2);
        let a = admission.admit(ip(1)).unwrap();
        let b = admission.admit(ip(2)).unwrap();
        assert_eq!(admission.admit(ip(3)).err(), Some(Refusal::ListenerFull));
        assert_eq!(admission.open(), 2);
        drop((a, b));
        assert_eq!(admission.open(), 0);
        let open = admission.open.lock().unwrap();
        assert!(open.by_address.is_empty(), "no entry without a connection");
    }
}
