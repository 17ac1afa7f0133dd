//! The kinds of call the tools make: list the vaults, and ask for access
//! ([`ask`]: wait for the decision, sending progress with the approval
//! link, up to `approval.waitSeconds`), then answer with the values or
//! the write's outcome ([`access`]) or run a command with them (`run`).

use std::time::{Duration, Instant};

use agent_vault_proto::pb;
use rmcp::RoleServer;
use rmcp::model::{CallToolResult, ContentBlock, ProgressNotificationParam, ProgressToken};
use rmcp::service::RequestContext;
use tonic::Code;

use crate::link::DaemonLink;
use crate::results::{Failure, status_result, text_error};

/// How often a waiting call polls the daemon (and sends progress).
const TICK: Duration = Duration::from_secs(5);

/// Progress notifications for one call (when its client asked for them),
/// their count increasing across the call's phases as MCP requires.
pub struct Progress {
    token: Option<ProgressToken>,
    step: f64,
}

impl Progress {
    pub fn of(ctx: &RequestContext<RoleServer>) -> Self {
        Self {
            token: ctx.meta.get_progress_token(),
            step: 0.0,
        }
    }

    pub async fn send(&mut self, ctx: &RequestContext<RoleServer>, message: String) {
        if let Some(token) = &self.token {
            self.step += 1.0;
            let _ = ctx
                .peer
                .notify_progress(
                    ProgressNotificationParam::new(token.clone(), self.step).with_message(message),
                )
                .await;
        }
    }
}

pub async fn list(
    link: &DaemonLink,
    ctx: RequestContext<RoleServer>,
) -> Result<CallToolResult, Failure> {
    let reply = link
        .with_session(&ctx, |mut agent, session_id| async move {
            agent
                .list_secrets(pb::ListSecretsRequest { session_id })
                .await
                .map(tonic::Response::into_inner)
        })
        .await?;
    let mut out = String::new();
    for v in reply.vaults {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("[{}]", v.vault));
        if v.writable {
            out.push_str(" (writable)");
        }
        out.push('\n');
        if !v.error.is_empty() {
            out.push_str(&format!("  unavailable: {}\n", v.error));
        } else if v.secrets.is_empty() && v.notice.is_empty() {
            out.push_str("  (no secrets)\n");
        }
        if !v.notice.is_empty() {
            out.push_str(&format!("  note for the user: {}\n", v.notice));
        }
        for s in v.secrets {
            let notes: Vec<&str> = [s.group.as_str(), s.policy.as_str()]
                .into_iter()
                .filter(|n| !n.is_empty())
                .collect();
            if notes.is_empty() {
                out.push_str(&format!("  - {}\n", s.name));
            } else {
                out.push_str(&format!("  - {} ({})\n", s.name, notes.join("; ")));
            }
        }
    }
    if out.is_empty() {
        out = "No vaults are configured. Ask the user to add one to agent-vault.config.json.\n"
            .into();
    }
    if let Some(config) = link.config().await {
        out.push_str(&format!("\nConfig: {config}\n"));
    }
    Ok(CallToolResult::success(vec![ContentBlock::text(out)]))
}

/// Asks for access and answers with the values, or the write's outcome.
pub async fn access(
    link: &DaemonLink,
    ctx: RequestContext<RoleServer>,
    req: pb::AccessRequest,
) -> Result<CallToolResult, Failure> {
    let vault = req.vault.clone();
    let mut reply = ask(link, &ctx, req, &mut Progress::of(&ctx)).await?;
    Ok(match pb::Outcome::try_from(reply.outcome) {
        Ok(pb::Outcome::Granted) if !reply.written.is_empty() => {
            CallToolResult::success(vec![ContentBlock::text(format!(
                "Saved {} to vault \"{}\".",
                reply.written.join(", "),
                vault
            ))])
        }
        Ok(pb::Outcome::Granted) if reply.values.len() == 1 => {
            let v = reply.values.remove(0);
            CallToolResult::success(vec![ContentBlock::text(v.value)])
        }
        Ok(pb::Outcome::Granted) => CallToolResult::success(
            reply
                .values
                .into_iter()
                .map(|v| ContentBlock::text(format!("[{}]\n{}", v.name, v.value)))
                .collect(),
        ),
        _ => text_error(reply.message),
    })
}

/// Asks, then waits with progress, up to the configured wait. Returns the
/// daemon's final reply (granted or not); "still waiting" and errors come
/// back as a [`Failure`] that is already the tool's answer.
pub async fn ask(
    link: &DaemonLink,
    ctx: &RequestContext<RoleServer>,
    req: pb::AccessRequest,
    progress: &mut Progress,
) -> Result<pb::AccessReply, Failure> {
    let ctx = ctx.clone();
    let started = Instant::now();
    let req = std::sync::Arc::new(req);
    let (mut reply, session_id) = link
        .with_session(&ctx, |mut agent, session_id| {
            let mut r = (*req).clone();
            r.session_id = session_id.clone();
            async move { agent.access(r).await.map(|r| (r.into_inner(), session_id)) }
        })
        .await?;
    let wait = Duration::from_secs(u64::from(reply.wait_seconds.max(1)));
    while reply.outcome == pb::Outcome::Pending as i32 {
        progress
            .send(
                &ctx,
                format!("Waiting for approval: {}", reply.approval_url),
            )
            .await;
        let left = wait.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(Failure::Tool(CallToolResult::success(vec![
                ContentBlock::text(format!(
                    "Still waiting for approval at {}; call again with the same arguments to keep waiting.",
                    reply.approval_url
                )),
            ])));
        }
        let (mut agent, _) = link.get(&ctx).await?;
        reply = agent
            .r#await(pb::AwaitRequest {
                session_id: session_id.clone(),
                request_id: reply.request_id.clone(),
                timeout_ms: left.min(TICK).as_millis() as u32,
            })
            .await
            .map_err(|s| {
                let mut r = status_result(&s);
                if s.code() == Code::Unavailable {
                    r = text_error(format!(
                        "{} The approval link was {}.",
                        s.message(),
                        reply.approval_url
                    ));
                }
                Failure::Tool(r)
            })?
            .into_inner();
    }
    Ok(reply)
}
