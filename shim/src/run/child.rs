//! The command's process: started in a process group of its own, with the
//! secrets added to the shim's environment, its output read through the
//! redactor into captures, and the whole group stopped when the command
//! ends (what it left running holds the secrets too), times out, or the
//! call is cancelled or dropped.

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_vault_redact::Redactor;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use super::capture::Capture;

/// How long the group gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(2);
/// How long output may still arrive after the group is gone (a process
/// that left the group may hold the pipes open).
const DRAIN: Duration = Duration::from_secs(2);

/// Kills the process group when dropped: a call that is dropped (the
/// client went away) leaves nothing running.
struct Group(Pid);

impl Group {
    fn signal(&self, signal: Signal) {
        // ESRCH: the group is already gone.
        let _ = killpg(self.0, signal);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}

type Shared = Arc<Mutex<Capture>>;

pub struct Running {
    child: Child,
    group: Group,
    status: Option<ExitStatus>,
    readers: Vec<(JoinHandle<()>, Shared)>,
}

/// What the command wrote, redacted and capped.
pub struct Output {
    pub stdout: Capture,
    pub stderr: Capture,
    /// Some pipe stayed open after the command's group was gone.
    pub cut_off: bool,
}

impl Running {
    /// Starts `argv` in `cwd` with `env` added to the shim's environment.
    pub fn start(
        argv: &[String],
        cwd: &std::path::Path,
        env: &[(String, String)],
        redactor: Arc<Redactor>,
        limit: usize,
    ) -> std::io::Result<Self> {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .current_dir(cwd)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        drop(cmd);
        // Never 0 (which would be the shim's own group): the child is not
        // reaped yet.
        let pid = child
            .id()
            .filter(|p| *p > 0)
            .ok_or_else(|| std::io::Error::other("the command's process id is unknown"))?;
        let group = Group(Pid::from_raw(pid as i32));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(read_into(out, redactor.clone(), limit));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(read_into(err, redactor, limit));
        }
        Ok(Self {
            child,
            group,
            status: None,
            readers,
        })
    }

    /// Waits up to `d` for the command to exit.
    pub async fn exited_within(&mut self, d: Duration) -> std::io::Result<Option<ExitStatus>> {
        if self.status.is_none()
            && let Ok(status) = tokio::time::timeout(d, self.child.wait()).await
        {
            self.status = Some(status?);
        }
        Ok(self.status)
    }

    /// Stops the whole group: SIGTERM, then SIGKILL after a grace period.
    pub async fn stop(&mut self) {
        self.group.signal(Signal::SIGTERM);
        if !matches!(self.exited_within(GRACE).await, Ok(Some(_))) {
            self.group.signal(Signal::SIGKILL);
            let _ = self.exited_within(GRACE).await;
        }
    }

    /// Ends what the command left running and collects its output.
    pub async fn output(mut self) -> Output {
        self.group.signal(Signal::SIGKILL);
        let mut cut_off = false;
        let mut captures = Vec::new();
        for (mut task, capture) in std::mem::take(&mut self.readers) {
            if tokio::time::timeout(DRAIN, &mut task).await.is_err() {
                task.abort();
                cut_off = true;
            }
            let taken = std::mem::replace(
                &mut *capture.lock().unwrap_or_else(|e| e.into_inner()),
                Capture::new(0),
            );
            captures.push(taken);
        }
        let mut captures = captures.into_iter();
        Output {
            stdout: captures.next().unwrap_or_else(|| Capture::new(0)),
            stderr: captures.next().unwrap_or_else(|| Capture::new(0)),
            cut_off,
        }
    }
}

/// Reads `pipe` to its end through a redaction stream into a capture.
fn read_into(
    mut pipe: impl AsyncRead + Unpin + Send + 'static,
    redactor: Arc<Redactor>,
    limit: usize,
) -> (JoinHandle<()>, Shared) {
    let capture: Shared = Arc::new(Mutex::new(Capture::new(limit)));
    let shared = capture.clone();
    let task = tokio::spawn(async move {
        let mut stream = redactor.stream();
        let mut buf = vec![0u8; 64 * 1024];
        let mut out = Vec::with_capacity(buf.len());
        loop {
            out.clear();
            match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => stream.push(&buf[..n], &mut out),
            }
            shared.lock().unwrap_or_else(|e| e.into_inner()).push(&out);
        }
        out.clear();
        stream.finish(&mut out);
        shared.lock().unwrap_or_else(|e| e.into_inner()).push(&out);
        zeroize::Zeroize::zeroize(&mut buf);
    });
    (task, capture)
}
