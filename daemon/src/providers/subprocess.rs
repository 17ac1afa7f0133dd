//! Running a backend's command-line tool (`op`, and later `bws` and your
//! own commands): an argument list, never a shell; an environment given
//! explicitly; a value passed on stdin, never in the arguments (which any
//! process of the same user can read); stdout kept in zeroized memory.
//!
//! The command runs in a process group of its own. When the call is
//! dropped (its time-out passed, or the daemon is shutting down), the
//! whole group is killed, so a tool that forks helpers leaves nothing
//! behind.

use std::process::Stdio;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

/// The most a command may print on stdout or stderr.
const MAX_OUTPUT: u64 = 4 * 1024 * 1024;

pub struct Command<'a> {
    pub program: &'a str,
    pub args: Vec<String>,
    /// The child's whole environment (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// Written to the child's stdin, then stdin is closed.
    pub stdin: Option<Zeroizing<Vec<u8>>>,
}

pub struct Output {
    pub success: bool,
    pub stdout: Zeroizing<Vec<u8>>,
    pub stderr: String,
}

#[derive(Debug)]
pub enum RunError {
    /// The program is not installed (or not on the PATH given).
    NotFound,
    Io(std::io::Error),
}

/// Kills the child's process group unless the child was reaped.
struct GroupGuard {
    pgid: Option<Pid>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

pub async fn run(cmd: Command<'_>) -> Result<Output, RunError> {
    let mut c = tokio::process::Command::new(cmd.program);
    c.args(&cmd.args)
        .env_clear()
        .envs(cmd.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(if cmd.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = c.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => RunError::NotFound,
        _ => RunError::Io(e),
    })?;
    let mut guard = GroupGuard {
        pgid: child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw),
    };
    let stdin = child.stdin.take();
    let input = cmd.stdin;
    let feed = async move {
        if let (Some(mut pipe), Some(bytes)) = (stdin, input) {
            // A tool that exits without reading is not an error here; its
            // exit status says what happened.
            let _ = pipe.write_all(&bytes).await;
        }
    };
    let mut out = Zeroizing::new(Vec::new());
    let mut err = Vec::new();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let read_out = async {
        if let Some(s) = stdout {
            s.take(MAX_OUTPUT).read_to_end(&mut out).await?;
        }
        Ok::<_, std::io::Error>(())
    };
    let read_err = async {
        if let Some(s) = stderr {
            s.take(MAX_OUTPUT).read_to_end(&mut err).await?;
        }
        Ok::<_, std::io::Error>(())
    };
    let ((), r1, r2) = tokio::join!(feed, read_out, read_err);
    r1.map_err(RunError::Io)?;
    r2.map_err(RunError::Io)?;
    let status = child.wait().await.map_err(RunError::Io)?;
    // Reaped: its id may be reused from now on, so the group is no longer
    // ours to signal (a helper the tool left running on purpose, such as
    // `op`'s own cache daemon, stays).
    guard.pgid = None;
    Ok(Output {
        success: status.success(),
        stdout: out,
        stderr: String::from_utf8_lossy(&err).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, stdin: Option<&str>) -> Command<'static> {
        Command {
            program: "/bin/sh",
            args: vec!["-c".into(), script.into()],
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            stdin: stdin.map(|s| Zeroizing::new(s.as_bytes().to_vec())),
        }
    }

    #[tokio::test]
    async fn output_status_stdin_and_a_clean_environment() -> Result<(), RunError> {
        let o = run(sh("cat; echo \" $HOME\" >&2; exit 3", Some("from stdin"))).await?;
        assert!(!o.success);
        assert_eq!(&o.stdout[..], b"from stdin");
        assert_eq!(o.stderr.trim(), "", "HOME is not inherited");
        let missing = run(Command {
            program: "/nonexistent/op",
            args: vec![],
            env: vec![],
            stdin: None,
        })
        .await;
        assert!(matches!(missing, Err(RunError::NotFound)));
        Ok(())
    }

    #[tokio::test]
    async fn a_dropped_call_kills_the_whole_group() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
        let call = run(sh(&script, None));
        let timed_out = tokio::time::timeout(std::time::Duration::from_millis(500), call).await;
        assert!(timed_out.is_err());
        let pid: i32 = std::fs::read_to_string(&pidfile)?.trim().parse()?;
        // The grandchild (sleep) is gone too, within a moment.
        let gone = (0..50).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z")
        });
        assert!(gone, "the helper the command forked still runs");
        Ok(())
    }
}
