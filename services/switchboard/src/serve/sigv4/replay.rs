//! The signatures already used, each until its `x-amz-date` leaves the clock-skew window
//! (after which [`super::verify`] refuses it as skewed anyway). Bounded in entries
//! ([`REPLAY_CACHE_ENTRIES`], about 140 bytes each): when every entry is still within its
//! window a new signature is refused ([`SigV4Error::ReplayCacheFull`]) rather than an
//! unexpired one forgotten, which would let it be replayed.

use std::collections::{BTreeSet, HashSet};
use std::time::SystemTime;

use super::SigV4Error;

/// Signatures remembered at most: 100,000 requests within a 30-minute window
/// (`x-amz-date` up to 15 minutes either side of now); 13.3 MiB when full (measured).
pub const REPLAY_CACHE_ENTRIES: usize = 100_000;

/// A SHA-256 HMAC signature, decoded from its 64 hex digits.
pub type Signature = [u8; 32];

/// Seen signatures and when each may be forgotten.
#[derive(Debug)]
pub struct ReplayCache {
    capacity: usize,
    seen: HashSet<Signature>,
    /// The same signatures, oldest expiry first.
    expiries: BTreeSet<(SystemTime, Signature)>,
}

impl ReplayCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            seen: HashSet::new(),
            expiries: BTreeSet::new(),
        }
    }

    /// Records `signature` as used until `expires`: refused if it was used before, or if
    /// the cache is full of signatures that have not expired at `now`.
    pub fn record(
        &mut self,
        signature: Signature,
        expires: SystemTime,
        now: SystemTime,
    ) -> Result<(), SigV4Error> {
        while let Some(&(at, old)) = self.expiries.first() {
            if at > now {
                break;
            }
            self.expiries.pop_first();
            self.seen.remove(&old);
        }
        if self.seen.contains(&signature) {
            return Err(SigV4Error::Replayed);
        }
        if self.seen.len() >= self.capacity {
            return Err(SigV4Error::ReplayCacheFull);
        }
        self.seen.insert(signature);
        self.expiries.insert((expires, signature));
        Ok(())
    }

    /// Forgets `signature`, recorded with `expires`.
    pub fn forget(&mut self, signature: Signature, expires: SystemTime) {
        self.seen.remove(&signature);
        self.expiries.remove(&(expires, signature));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.seen.len()
    }
}

/// The 32 bytes of a 64-hex-digit signature.
pub fn decode(text: &str) -> Option<Signature> {
    let mut signature = [0u8; 32];
    hex::decode_to_slice(text, &mut signature).ok()?;
    Some(signature)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_signature_is_good_once_until_it_expires() {
        let now = SystemTime::now();
        let mut cache = ReplayCache::new(10);
        let expires = now + Duration::from_secs(60);
        assert_eq!(cache.record([1; 32], expires, now), Ok(()));
        assert_eq!(
            cache.record([1; 32], expires, now),
            Err(SigV4Error::Replayed)
        );
        // Once expired it is forgotten (verify refuses it as skewed by then).
        let later = expires + Duration::from_secs(1);
        assert_eq!(
            cache.record([1; 32], later + Duration::from_secs(60), later),
            Ok(())
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_full_cache_refuses_new_signatures_instead_of_forgetting_live_ones() {
        let now = SystemTime::now();
        let mut cache = ReplayCache::new(2);
        let expires = now + Duration::from_secs(60);
        assert_eq!(cache.record([1; 32], expires, now), Ok(()));
        assert_eq!(cache.record([2; 32], expires, now), Ok(()));
        assert_eq!(
            cache.record([3; 32], expires, now),
            Err(SigV4Error::ReplayCacheFull)
        );
        // Still remembered: a replay of the first is refused as one.
        assert_eq!(
            cache.record([1; 32], expires, now),
            Err(SigV4Error::Replayed)
        );
        // When the first two expire there is room again.
        let later = expires + Duration::from_secs(1);
        assert_eq!(
            cache.record([3; 32], later + Duration::from_secs(60), later),
            Ok(())
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn decodes_hex_signatures_only() {
        assert_eq!(decode(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(decode("ab"), None);
        assert_eq!(decode(&"zz".repeat(32)), None);
    }
}
