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
}
