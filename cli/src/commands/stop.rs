//! `agent-vault stop`: asks agent-vaultd to stop as SIGTERM would (pending
//! requests cancelled and recorded, the audit log flushed, the socket
//! removed) and waits until its process has ended, so that the next agent
//! or `agent-vaultd` starts a fresh one at once.

use std::time::{Duration, Instant};

use agent_vault_proto::client::{self, ConnectError};
use agent_vault_proto::pb;
use serde_json::json;

use crate::output::Out;

/// Its shutdown flushes the log and may anchor it (up to 15 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(25);

pub async fn run(out: Out) -> anyhow::Result<()> {
    let socket = agent_vault_proto::paths::socket_path()?;
    let mut connection = match client::connect(&socket, "cli").await {
        Err(ConnectError::NotRunning { path }) => {
            out.emit(json!({"stopped": false, "running": false}), || {
                println!(
                    "agent-vaultd is not running (nothing answers on {}).",
                    path.display()
                );
            });
            return Ok(());
        }
        other => other?,
    };
    let pid = connection
        .admin
        .stop(pb::StopRequest {})
        .await?
        .into_inner()
        .pid;
    drop(connection);
    let started = Instant::now();
    while alive(pid) {
        if started.elapsed() > STOP_TIMEOUT {
            anyhow::bail!(
                "agent-vaultd (pid {pid}) was asked to stop but is still running after {} s; `agent-vault logs` shows what it is doing, and `kill -9 {pid}` ends it",
                STOP_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    out.emit(
        json!({"stopped": true, "running": false, "pid": pid}),
        || {
            println!("agent-vaultd (pid {pid}) stopped.");
        },
    );
    Ok(())
}

/// Whether a process with this pid still runs (one of another user's
/// too). An ended one that nobody has reaped yet (a daemon an agent
/// started belongs to init, which some containers never reap) has ended.
fn alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if let Err(nix::errno::Errno::ESRCH) =
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None)
    {
        return false;
    }
    // /proc/PID/stat: "PID (COMM) STATE ...", COMM may hold spaces.
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        });
    zombie != Some(true)
}
