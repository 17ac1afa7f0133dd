//! `run_with_secrets`: the approved values go into one command's
//! environment, never to the agent. The daemon approves the exact command
//! line and directory (windows for a run cover only that command); the
//! shim runs it as the agent's user and returns its exit code and its
//! output with every value, and every common encoding of one, replaced by
//! `[REDACTED:NAME]`.

mod capture;
mod child;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_vault_proto::pb;
use agent_vault_redact::Redactor;
use rmcp::RoleServer;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use zeroize::Zeroize;

use crate::calls::{self, Progress};
use crate::link::DaemonLink;
use crate::results::{Failure, text_error};

pub const DEFAULT_TIMEOUT_SECONDS: f64 = 300.0;
pub const MAX_TIMEOUT_SECONDS: f64 = 3600.0;
/// How often a running command reports progress.
const TICK: Duration = Duration::from_secs(5);

/// A secret for the command, and the variable it is put in.
pub struct Wanted {
    pub name: String,
    pub env: String,
}

pub struct RunArgs {
    pub vault: String,
    pub secrets: Vec<Wanted>,
    pub command: Vec<String>,
    pub cwd: Option<String>,
    pub timeout_seconds: Option<f64>,
    pub reason: String,
}

/// Whether `s` can name an environment variable.
pub fn env_name_ok(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The directory to run in: the given one (relative to the shim's), or
/// the shim's own, with links resolved.
fn directory(cwd: Option<&str>) -> Result<PathBuf, String> {
    let here = std::env::current_dir()
        .map_err(|e| format!("agent-vault-mcp cannot tell its own directory: {e}"))?;
    let dir = match cwd {
        Some(c) if !c.is_empty() => here.join(c),
        _ => here,
    };
    let dir = std::fs::canonicalize(&dir)
        .map_err(|e| format!("the directory {} cannot be used: {e}", dir.display()))?;
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    Ok(dir)
}

fn checked(a: &RunArgs) -> Result<(PathBuf, Duration), String> {
    if a.secrets.is_empty() {
        return Err("name at least one secret to run the command with".into());
    }
    for (i, w) in a.secrets.iter().enumerate() {
        if !env_name_ok(&w.env) {
            return Err(format!(
                "\"{}\" is not a valid environment variable name; map the secret to one, such as {{\"name\": \"{}\", \"env\": \"MY_SECRET\"}}",
                w.env, w.name
            ));
        }
        if a.secrets[..i].iter().any(|o| o.env == w.env) {
            return Err(format!("the environment variable {} is given twice", w.env));
        }
    }
    let timeout = a.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= MAX_TIMEOUT_SECONDS) {
        return Err(format!(
            "timeoutSeconds must be more than 0 and at most {MAX_TIMEOUT_SECONDS}"
        ));
    }
    Ok((
        directory(a.cwd.as_deref())?,
        Duration::from_secs_f64(timeout),
    ))
}

/// How the command ended.
enum Ending {
    Exited(std::process::ExitStatus),
    TimedOut(Duration),
    Cancelled,
}

pub async fn run(
    link: &DaemonLink,
    ctx: RequestContext<RoleServer>,
    a: RunArgs,
) -> Result<CallToolResult, Failure> {
    let (cwd, timeout) = checked(&a).map_err(|e| Failure::Tool(text_error(e)))?;
    let req = pb::AccessRequest {
        vault: a.vault.clone(),
        operation: pb::Operation::Run as i32,
        names: a.secrets.iter().map(|w| w.name.clone()).collect(),
        reason: a.reason.clone(),
        run: Some(pb::RunCommand {
            argv: a.command.clone(),
            cwd: cwd.display().to_string(),
        }),
        ..Default::default()
    };
    let mut progress = Progress::of(&ctx);
    let mut reply = calls::ask(link, &ctx, req, &mut progress).await?;
    if reply.outcome != pb::Outcome::Granted as i32 {
        return Ok(text_error(std::mem::take(&mut reply.message)));
    }
    let env: Vec<(String, String)> = a
        .secrets
        .iter()
        .filter_map(|w| {
            let v = reply.values.iter().find(|v| v.name == w.name)?;
            Some((w.env.clone(), v.value.clone()))
        })
        .collect();
    let redactor = Redactor::new(
        reply
            .values
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_bytes())),
    );
    let limit = reply.max_output_bytes.max(1024) as usize;
    let started = Instant::now();
    let spawned = redactor.map_err(|e| e.to_string()).and_then(|r| {
        child::Running::start(&a.command, &cwd, &env, Arc::new(r), limit)
            .map_err(|e| format!("the command could not be started: {e}"))
    });
    // The child has its environment (or never will): the shim's copies go.
    for v in &mut reply.values {
        v.value.zeroize();
    }
    for (_, v) in &mut { env } {
        v.zeroize();
    }
    let mut running = spawned.map_err(|e| Failure::Tool(text_error(e)))?;

    let ending = loop {
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            running.stop().await;
            break Ending::TimedOut(timeout);
        }
        tokio::select! {
            exited = running.exited_within(left.min(TICK)) => match exited {
                Ok(Some(status)) => break Ending::Exited(status),
                Ok(None) => {
                    progress
                        .send(&ctx, format!("Running {} ({} s)", a.command[0], started.elapsed().as_secs()))
                        .await;
                }
                Err(e) => {
                    running.stop().await;
                    return Ok(text_error(format!("the command could not be watched: {e}")));
                }
            },
            _ = ctx.ct.cancelled() => {
                running.stop().await;
                break Ending::Cancelled;
            }
        }
    };
    let output = running.output().await;
    Ok(answer(ending, output, started.elapsed()))
}

fn answer(ending: Ending, output: child::Output, took: Duration) -> CallToolResult {
    use std::os::unix::process::ExitStatusExt;
    let (head, failed) = match ending {
        Ending::Exited(s) => match (s.code(), s.signal()) {
            (Some(code), _) => (format!("exit code: {code}"), code != 0),
            (None, Some(sig)) => (format!("killed by signal {sig}"), true),
            (None, None) => ("ended".to_string(), true),
        },
        Ending::TimedOut(t) => (
            format!(
                "timed out after {} s: the command and everything it started were stopped",
                t.as_secs_f64()
            ),
            true,
        ),
        Ending::Cancelled => (
            "cancelled: the command and everything it started were stopped".to_string(),
            true,
        ),
    };
    let mut text = format!("{head} ({:.1} s)\n", took.as_secs_f64());
    for (name, capture) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        if capture.is_empty() {
            text.push_str(&format!("--- {name}: empty ---\n"));
        } else {
            text.push_str(&format!("--- {name} ---\n{}", capture.text()));
            if !text.ends_with('\n') {
                text.push('\n');
            }
        }
    }
    if output.cut_off {
        text.push_str("(a process that left the command's group kept its output open; what came after the command ended was cut off)\n");
    }
    let content = vec![ContentBlock::text(text)];
    if failed {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    }
}
