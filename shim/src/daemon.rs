//! Reaching the daemon: connect and hand-shake, starting a detached
//! agent-vaultd first if nothing answers on the socket.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use agent_vault_proto::client::{self, ConnectError, Connection};

const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a daemon that stopped at start is given for another one (one
/// that won the race to start) to answer instead.
const START_RACE_GRACE: Duration = Duration::from_millis(500);

/// The agent-vaultd beside this executable, else the one on PATH.
fn daemon_binary() -> PathBuf {
    agent_vault_proto::paths::sibling_program("agent-vaultd")
}

/// Variables a daemon started by the shim keeps: where its files are,
/// who and where it is, and nothing else of the agent's environment (no
/// `AGENT_VAULT_CONFIG` naming the agent's own project as the daemon's
/// config, no `LD_PRELOAD`, no tokens the agent happens to hold).
const DAEMON_ENV: [&str; 15] = [
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "XDG_RUNTIME_DIR",
    "XDG_STATE_HOME",
    "XDG_CONFIG_HOME",
    "AGENT_VAULT_HOME",
    "AGENT_VAULT_SOCKET",
    "AGENT_VAULT_LOG",
];

/// The environment for a daemon started in `state_dir`: [`DAEMON_ENV`],
/// and the variables that the config it will load (found as it will find
/// it, without `AGENT_VAULT_CONFIG`) names in `env:` references, such as
/// `NGROK_AUTHTOKEN`.
fn daemon_env(state_dir: &Path) -> Vec<(String, std::ffi::OsString)> {
    let without_config = |name: &str| {
        (name != "AGENT_VAULT_CONFIG")
            .then(|| agent_vault_proto::paths::process_env(name))
            .flatten()
    };
    let own_config = agent_vault_proto::project::find_config(&without_config, state_dir)
        .unwrap_or_else(|| state_dir.join(agent_vault_proto::project::CONFIG_FILE_NAME));
    let referenced = std::fs::read_to_string(own_config)
        .map(|t| agent_vault_proto::project::referenced_env_names(&t))
        .unwrap_or_default();
    DAEMON_ENV
        .iter()
        .map(|n| n.to_string())
        .chain(referenced)
        .filter_map(|n| std::env::var_os(&n).map(|v| (n, v)))
        .collect()
}

/// A daemon this shim started: the process, and where its log began.
struct Started {
    child: std::process::Child,
    log: PathBuf,
    log_from: u64,
}

impl Started {
    /// Why it stopped, if it did: its exit status and its own last words.
    fn failure(&mut self) -> Option<ConnectError> {
        let status = self.child.try_wait().ok().flatten()?;
        let text = std::fs::read(&self.log)
            .map(|t| {
                let from = usize::try_from(self.log_from).unwrap_or(0).min(t.len());
                String::from_utf8_lossy(&t[from..]).into_owned()
            })
            .unwrap_or_default();
        Some(ConnectError::StartFailed {
            status: status.to_string(),
            reason: last_words(&text),
            log: self.log.clone(),
        })
    }
}

/// The daemon's reason in its log: the `agent-vaultd: …` line it prints
/// last when it cannot start, else its last lines.
fn last_words(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if let Some(l) = lines.iter().rev().find(|l| l.starts_with("agent-vaultd: ")) {
        return l["agent-vaultd: ".len()..].to_string();
    }
    match lines.len() {
        0 => "it wrote nothing to its log".into(),
        n => lines[n.saturating_sub(5)..].join(" | "),
    }
}

fn spawn_daemon(state_dir: &Path) -> std::io::Result<Started> {
    use std::os::unix::fs::DirBuilderExt;
    use std::os::unix::process::CommandExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)?;
    let log_path = state_dir.join("agent-vaultd.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let log_from = log.metadata()?.len();
    let mut daemon = std::process::Command::new(daemon_binary());
    daemon
        .current_dir(state_dir)
        .env_clear()
        .envs(daemon_env(state_dir))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        // Its own process group: the agent's Ctrl-C or exit does not stop it.
        .process_group(0);
    Ok(Started {
        child: daemon.spawn()?,
        log: log_path,
        log_from,
    })
}

/// Connects, starting the daemon if needed, and waits for its hello.
pub async fn connect_or_start(socket: &Path) -> Result<Connection, ConnectError> {
    match client::connect(socket, "shim").await {
        Err(ConnectError::NotRunning { .. }) => {}
        other => return other,
    }
    let state_dir =
        agent_vault_proto::paths::state_dir().map_err(|e| ConnectError::Refused(e.to_string()))?;
    tracing::info!("starting agent-vaultd");
    let mut daemon = spawn_daemon(&state_dir).map_err(|e| {
        ConnectError::Refused(format!(
            "could not start agent-vaultd ({}): {}",
            daemon_binary().display(),
            agent_vault_proto::words::io_error(&e)
        ))
    })?;
    let started = Instant::now();
    let mut delay = Duration::from_millis(20);
    let mut failed: Option<(Instant, ConnectError)> = None;
    loop {
        match client::connect(socket, "shim").await {
            Err(ConnectError::NotRunning { .. }) if started.elapsed() < START_TIMEOUT => {
                // Stopped already: say why soon rather than at the time-out.
                // Not at once: it may have stopped because another shim's
                // daemon, still starting, took the socket first.
                if failed.is_none() {
                    failed = daemon.failure().map(|e| (Instant::now(), e));
                }
                if let Some((at, _)) = &failed
                    && at.elapsed() >= START_RACE_GRACE
                    && let Some((_, e)) = failed.take()
                {
                    return Err(e);
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(250));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemons_reason_is_its_last_words() {
        let log = "2026-12-06T10:00:00Z  INFO agent-vaultd: loading config\nagent-vaultd: port 9999 (for the approval pages) is in use by another program\n";
        assert_eq!(
            last_words(log),
            "port 9999 (for the approval pages) is in use by another program"
        );
        assert_eq!(last_words(""), "it wrote nothing to its log");
        assert_eq!(last_words("a\nb\n\nc\n"), "a | b | c");
    }
}
