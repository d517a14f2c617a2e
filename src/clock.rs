//! Wall-clock helpers. TTLs and timeouts use `Instant`; wall time appears only at API
//! boundaries: Unix seconds as `f64` for the reference ledger API, RFC 3339 elsewhere.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, with sub-second precision.
pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Now, as RFC 3339 UTC with milliseconds (`2026-11-25T13:35:16.123Z`).
pub(crate) fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

/// A Unix timestamp in seconds as RFC 3339 UTC.
pub(crate) fn unix_to_rfc3339(secs: f64) -> String {
    let nanos = (secs * 1e9) as i128;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map(rfc3339)
        .unwrap_or_default()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_epoch() {
        assert_eq!(super::unix_to_rfc3339(0.5), "1970-01-01T00:00:00.500Z");
    }
}
