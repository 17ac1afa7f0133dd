//! `agent-vault approve`: decide one request by id, or each pending
//! request in turn, from this terminal (where the daemon allows it).

use std::io::{BufRead, Write};

use agent_vault_proto::pb;
use serde_json::json;

use super::Admin;
use crate::output::{Out, op};

pub async fn one(
    admin: &mut Admin,
    out: Out,
    id: String,
    deny: bool,
    window: Option<f64>,
) -> anyhow::Result<()> {
    let r = admin
        .decide(pb::DecideRequest {
            request_id: id.clone(),
            approve: !deny,
            window_minutes: window,
        })
        .await?
        .into_inner();
    out.emit(json!({"id": id, "outcome": r.outcome}), || {
        println!("{id}: {}", r.outcome);
    });
    Ok(())
}

/// Shows each pending request and asks: yes approves, no denies, anything
/// else skips it.
pub async fn each(admin: &mut Admin, window: Option<f64>) -> anyhow::Result<()> {
    let pending = admin
        .pending(pb::PendingRequest {})
        .await?
        .into_inner()
        .pending;
    if pending.is_empty() {
        println!("No requests are waiting.");
    }
    let mut lines = std::io::stdin().lock().lines();
    for r in &pending {
        let who = r.requester.clone().unwrap_or_default();
        println!(
            "\n{} {} {}: {}",
            r.id,
            op(r.operation),
            r.vault,
            r.names.join(", ")
        );
        for (name, preview) in r.names.iter().zip(&r.previews) {
            println!("  new value for {name}: {preview}");
        }
        if !r.location.is_empty() {
            println!("  file: {}", r.location);
        }
        if !r.command.is_empty() {
            println!("  runs: {} (in {})", r.command, r.cwd);
        }
        println!("  reason (the agent's words): {}", r.reason);
        println!(
            "  requester: {} in {} (pid {}, user {}), in {}",
            who.mcp_client, who.agent, who.pid, who.user, who.cwd
        );
        print!("Approve? [y]es, [n]o (deny), anything else skips: ");
        let _ = std::io::stdout().flush();
        let Some(Ok(answer)) = lines.next() else {
            break;
        };
        let approve = match answer.trim() {
            "y" | "yes" => true,
            "n" | "no" => false,
            _ => continue,
        };
        match admin
            .decide(pb::DecideRequest {
                request_id: r.id.clone(),
                approve,
                window_minutes: window,
            })
            .await
        {
            Ok(reply) => println!("  {}", reply.into_inner().outcome),
            Err(e) => println!("  refused: {}", e.message()),
        }
    }
    Ok(())
}
