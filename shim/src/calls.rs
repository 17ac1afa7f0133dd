//! The two kinds of call the tools make: list the vaults, and ask for
//! access (then wait for the decision, sending progress with the approval
//! link, up to `approval.waitSeconds`).

use std::time::{Duration, Instant};

use agent_vault_proto::pb;
use rmcp::RoleServer;
use rmcp::model::{CallToolResult, ContentBlock, ProgressNotificationParam};
use rmcp::service::RequestContext;
use tonic::Code;

use crate::link::DaemonLink;
use crate::results::{Failure, status_result, text_error};

/// How often a waiting call polls the daemon (and sends progress).
const TICK: Duration = Duration::from_secs(5);

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
        } else if v.secrets.is_empty() {
            out.push_str("  (no secrets)\n");
        }
        for s in v.secrets {
            if s.group.is_empty() {
                out.push_str(&format!("  - {}\n", s.name));
            } else {
                out.push_str(&format!("  - {} ({})\n", s.name, s.group));
            }
        }
    }
    if out.is_empty() {
        out =
            "No vaults are configured. Ask the user to add one to agent-vault.config.json.".into();
    }
    Ok(CallToolResult::success(vec![ContentBlock::text(out)]))
}

/// Asks, then waits with progress, up to the configured wait.
pub async fn access(
    link: &DaemonLink,
    ctx: RequestContext<RoleServer>,
    req: pb::AccessRequest,
) -> Result<CallToolResult, Failure> {
    let started = Instant::now();
    let req = std::sync::Arc::new(req);
    let (mut reply, session_id) = link
        .with_session(&ctx, |mut agent, session_id| {
            let mut r = (*req).clone();
            r.session_id = session_id.clone();
            async move { agent.access(r).await.map(|r| (r.into_inner(), session_id)) }
        })
        .await?;
    let token = ctx.meta.get_progress_token();
    let wait = Duration::from_secs(u64::from(reply.wait_seconds.max(1)));
    let mut step = 0.0;
    while reply.outcome == pb::Outcome::Pending as i32 {
        if let Some(token) = &token {
            step += 1.0;
            let _ = ctx
                .peer
                .notify_progress(
                    ProgressNotificationParam::new(token.clone(), step)
                        .with_message(format!("Waiting for approval: {}", reply.approval_url)),
                )
                .await;
        }
        let left = wait.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Ok(CallToolResult::success(vec![ContentBlock::text(format!(
                "Still waiting for approval at {}; call again with the same arguments to keep waiting.",
                reply.approval_url
            ))]));
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
    Ok(match pb::Outcome::try_from(reply.outcome) {
        Ok(pb::Outcome::Granted) if !reply.written.is_empty() => {
            CallToolResult::success(vec![ContentBlock::text(format!(
                "Saved {} to vault \"{}\".",
                reply.written.join(", "),
                req.vault
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
