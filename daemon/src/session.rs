//! Agent sessions: one per shim connection that called OpenSession.
//!
//! A session binds the requesting process (read from the socket's peer
//! credentials when it opens, because pids are reused), its MCP client and
//! the project config whose vaults it sees.

use std::path::PathBuf;

/// Who is asking. Shown on the approval page and stored in the audit table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requester {
    pub uid: u32,
    pub pid: u32,
    pub exe: String,
    /// MCP clientInfo "name version".
    pub mcp_client: String,
}

impl Requester {
    /// A one-line description for logs, pages and the audit table.
    pub fn describe(&self) -> String {
        let exe = if self.exe.is_empty() { "?" } else { &self.exe };
        let client = if self.mcp_client.is_empty() {
            "unknown client"
        } else {
            &self.mcp_client
        };
        format!("{client} via {exe} (pid {}, uid {})", self.pid, self.uid)
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub requester: Requester,
    /// The config whose vaults this session sees.
    pub project: PathBuf,
    pub opened_ms: i64,
}

/// The executable of a live process, read at once (pids are reused).
pub fn exe_of(pid: u32) -> String {
    #[cfg(target_os = "linux")]
    {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        String::new()
    }
}
