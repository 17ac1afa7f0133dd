//! Agent sessions: one per shim connection that called OpenSession.
//!
//! A session binds the requesting process (read from the socket's peer
//! credentials when it opens, because pids are reused), its MCP client and
//! the project config whose vaults it sees.

use crate::procinfo;

/// Who is asking. Shown on the approval page and stored in the audit table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requester {
    pub uid: u32,
    pub pid: u32,
    pub exe: String,
    /// MCP clientInfo "name version".
    pub mcp_client: String,
    /// The uid's user name.
    pub user: String,
    /// The process's command line (control characters removed, shortened).
    pub cmdline: String,
    /// Its working directory.
    pub cwd: String,
    /// The agent that launched it: the nearest known agent among its
    /// ancestors (claude, cursor, codex, …), else its parent, as
    /// "name (pid N)".
    pub agent: String,
}

/// Names of agents recognized among a requester's ancestors.
const KNOWN_AGENTS: [&str; 11] = [
    "claude", "cursor", "codex", "windsurf", "code", "zed", "cline", "aider", "goose", "gemini",
    "copilot",
];

fn clean(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || crate::text::is_hidden(c) {
                ' '
            } else {
                c
            }
        })
        .take(max)
        .collect::<String>()
        .trim()
        .to_string()
}

impl Requester {
    /// Everything the operating system says about a peer, read at once
    /// (pids are reused, so this happens when the session opens).
    pub fn from_peer(uid: u32, pid: u32, mcp_client: String) -> Self {
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map_or_else(|| format!("uid {uid}"), |u| u.name);
        let mut r = Requester {
            uid,
            pid,
            exe: exe_of(pid),
            mcp_client,
            user,
            cmdline: clean(&procinfo::cmdline(pid), 300),
            cwd: clean(&procinfo::cwd(pid), 300),
            ..Default::default()
        };
        let mut parent = None;
        let mut current = pid;
        for _ in 0..12 {
            let Some((ppid, _)) = procinfo::parent(current) else {
                break;
            };
            if ppid <= 1 {
                break;
            }
            let Some((_, comm)) = procinfo::parent(ppid) else {
                break;
            };
            let exe = exe_of(ppid);
            let name = std::path::Path::new(&exe)
                .file_name()
                .map_or(comm.clone(), |n| n.to_string_lossy().into_owned());
            let label = format!("{} (pid {ppid})", clean(&name, 60));
            if parent.is_none() {
                parent = Some(label.clone());
            }
            let lower = format!("{} {}", name, comm).to_lowercase();
            if KNOWN_AGENTS.iter().any(|a| lower.contains(a)) {
                r.agent = label;
                break;
            }
            current = ppid;
        }
        if r.agent.is_empty() {
            r.agent = parent.unwrap_or_default();
        }
        // A daemon running as another user (the hardened set-up) may not
        // read another user's exe link; argv[0] is what is left, and it is
        // labelled as the process's own claim.
        if r.exe.is_empty()
            && let Some(argv0) = r.cmdline.split(' ').next().filter(|a| !a.is_empty())
        {
            r.exe = format!("{argv0} (unverified: argv[0])");
        }
        r
    }

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

#[derive(Debug)]
pub struct Session {
    pub id: String,
    pub requester: Requester,
    /// The config whose vaults this session sees.
    pub project: crate::vault_id::ProjectKey,
    pub opened_ms: i64,
    /// Set when its shim holds the `Watch` stream open; a session whose
    /// watch never comes is forgotten after [`WATCH_GRACE_MS`].
    pub watched: std::sync::atomic::AtomicBool,
}

/// How long a new session may go without opening its watch.
pub const WATCH_GRACE_MS: i64 = 30_000;

/// How many sessions one uid may hold at once.
pub const MAX_SESSIONS_PER_UID: usize = 256;

/// The executable of a live process, read at once (pids are reused).
pub fn exe_of(pid: u32) -> String {
    procinfo::exe(pid)
}
