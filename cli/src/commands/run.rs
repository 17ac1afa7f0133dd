//! `agent-vault run`: runs a command with secrets in its environment, as
//! `op run` does, after the same approval an agent's `run_with_secrets`
//! needs (the exact command line and directory are shown). Its output is
//! masked by default (every value and its common encodings replaced by
//! `[REDACTED:NAME]`); stdin is passed through, signals are forwarded, and
//! the command's exit code is this one's.

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use agent_vault_proto::pb::{self, agent_client::AgentClient};
use agent_vault_redact::Redactor;
use anyhow::{Context, bail};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};
use tonic::transport::Channel;
use zeroize::Zeroizing;

use crate::asking::Asking;
use crate::env_template::{self, Entry, env_name_ok};

pub struct Options {
    pub vault: Option<String>,
    /// `NAME` or `NAME=ENVVAR`.
    pub secrets: Vec<String>,
    pub env_file: Option<PathBuf>,
    pub reason: Option<String>,
    pub no_masking: bool,
    pub command: Vec<String>,
}

/// What the command gets: secrets by vault, and plain values.
fn entries(o: &Options) -> anyhow::Result<Vec<Entry>> {
    let mut out = Vec::new();
    if let Some(file) = &o.env_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the env file {}", file.display()))?;
        out = env_template::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    }
    if !o.secrets.is_empty() {
        let Some(vault) = &o.vault else {
            bail!(
                "--secret needs --vault VAULT (or use vault://VAULT/NAME references in --env-file)"
            );
        };
        for s in &o.secrets {
            let (name, env) = match s.rsplit_once('=') {
                Some((name, env)) if !name.is_empty() && env_name_ok(env) => (name, env),
                _ => (s.as_str(), s.as_str()),
            };
            if !env_name_ok(env) {
                bail!(
                    "\"{name}\" is not a valid environment variable name; give one: --secret '{name}=MY_VAR'"
                );
            }
            if out.iter().any(|e: &Entry| e.env() == env) {
                bail!("the environment variable {env} is given twice");
            }
            out.push(Entry::Secret {
                env: env.into(),
                vault: vault.clone(),
                name: name.into(),
            });
        }
    }
    if !out.iter().any(|e| matches!(e, Entry::Secret { .. })) {
        bail!(
            "name at least one secret: --vault V --secret NAME, or an --env-file with vault://VAULT/NAME values"
        );
    }
    Ok(out)
}

