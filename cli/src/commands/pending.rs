//! `agent-vault pending`: requests waiting for approval.

use agent_vault_proto::pb;
use serde_json::json;

use super::Admin;
use crate::output::{Out, left, op};

fn pending_json(p: &pb::PendingInfo) -> serde_json::Value {
    let r = p.requester.clone().unwrap_or_default();
    json!({"id": p.id, "vault": p.vault, "config": p.config_path, "operation": op(p.operation),
           "names": p.names, "reason": p.reason, "previews": p.previews, "url": p.approval_url,
           "location": p.location,
           "command": (!p.command.is_empty()).then_some(&p.command),
           "cwd": (!p.cwd.is_empty()).then_some(&p.cwd),
           "expiresAtMs": p.expires_at_ms,
           "requester": {"uid": r.uid, "user": r.user, "pid": r.pid, "exe": r.exe, "cmdline": r.cmdline, "cwd": r.cwd,
                         "agent": r.agent, "mcpClient": r.mcp_client, "session": r.session_id}})
}

pub async fn run(admin: &mut Admin, out: Out) -> anyhow::Result<()> {
    let p = admin
        .pending(pb::PendingRequest {})
        .await?
        .into_inner()
        .pending;
    out.emit(
        json!(p.iter().map(pending_json).collect::<Vec<_>>()),
        || {
            if p.is_empty() {
                println!("No requests are waiting.");
            }
            for r in &p {
                let who = r.requester.clone().unwrap_or_default();
                println!(
                    "{} {} {}: {}",
                    r.id,
                    op(r.operation),
                    r.vault,
                    r.names.join(", ")
                );
                if !r.command.is_empty() {
                    println!("  runs: {} (in {})", r.command, r.cwd);
                }
                println!("  reason (the agent's words): {}", r.reason);
                println!(
                    "  requester: {} via {} (pid {}, uid {})",
                    if who.mcp_client.is_empty() {
                        "?"
                    } else {
                        &who.mcp_client
                    },
                    who.exe,
                    who.pid,
                    who.uid
                );
                println!(
                    "  approve at {} (expires in {})",
                    r.approval_url,
                    left(r.expires_at_ms)
                );
            }
        },
    );
    Ok(())
}
