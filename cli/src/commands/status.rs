//! `agent-vault status`: the daemon, its vaults, devices, users, pending
//! requests and windows.

use agent_vault_proto::pb;
use serde_json::json;

use super::Admin;
use super::grants::{grant_json, grant_line};
use crate::output::{Out, ago, left, now_ms, user_list};

pub async fn run(admin: &mut Admin, out: Out) -> anyhow::Result<()> {
    let s = admin.status(pb::StatusRequest {}).await?.into_inner();
    let value = json!({
        "version": s.version, "protocol": s.protocol, "pid": s.pid, "uptimeMs": s.uptime_ms,
        "approvalUrl": s.approval_base_url, "localUrl": s.local_url, "tunnel": s.tunnel, "passkeys": s.passkeys, "stateDir": s.state_dir, "socket": s.socket_path,
        "vaults": s.vaults.iter().map(|v| json!({"name": v.name, "config": v.config_path, "type": v.kind,
            "ttl": v.ttl_minutes, "ttlScope": v.ttl_scope, "writable": v.writable,
            "require": v.require, "approvers": v.approvers, "location": v.location,
            "health": {
                "lastOkMs": (v.last_ok_ms > 0).then_some(v.last_ok_ms),
                "lastErrorMs": (v.last_error_ms > 0).then_some(v.last_error_ms),
                "lastError": (!v.last_error.is_empty()).then_some(&v.last_error),
                "cachedEntries": (v.cached_entries >= 0).then_some(v.cached_entries),
            }})).collect::<Vec<_>>(),
        "devices": s.devices.iter().map(|d| json!({"id": d.id, "label": d.label, "pairedAtMs": d.paired_at_ms, "lastSeenMs": d.last_seen_ms})).collect::<Vec<_>>(),
        "pending": s.pending_count,
        "agentUids": s.agent_uids, "adminUids": s.admin_uids,
        "grants": s.grants.iter().map(grant_json).collect::<Vec<_>>(),
    });
    out.emit(value, || human(&s));
    Ok(())
}

/// How a vault's backend has been answering, in one line.
fn health(v: &pb::VaultSummary) -> String {
    let mut parts = vec![v.location.clone()];
    parts.push(match v.last_ok_ms {
        0 => "not used yet".to_string(),
        ms => format!("answered {} ago", ago(ms)),
    });
    if v.last_error_ms > 0 {
        parts.push(format!(
            "last error {} ago: {}",
            ago(v.last_error_ms),
            v.last_error
        ));
    }
    if v.cached_entries >= 0 {
        parts.push(format!("{} names cached", v.cached_entries));
    }
    parts.join("; ")
}

fn human(s: &pb::StatusReply) {
    println!(
        "agent-vaultd {} (protocol {}), pid {}, up {}",
        s.version,
        s.protocol,
        s.pid,
        left(now_ms() + s.uptime_ms as i64)
    );
    println!("approvals: {}", s.approval_base_url);
    if s.tunnel == "publicUrl" {
        println!("tunnel:    publicUrl, forwarding to {}", s.local_url);
    } else {
        println!("tunnel:    {}", s.tunnel);
    }
    println!("passkeys:  {}", s.passkeys);
    println!("socket:    {}", s.socket_path);
    println!("state:     {}", s.state_dir);
    println!("vaults:");
    for v in &s.vaults {
        let approval = match (v.require.as_str(), v.approvers) {
            ("device", 1) => String::new(),
            (f, 1) => format!(", approve with {f}"),
            (f, n) => format!(", approve with {f} on {n} devices"),
        };
        println!(
            "  {} ({}, ttl {} min, scope {}{}{}) from {}",
            v.name,
            v.kind,
            v.ttl_minutes,
            v.ttl_scope,
            if v.writable { ", writable" } else { "" },
            approval,
            v.config_path
        );
        println!("    {}", health(v));
    }
    println!("paired devices: {}", s.devices.len());
    for d in &s.devices {
        println!("  {} ({})", d.label, d.id);
    }
    if s.devices.is_empty() {
        println!(
            "  none: open the link agent-vaultd shows on its terminal, or run `agent-vault pair`"
        );
    }
    println!("agents:    {}", user_list(&s.agent_uids));
    println!("admins:    {}", user_list(&s.admin_uids));
    if s.agent_uids.iter().any(|u| s.admin_uids.contains(u)) {
        println!(
            "           Agents and admins are the same user: an agent running as that user can \
             also pair devices and revoke windows, and can read what the daemon's files hold. \
             Approvals still need a paired device. To separate them, run the daemon as its \
             own user (SECURITY.md)."
        );
    }
    println!("pending requests: {}", s.pending_count);
    println!("active windows: {}", s.grants.len());
    for g in &s.grants {
        println!("{}", grant_line(g));
    }
}