pub async fn run(agent: AgentClient<Channel>, o: Options) -> anyhow::Result<ExitCode> {
    if o.command.is_empty() {
        bail!(
            "give the command after --, such as: agent-vault run --vault dev --secret API_KEY -- npm test"
        );
    }
    let entries = entries(&o)?;
    let cwd = std::env::current_dir()
        .and_then(std::fs::canonicalize)
        .context("cannot tell the current directory")?;
    let mut asking = Asking::open(agent, &cwd).await?;

    // One approval per vault, each for every name it holds here.
    let mut vaults: Vec<&str> = Vec::new();
    for e in &entries {
        if let Entry::Secret { vault, .. } = e
            && !vaults.contains(&vault.as_str())
        {
            vaults.push(vault);
        }
    }
    let mut env: Vec<(String, Zeroizing<String>)> = Vec::new();
    let mut named: Vec<(String, Zeroizing<String>)> = Vec::new();
    for vault in vaults {
        let wanted: Vec<(&str, &str)> = entries
            .iter()
            .filter_map(|e| match e {
                Entry::Secret {
                    env,
                    vault: v,
                    name,
                } if v == vault => Some((env.as_str(), name.as_str())),
                _ => None,
            })
            .collect();
        let mut names: Vec<String> = Vec::new();
        for (_, n) in &wanted {
            if !names.iter().any(|m| m == n) {
                names.push(n.to_string());
            }
        }
        let mut reply = asking
            .ask(pb::AccessRequest {
                vault: vault.to_string(),
                operation: pb::Operation::Run as i32,
                names,
                reason: o.reason.clone().unwrap_or_default(),
                run: Some(pb::RunCommand {
                    argv: o.command.clone(),
                    cwd: cwd.display().to_string(),
                }),
                ..Default::default()
            })
            .await?;
        for (e, n) in wanted {
            if let Some(v) = reply.values.iter().find(|v| v.name == n) {
                env.push((e.to_string(), Zeroizing::new(v.value.clone())));
            }
        }
        for v in reply.values.drain(..) {
            named.push((v.name.clone(), Zeroizing::new(v.value)));
        }
    }

    let redactor = if o.no_masking {
        None
    } else {
        Some(Arc::new(Redactor::new(
            named.iter().map(|(n, v)| (n.as_str(), v.as_bytes())),
        )?))
    };
    let mut cmd = tokio::process::Command::new(&o.command[0]);
    cmd.args(&o.command[1..]).stdin(Stdio::inherit());
    for e in &entries {
        if let Entry::Plain { env, value } = e {
            cmd.env(env, value);
        }
    }
    for (k, v) in &env {
        cmd.env(k, v.as_str());
    }
    if redactor.is_some() {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    let spawned = cmd.spawn();
    drop(cmd);
    drop(env);
    drop(named);
    let mut child = spawned.with_context(|| format!("cannot start {}", o.command[0]))?;
    let mut pumps = Vec::new();
    if let Some(r) = &redactor {
        if let Some(out) = child.stdout.take() {
            pumps.push(tokio::spawn(pump(out, tokio::io::stdout(), r.clone())));
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(tokio::spawn(pump(err, tokio::io::stderr(), r.clone())));
        }
    }

    let status = forward_signals_until_exit(&mut child).await?;
    // What the command wrote before it ended; a process it left running
    // may keep the pipes open, so this waits at most two seconds.
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        futures_util::future::join_all(pumps),
    )
    .await;
    use std::os::unix::process::ExitStatusExt;
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 1,
    };
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// Copies `from` to `to`, redacted, flushing after every read.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    redactor: Arc<Redactor>,
) {
    let mut stream = redactor.stream();
    let mut buf = Zeroizing::new(vec![0u8; 64 * 1024]);
    let mut out = Vec::new();
    loop {
        out.clear();
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => stream.push(&buf[..n], &mut out),
        }
        if to.write_all(&out).await.is_err() || to.flush().await.is_err() {
            return;
        }
    }
    out.clear();
    stream.finish(&mut out);
    let _ = to.write_all(&out).await;
    let _ = to.flush().await;
}

/// Waits for the child, passing on the signals a process manager or a
/// script sends this process. The child shares this process's group, so a
/// terminal's Ctrl-C (SIGINT) and Ctrl-\\ (SIGQUIT) already reach it: those
/// two are passed on only when stdin is not a terminal, so that the
/// command does not get each twice.
async fn forward_signals_until_exit(
    child: &mut tokio::process::Child,
) -> anyhow::Result<std::process::ExitStatus> {
    use nix::sys::signal::{Signal, kill};
    let pid = child.id().map(|p| nix::unistd::Pid::from_raw(p as i32));
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut quit = signal(SignalKind::quit())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
    loop {
        let sig = tokio::select! {
            status = child.wait() => return Ok(status?),
            _ = int.recv() => Signal::SIGINT,
            _ = term.recv() => Signal::SIGTERM,
            _ = hup.recv() => Signal::SIGHUP,
            _ = quit.recv() => Signal::SIGQUIT,
            _ = usr1.recv() => Signal::SIGUSR1,
            _ = usr2.recv() => Signal::SIGUSR2,
        };
        let from_terminal = matches!(sig, Signal::SIGINT | Signal::SIGQUIT) && interactive;
        if let Some(pid) = pid
            && !from_terminal
        {
            let _ = kill(pid, sig);
        }
    }
}
