//! Leases: API keys that expire by themselves. The lease lives in Atlas, on the key, as
//! the marker ` [atlas-gw expires 2026-12-08T10:00:00Z]` at the end of its `desc`, so no
//! gateway crash, restart or lost store can forget it and an operator sees it in the
//! Atlas UI.
//!
//! This file owns the marker: its format, where it goes, how it is read back (only an
//! exact marker at the very end of a `desc` counts) and the lease bounds. The sweeper
//! that deletes expired keys is [`sweeper`]. Nothing here talks to Atlas, and a `desc`
//! without a well-formed marker is never leased.
mod audited;
pub mod sweeper;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Shortest lease a call may ask for.
pub const MIN_TTL: Duration = Duration::from_secs(60);

const OPEN: &str = " [atlas-gw expires ";
const CLOSE: &str = "]";
/// `2026-12-08T10:00:00Z`: RFC 3339, UTC, whole seconds.
const TIME_CHARS: usize = 20;
/// Characters the marker adds to a `desc`.
pub const MARKER_CHARS: usize = OPEN.len() + TIME_CHARS + CLOSE.len();

/// The `desc` sent to Atlas for a key leased until `expires`.
pub fn mark(desc: &str, expires: SystemTime) -> String {
    format!(
        "{desc}{OPEN}{}{CLOSE}",
        humantime::format_rfc3339_seconds(expires)
    )
}

/// A `desc` as Atlas keeps it, split into the caller's `desc` and the lease's end.
pub fn read(stored: &str) -> (&str, Option<SystemTime>) {
    let parsed = stored
        .strip_suffix(CLOSE)
        .and_then(|s| {
            let at = s.len().checked_sub(TIME_CHARS)?;
            s.is_char_boundary(at).then(|| s.split_at(at))
        })
        .and_then(|(head, time)| Some((head.strip_suffix(OPEN)?, time)))
        .and_then(|(desc, time)| Some((desc, humantime::parse_rfc3339(time).ok()?)));
    match parsed {
        Some((desc, expires)) => (desc, Some(expires)),
        None => (stored, None),
    }
}

/// When a lease of `ttl` taken at `now` ends: rounded up to the whole second the marker
/// can say, so a key never expires before its `ttl` has passed.
pub fn expiry(now: SystemTime, ttl: Duration) -> SystemTime {
    let end = (now + ttl)
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let secs = end.as_secs() + u64::from(end.subsec_nanos() > 0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// The `desc` a new key is created with: the caller's, with the marker when it is
/// leased until `end`.
pub fn created(desc: &str, end: Option<SystemTime>) -> String {
    match end {
        Some(end) => mark(desc, end),
        None => desc.to_string(),
    }
}

/// `time` as a protobuf `Timestamp` (`ApiKey.expire_time`).
pub fn timestamp(time: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(time)
}

/// True when a key with this stored `desc` is leased and its lease has ended by `now`.
pub fn expired(stored: &str, now: SystemTime) -> bool {
    read(stored).1.is_some_and(|end| end <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn the_marker_round_trips_and_has_its_fixed_length() {
        let end = at(1_796_724_000); // 2026-12-08T10:00:00Z
        let stored = mark("ci key", end);
        assert_eq!(stored, "ci key [atlas-gw expires 2026-12-08T10:00:00Z]");
        assert_eq!(stored.chars().count(), "ci key".len() + MARKER_CHARS);
        assert_eq!(MARKER_CHARS, 40);
        assert_eq!(read(&stored), ("ci key", Some(end)));
    }

    #[test]
    fn only_an_exact_marker_at_the_end_is_a_lease() {
        for stored in [
            "ci key",
            "",
            "]",
            "ci key [atlas-gw expires 2026-12-08T10:00:00Z] and more",
            "ci key [atlas-gw expires 2026-12-08T10:00:00Z",
            "ci key [atlas-gw expires 2026-13-08T10:00:00Z]",
            "ci key [atlas-gw expires 2026-12-08 10:00:00Z]",
            "ci key [atlas-gw expires 2026-12-08T10:00:00.5Z]",
            "ci key [atlas-gw expire 2026-12-08T10:00:00Z]",
            "ci key[atlas-gw expires 2026-12-08T10:00:00Z]",
            "é [atlas-gw expires 2026-12-08T10:00:0éZ]",
        ] {
            assert_eq!(read(stored), (stored, None), "{stored:?}");
            assert!(!expired(stored, at(u64::MAX / 4)), "{stored:?}");
        }
    }

    #[test]
    fn a_lease_ends_at_its_marker_and_not_before() {
        let stored = mark("k", at(1000));
        assert!(!expired(&stored, at(999)));
        assert!(expired(&stored, at(1000)));
        assert!(expired(&stored, at(5000)));
    }

    #[test]
    fn only_a_leased_key_is_created_with_a_marker() {
        assert_eq!(created("k", None), "k");
        assert_eq!(created("k", Some(at(600))), mark("k", at(600)));
    }

    #[test]
    fn expiry_rounds_up_to_the_second() {
        let now = at(100) + Duration::from_millis(1);
        assert_eq!(expiry(now, MIN_TTL), at(161));
        assert_eq!(expiry(at(100), MIN_TTL), at(160));
    }
}
