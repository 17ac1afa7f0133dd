//! Time as unix milliseconds, and the prototype's ISO 8601 text form.
//!
//! Every decision about expiry takes `now_ms` as a parameter; only the
//! daemon's edges call [`now_ms`].

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn now_ms() -> i64 {
    let now = OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

/// `2026-04-10T14:32:01.000Z`, as the prototype wrote timestamps.
pub fn iso(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt)
        .unwrap_or_else(|_| t.format(&Rfc3339).unwrap_or_default())
}

/// Minutes as milliseconds, rounded.
pub fn minutes_ms(minutes: f64) -> i64 {
    (minutes * 60_000.0).round() as i64
}

/// "4m 10s" for a duration in ms.
pub fn human(ms: i64) -> String {
    let s = (ms.max(0) + 999) / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_matches_the_prototype() {
        assert_eq!(iso(1_775_831_521_000), "2026-04-10T14:32:01.000Z");
        assert_eq!(human(61_000), "1m 01s");
    }
}
