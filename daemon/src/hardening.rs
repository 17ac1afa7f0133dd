//! Process hardening applied at start, in every mode: no core dumps, and
//! no debugger: not dumpable on Linux (another process of the same user
//! cannot ptrace the daemon or read its memory through /proc), and
//! `PT_DENY_ATTACH` on macOS.

/// The pid tracing this process (a debugger, strace), if any. Being not
/// dumpable keeps later tracers out, but not one that started the daemon.
pub fn tracer() -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        tracer_in(&status)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// `TracerPid` of a `/proc/PID/status` text, when not 0.
pub fn tracer_in(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .and_then(|v| v.trim().parse().ok())
        .filter(|pid| *pid != 0)
}

/// Refuses to run under a tracer: whoever started the daemon under one
/// (an agent, say, with `strace -f`) would read every secret it handles.
pub fn refuse_tracer() -> anyhow::Result<()> {
    match tracer() {
        Some(pid) => anyhow::bail!(
            "agent-vaultd is being traced (by pid {pid}) and will not run that way: a tracer sees every secret it handles"
        ),
        None => Ok(()),
    }
}

pub fn harden_process() {
    if let Err(e) = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0) {
        tracing::warn!(error = %e, "could not disable core dumps");
    }
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!(error = %e, "could not mark the process non-dumpable");
    }
    #[cfg(target_os = "macos")]
    if let Err(e) = crate::procinfo::deny_attach() {
        tracing::warn!(error = %e, "could not deny debugger attachment");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_tracer_pid() {
        assert_eq!(super::tracer_in("Name:\tx\nTracerPid:\t0\n"), None);
        assert_eq!(super::tracer_in("Name:\tx\nTracerPid:\t4711\n"), Some(4711));
        assert_eq!(super::tracer_in("Name:\tx\n"), None);
    }
}
