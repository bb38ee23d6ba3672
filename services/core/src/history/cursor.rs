//! Cursors: `<13-digit zero-padded epoch milliseconds>-<suffix>`, ordered as strings,
//! unique, opaque to clients. The suffix is this process's counter (ordering entries made in
//! the same millisecond here) followed by random bits (uniqueness across processes).

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use time::OffsetDateTime;

/// Digits of the millisecond part.
const MILLIS_DIGITS: usize = 13;
/// Longest suffix accepted from a client.
const MAX_SUFFIX_CHARS: usize = 32;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A position in history.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor(String);

/// Why a client's cursor was refused (`invalid_cursor`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor: {0}")]
pub struct CursorError(&'static str);

impl Cursor {
    /// As long as every cursor [`Cursor::new`] makes (13 digits, `-`, 8 + 6 hex digits):
    /// what the publish API counts in a frame before the publisher has made the real one.
    pub const WIDEST: &'static str = "0000000000000-00000000000000";

    /// A new cursor for a message recorded `at`.
    pub fn new(at: OffsetDateTime) -> Self {
        let millis = epoch_millis(at);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let random: u32 = rand::random::<u32>() & 0x00ff_ffff;
        Self(format!("{millis:013}-{count:08x}{random:06x}"))
    }

    /// Checks a cursor a client sent.
    pub fn parse(text: &str) -> Result<Self, CursorError> {
        let (millis, suffix) = text
            .split_once('-')
            .ok_or(CursorError("expected <milliseconds>-<suffix>"))?;
        if millis.len() != MILLIS_DIGITS || !millis.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CursorError("the time part must be 13 digits"));
        }
        if suffix.is_empty()
            || suffix.len() > MAX_SUFFIX_CHARS
            || !suffix.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(CursorError("the suffix must be 1 to 32 letters or digits"));
        }
        Ok(Self(text.to_string()))
    }

    /// The epoch milliseconds the cursor was made at.
    pub fn millis(&self) -> i64 {
        self.0
            .get(..MILLIS_DIGITS)
            .and_then(|m| m.parse().ok())
            .unwrap_or(0)
    }

    /// A bound that sorts before every cursor made at or after `millis` (and after every
    /// cursor made before it): read "after" it to start at that millisecond.
    pub fn floor_at(millis: i64) -> String {
        format!("{:013}-", millis.max(0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn epoch_millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_ordered_by_time_then_creation_and_unique() {
        let now = OffsetDateTime::now_utc();
        let cursors: Vec<Cursor> = (0..1_000).map(|_| Cursor::new(now)).collect();
        let mut sorted = cursors.clone();
        sorted.sort();
        assert_eq!(
            sorted, cursors,
            "made in one millisecond, ordered by creation"
        );
        let later = Cursor::new(now + time::Duration::milliseconds(1));
        assert!(later > cursors[999]);
        assert_eq!(later.millis(), epoch_millis(now) + 1);
        assert!(Cursor::parse(later.as_str()).is_ok());
    }

    #[test]
    fn malformed_cursors_are_refused() {
        for bad in [
            "",
            "abc",
            "123-abc",
            "00017330000000-ab",
            "0001733000000000x-ab",
            "0001733000000-",
            "0001733000000-a b",
            "0001733000000-é",
            &format!("0001733000000-{}", "a".repeat(33)),
        ] {
            assert!(Cursor::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Cursor::parse("1733000000000-1").is_ok());
    }

    #[test]
    fn the_floor_sorts_between_milliseconds() {
        let at = Cursor::parse("1733000000005-00000000000000").unwrap();
        let floor = Cursor::floor_at(1_733_000_000_005);
        assert!(floor.as_str() < at.as_str());
        assert!(
            Cursor::parse("1733000000004-ffffffffffffff")
                .unwrap()
                .as_str()
                < floor.as_str()
        );
    }
}

#[cfg(test)]
mod widest_tests {
    use super::*;

    #[test]
    fn every_new_cursor_is_as_long_as_the_widest() {
        for at in [
            OffsetDateTime::UNIX_EPOCH,
            OffsetDateTime::now_utc(),
            OffsetDateTime::now_utc() + time::Duration::days(365 * 200),
        ] {
            for _ in 0..50 {
                assert_eq!(Cursor::new(at).as_str().len(), Cursor::WIDEST.len());
            }
        }
        assert!(Cursor::parse(Cursor::WIDEST).is_ok());
    }
}
