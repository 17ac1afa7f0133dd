//! Process hardening applied at start, in every mode: no core dumps, and
//! no debugger: not dumpable on Linux (another process of the same user
//! cannot ptrace the daemon or read its memory through /proc), and
//! `PT_DENY_ATTACH` on macOS.

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
