//! Helpers shared by the backends: error constructors and time conversions.

// Each helper is used by some backends only; which ones depends on the features enabled.
#![allow(dead_code)]

use std::time::Duration;

use cineflow_core::Error;
use time::OffsetDateTime;

/// `NotFound` for `entity` `id`.
pub(crate) fn not_found(entity: &'static str, id: impl ToString) -> Error {
    Error::NotFound {
        entity,
        id: id.to_string(),
    }
}

/// `Conflict` for a stale revision.
pub(crate) fn stale(entity: &'static str, id: impl ToString, given: u64, stored: u64) -> Error {
    Error::Conflict {
        entity,
        id: id.to_string(),
        reason: format!("stale revision {given} (stored {stored})"),
    }
}

/// `Conflict` for a record that already exists.
pub(crate) fn exists(entity: &'static str, id: impl ToString, reason: &str) -> Error {
    Error::Conflict {
        entity,
        id: id.to_string(),
        reason: reason.to_owned(),
    }
}

/// `LeaseLost` for `owner` on `task`.
pub(crate) fn lease_lost(task: impl ToString, owner: &str) -> Error {
    Error::LeaseLost {
        task: task.to_string(),
        owner: owner.to_owned(),
    }
}

/// A backend error for bad stored JSON or a value that cannot be stored.
pub(crate) fn codec(what: impl Into<String>, e: serde_json::Error) -> Error {
    Error::backend(what, e)
}

/// Nanoseconds since the Unix epoch, saturating to the `i64` range (years 1677..=2262).
pub(crate) fn to_ns(t: OffsetDateTime) -> i64 {
    let n = t.unix_timestamp_nanos();
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

/// The UTC instant `ns` nanoseconds after the Unix epoch.
pub(crate) fn from_ns(ns: i64) -> OffsetDateTime {
    // Every i64 is within `time`'s range, so this cannot fail; fall back to the epoch anyway.
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `ttl` in nanoseconds, saturating.
pub(crate) fn ttl_ns(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_nanos()).unwrap_or(i64::MAX)
}

/// `now + ttl`, saturating at the latest instant every backend can store (year 2262), so that a
/// huge TTL gives a lease that is live, never one that has already lapsed.
pub(crate) fn deadline(now: OffsetDateTime, ttl: Duration) -> OffsetDateTime {
    from_ns(to_ns(now).saturating_add(ttl_ns(ttl)))
}

/// The current time, truncated to what every backend stores (nanoseconds in an `i64`).
pub(crate) fn now() -> OffsetDateTime {
    from_ns(to_ns(OffsetDateTime::now_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanosecond_timestamps_round_trip() {
        let t = time::macros::datetime!(2026-01-11 07:08:35.123456789 UTC);
        assert_eq!(from_ns(to_ns(t)), t);
    }

    #[test]
    fn deadlines_saturate_instead_of_lapsing() {
        let now = OffsetDateTime::now_utc();
        assert!(deadline(now, Duration::MAX) > now);
        assert_eq!(deadline(now, Duration::ZERO), from_ns(to_ns(now)));
    }
}
