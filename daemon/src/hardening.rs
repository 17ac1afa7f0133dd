//! Process hardening applied at start, in every mode: no core dumps and
//! (on Linux) not dumpable, so another process of the same user cannot
//! ptrace the daemon or read its memory through /proc.

pub fn harden_process() {
    if let Err(e) = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0) {
        tracing::warn!(error = %e, "could not disable core dumps");
    }
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!(error = %e, "could not mark the process non-dumpable");
    }
}
