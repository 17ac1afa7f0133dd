//! Reaching the daemon: connect and hand-shake, starting a detached
//! agent-vaultd first if nothing answers on the socket.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use agent_vault_proto::client::{self, ConnectError, Connection};

const START_TIMEOUT: Duration = Duration::from_secs(15);

/// The agent-vaultd beside this executable, else the one on PATH.
fn daemon_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("agent-vaultd")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("agent-vaultd"))
}

fn spawn_daemon(state_dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    use std::os::unix::process::CommandExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state_dir.join("agent-vaultd.log"))?;
    let mut daemon = std::process::Command::new(daemon_binary());
    daemon
        .current_dir(state_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        // Its own process group: the agent's Ctrl-C or exit does not stop it.
        .process_group(0);
    // Not in the shim's batch scheduling class.
    crate::sched::spawning_normal(|| daemon.spawn())?;
    Ok(())
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
    spawn_daemon(&state_dir).map_err(|e| {
        ConnectError::Refused(format!(
            "could not start agent-vaultd ({}): {e}",
            daemon_binary().display()
        ))
    })?;
    let started = Instant::now();
    let mut delay = Duration::from_millis(20);
    loop {
        match client::connect(socket, "shim").await {
            Err(ConnectError::NotRunning { path }) if started.elapsed() < START_TIMEOUT => {
                let _ = path;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(250));
            }
            other => return other,
        }
    }
}
