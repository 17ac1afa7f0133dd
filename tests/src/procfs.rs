//! Reading a process's state from `/proc` (memory, threads, CPU time).

use std::path::Path;

/// A number from `/proc/<pid>/status` (`"VmRSS:"` in KiB, `"Threads:"`, …).
pub fn proc_status(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The fields of a `/proc/.../stat` file after the ")" that ends the command
/// name (which may hold spaces itself): the state is `[0]`, utime `[11]`,
/// the scheduling policy `[38]`.
pub fn proc_stat_fields(path: impl AsRef<Path>) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(path).ok()?;
    Some(
        stat.rsplit(')')
            .next()?
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    )
}
