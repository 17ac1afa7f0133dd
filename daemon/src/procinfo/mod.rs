//! What the operating system says about a process, by pid: its executable,
//! command line, working directory and parent. Read when a session opens
//! (pids are reused). Each answer is empty or None when the system refuses
//! it (another user's process, a process gone).
//!
//! Linux reads `/proc`; macOS asks libproc (`proc_pidpath`, `proc_pidinfo`)
//! and `sysctl(KERN_PROCARGS2)`.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::{cmdline, cwd, exe, parent};

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
pub use macos::{cmdline, cwd, deny_attach, exe, parent};

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
mod other {
    pub fn exe(_pid: u32) -> String {
        String::new()
    }
    pub fn cmdline(_pid: u32) -> String {
        String::new()
    }
    pub fn cwd(_pid: u32) -> String {
        String::new()
    }
    pub fn parent(_pid: u32) -> Option<(u32, String)> {
        None
    }
}
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub use other::{cmdline, cwd, exe, parent};
