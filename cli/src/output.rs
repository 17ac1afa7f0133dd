//! How a command answers: JSON for scripts with `--json`, plain lines for
//! a person otherwise; and the small formats both use.

use std::time::{SystemTime, UNIX_EPOCH};

use agent_vault_proto::pb;

/// Where a command's answer goes.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    pub json: bool,
}

impl Out {
    /// Prints `value` (pretty JSON) with `--json`; otherwise runs `human`,
    /// which prints the same for a person.
    pub fn emit(&self, value: serde_json::Value, human: impl FnOnce()) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        } else {
            human();
        }
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The time from now until `ms` (unix milliseconds), for a person: `42s`,
/// `3m 05s`, `2h 10m`.
pub fn left(ms: i64) -> String {
    span((ms - now_ms()).max(0))
}

/// The time since `ms` (unix milliseconds), as [`left`] writes it.
pub fn ago(ms: i64) -> String {
    span((now_ms() - ms).max(0))
}

fn span(ms: i64) -> String {
    let s = (ms + 999) / 1000;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// A moment (unix milliseconds) in the person's local time, with its
/// zone: `2026-12-06 11:00:03 CET`.
pub fn local_time(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        Err(_) => ms.to_string(),
    }
}

/// An ISO 8601 timestamp in UTC (the audit log's) in local time, as
/// [`local_time`] writes it; as given if it does not parse.
pub fn local_iso(timestamp: &str) -> String {
    match timestamp.parse::<jiff::Timestamp>() {
        Ok(t) => local_time(t.as_millisecond()),
        Err(_) => timestamp.to_string(),
    }
}

pub fn op(o: i32) -> &'static str {
    match pb::Operation::try_from(o) {
        Ok(pb::Operation::Write) => "WRITE",
        Ok(pb::Operation::Run) => "RUN",
        _ => "READ",
    }
}

/// Users by name where this machine knows it: `alice (uid 1000), uid 1001`.
pub fn user_list(uids: &[u32]) -> String {
    uids.iter()
        .map(
            |u| match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(*u)) {
                Ok(Some(user)) => format!("{} (uid {u})", user.name),
                _ => format!("uid {u}"),
            },
        )
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_reads_like_a_clock() {
        let now = now_ms();
        assert_eq!(left(now - 5_000), "0s");
        assert_eq!(left(now + 41_500), "42s");
        assert_eq!(left(now + 184_200), "3m 05s");
        assert_eq!(left(now + 7_800_000 - 500), "2h 10m");
    }

    #[test]
    fn local_times_carry_their_zone() {
        // The system's zone; UTC on a machine without one.
        let shown = local_iso("2026-12-06T10:00:03.120Z");
        let parts: Vec<&str> = shown.split(' ').collect();
        assert_eq!(parts.len(), 3, "{shown}");
        assert!(
            parts[0].starts_with("2026-12-0") && parts[1].ends_with(":03"),
            "{shown}"
        );
        assert!(!parts[2].is_empty(), "{shown}");
        assert_eq!(local_iso("not a time"), "not a time");
        assert_eq!(
            local_time(1_796_551_203_120),
            local_iso("2026-12-06T10:00:03.120Z")
        );
    }
}
