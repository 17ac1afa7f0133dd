//! The real `agent-vaultd`, started on a terminal whose output is kept
//! (`target/e2e-logs`), waited for by polling `agent-vault status`, and
//! stopped with SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::home::{Home, bin};

/// A fresh log file under `target/e2e-logs`, kept after the test so that
/// the whole run's logs can be searched for secret values.
pub fn log_path(kind: &str) -> PathBuf {
    let dir = bin("agent-vaultd")
        .parent()
        .and_then(Path::parent)
        .map(|t| t.join("e2e-logs"))
        .unwrap_or_else(std::env::temp_dir);
    let _ = std::fs::create_dir_all(&dir);
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    dir.join(format!(
        "{kind}-{}-{}.log",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ))
}

/// A terminal whose output is appended to `log`: the daemon's stderr, as
/// when a person runs it in a terminal (agent-vaultd shows the first
/// pairing link only there). Returns the terminal's side for the daemon.
pub fn terminal_into(log: &Path) -> Result<std::fs::File> {
    let pty = nix::pty::openpty(None, None)?;
    let mut master = std::fs::File::from(pty.master);
    let mut out = std::fs::OpenOptions::new().append(true).open(log)?;
    // Ends when the daemon (the last holder of the other side) exits.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut master, &mut out);
    });
    Ok(std::fs::File::from(pty.slave))
}

/// The pairing links shown in a daemon's terminal output, oldest first.
pub fn pairing_links(log: &str) -> Vec<String> {
    log.split_whitespace()
        .filter(|w| w.starts_with("http") && w.contains("/pair/"))
        .map(str::to_string)
        .collect()
}

/// Polls `f` every 20 ms until it returns Some, or fails after `timeout`.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Home {
    /// The daemon, started here with nothing changed.
    pub fn start_daemon(&self) -> Result<Daemon> {
        Daemon::start(self, |_| {})
    }
}

pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
    pub base_url: String,
}

impl Daemon {
    /// Starts the daemon (`configure` may change the command, e.g. its uid)
    /// and waits until `agent-vault status` answers.
    pub fn start(home: &Home, configure: impl FnOnce(&mut Command)) -> Result<Self> {
        Self::start_exe(home, &bin("agent-vaultd"), configure)
    }

    /// [`Daemon::start`] with another build's `agent-vaultd` (benchmarks
    /// compare two).
    pub fn start_exe(
        home: &Home,
        exe: &Path,
        configure: impl FnOnce(&mut Command),
    ) -> Result<Self> {
        let log = log_path("daemon");
        std::fs::File::create(&log)?;
        let mut cmd = home.command(exe);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(terminal_into(&log)?);
        configure(&mut cmd);
        if let Ok(mut l) = home.daemon_log.lock() {
            *l = Some(log.clone());
        }
        let mut child = cmd.spawn()?;
        let status = poll(Duration::from_secs(20), || {
            if let Ok(Some(_)) = child.try_wait() {
                return Some(Err(anyhow!(
                    "agent-vaultd exited: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )));
            }
            home.cli_json(&["status"]).ok().map(Ok)
        })
        .context("waiting for agent-vaultd")??;
        let base_url = status["approvalUrl"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok(Self {
            child,
            log,
            base_url,
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid()),
            nix::sys::signal::Signal::SIGTERM,
        )?;
        let status = poll(Duration::from_secs(15), || {
            self.child.try_wait().ok().flatten()
        })?;
        Ok(status)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The first word starting with `prefix` (say `otpauth://`) that the
    /// daemon shows on its terminal, waited for.
    pub fn shown_on_terminal(&self, prefix: &str) -> Result<String> {
        poll(Duration::from_secs(10), || {
            self.log()
                .split_whitespace()
                .find(|w| w.starts_with(prefix))
                .map(str::to_string)
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
