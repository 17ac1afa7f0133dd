//! agent-vault: the admin command line for agent-vaultd.

mod anchors;

use std::time::{SystemTime, UNIX_EPOCH};

use agent_vault_proto::client::{self, Connection};
use agent_vault_proto::pb;
use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Agent Vault: approve, inspect and revoke AI agents' access to secrets"
)]
struct Cli {
    /// Print JSON for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Version, uptime, approval URL, vaults, devices, pending requests and windows.
    Status,
    /// Requests waiting for approval.
    Pending,
    /// Active approval windows.
    Grants,
    /// End approval windows now: --all, VAULT, or VAULT/NAME.
    Revoke {
        #[arg(long, conflicts_with = "target")]
        all: bool,
        target: Option<String>,
    },
    /// The audit log (newest first), or `audit verify` to check its hash chain.
    Audit {
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(subcommand)]
        action: Option<AuditAction>,
    },
    /// Print a one-time link (and QR code) that pairs a browser as an approver.
    Pair {
        /// Enroll an authenticator app instead (for vaults with
        /// "approval": {"require": "totp"}): prints its QR code once.
        #[arg(long)]
        totp: bool,
    },
    /// Approve or deny pending requests from this terminal: one by ID, or
    /// interactively, one after another. Allowed only when this user is not
    /// also an agent user, or on vaults that set approval.allowTerminal.
    Approve {
        /// A request id (from `agent-vault pending`); without one, asks
        /// about each pending request in turn.
        id: Option<String>,
        /// Deny instead of approve.
        #[arg(long)]
        deny: bool,
        /// A shorter approval window, in minutes (0: just this once).
        #[arg(long)]
        window: Option<f64>,
    },
    /// Paired approver devices, or `devices revoke ID` to unpair one.
    Devices {
        #[command(subcommand)]
        action: Option<DevicesAction>,
    },
}

#[derive(Subcommand, Debug)]
enum DevicesAction {
    /// Unpair a device: its credential stops working at once.
    Revoke { id: String },
}

fn user_list(uids: &[u32]) -> String {
    uids.iter()
        .map(
            |u| match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(*u)) {
                Ok(Some(user)) => format!("{} (uid {u})", user.name),
                _ => format!("uid {u}"),
            },
        )
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Subcommand, Debug)]
enum AuditAction {
    /// Check that no row was deleted or changed, and, with --anchor, that
    /// the log was not rewritten, cut short, rolled back or replaced since
    /// its head was anchored there.
    Verify {
        /// An anchor log: the file agent-vaultd appends to
        /// (audit.anchor.file), or a URL serving its lines (an ntfy topic's
        /// https://ntfy.sh/<topic>/json?poll=1&since=all, or logged webhook
        /// bodies). May be given more than once.
        #[arg(long = "anchor", value_name = "FILE|URL")]
        anchors: Vec<String>,
    },
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn left(ms: i64) -> String {
    let s = ((ms - now_ms()).max(0) + 999) / 1000;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    }
}

fn op(o: i32) -> &'static str {
    if o == pb::Operation::Write as i32 {
        "WRITE"
    } else {
        "READ"
    }
}

fn grant_json(g: &pb::GrantInfo) -> serde_json::Value {
    json!({"id": g.id, "vault": g.vault, "config": g.config_path, "scope": g.scope,
           "name": g.name, "session": g.session_id, "expiresAtMs": g.expires_at_ms})
}

fn grant_line(g: &pb::GrantInfo) -> String {
    let what = if g.name.is_empty() {
        format!("{} (whole vault)", g.vault)
    } else {
        format!("{}/{}", g.vault, g.name)
    };
    let session = if g.session_id.is_empty() {
        String::new()
    } else {
        " [this session only]".into()
    };
    format!(
        "  {what}{session}: {} left ({})",
        left(g.expires_at_ms),
        g.config_path
    )
}

fn pending_json(p: &pb::PendingInfo) -> serde_json::Value {
    let r = p.requester.clone().unwrap_or_default();
    json!({"id": p.id, "vault": p.vault, "config": p.config_path, "operation": op(p.operation),
           "names": p.names, "reason": p.reason, "previews": p.previews, "url": p.approval_url,
           "location": p.location,
           "expiresAtMs": p.expires_at_ms,
           "requester": {"uid": r.uid, "user": r.user, "pid": r.pid, "exe": r.exe, "cmdline": r.cmdline, "cwd": r.cwd,
                         "agent": r.agent, "mcpClient": r.mcp_client, "session": r.session_id}})
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let socket = agent_vault_proto::paths::socket_path()?;
    let Connection { mut admin, .. } = client::connect(&socket, "cli").await?;
    let out =
        |v: serde_json::Value| println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    match cli.command {
        Command::Status => {
            let s = admin.status(pb::StatusRequest {}).await?.into_inner();
            if cli.json {
                out(json!({
                    "version": s.version, "protocol": s.protocol, "pid": s.pid, "uptimeMs": s.uptime_ms,
                    "approvalUrl": s.approval_base_url, "tunnel": s.tunnel, "passkeys": s.passkeys, "stateDir": s.state_dir, "socket": s.socket_path,
                    "vaults": s.vaults.iter().map(|v| json!({"name": v.name, "config": v.config_path, "type": v.kind,
                        "ttl": v.ttl_minutes, "ttlScope": v.ttl_scope, "writable": v.writable,
                        "require": v.require, "approvers": v.approvers})).collect::<Vec<_>>(),
                    "devices": s.devices.iter().map(|d| json!({"id": d.id, "label": d.label, "pairedAtMs": d.paired_at_ms, "lastSeenMs": d.last_seen_ms})).collect::<Vec<_>>(),
                    "pending": s.pending_count,
                    "agentUids": s.agent_uids, "adminUids": s.admin_uids,
                    "grants": s.grants.iter().map(grant_json).collect::<Vec<_>>(),
                }));
                return Ok(());
            }
            println!(
                "agent-vaultd {} (protocol {}), pid {}, up {}",
                s.version,
                s.protocol,
                s.pid,
                left(now_ms() + s.uptime_ms as i64)
            );
            println!("approvals: {}", s.approval_base_url);
            println!("tunnel:    {}", s.tunnel);
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
        Command::Pending => {
            let p = admin
                .pending(pb::PendingRequest {})
                .await?
                .into_inner()
                .pending;
            if cli.json {
                out(json!(p.iter().map(pending_json).collect::<Vec<_>>()));
                return Ok(());
            }
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
        }
        Command::Grants => {
            let g = admin
                .grants(pb::GrantsRequest {})
                .await?
                .into_inner()
                .grants;
            if cli.json {
                out(json!(g.iter().map(grant_json).collect::<Vec<_>>()));
                return Ok(());
            }
            if g.is_empty() {
                println!("No approval windows are open.");
            }
            for x in &g {
                println!("{}", grant_line(x));
            }
        }
        Command::Revoke { all, target } => {
            if !all && target.is_none() {
                anyhow::bail!("say what to revoke: --all, VAULT or VAULT/NAME");
            }
            let r = admin
                .revoke(pb::RevokeRequest {
                    all,
                    target: target.unwrap_or_default(),
                })
                .await?
                .into_inner();
            if cli.json {
                out(json!({"revoked": r.revoked}));
            } else {
                println!("Revoked {} approval window(s).", r.revoked);
            }
        }
        Command::Audit {
            limit,
            action: None,
        } => {
            let rows = admin
                .audit(pb::AuditRequest { limit })
                .await?
                .into_inner()
                .rows;
            if cli.json {
                out(json!(rows.iter().map(|r| json!({"id": r.id, "timestamp": r.timestamp, "secret_name": r.secret_name,
                    "reason": r.reason, "action": r.action, "scope": r.scope, "ttl_expires_at": r.ttl_expires_at,
                    "vault": r.vault, "request_id": r.request_id, "requester": r.requester, "device_id": r.device_id,
                    "operation": r.operation})).collect::<Vec<_>>()));
                return Ok(());
            }
            for r in &rows {
                println!(
                    "{:>6} {} {:<13} {:<5} {}/{} {}",
                    r.id,
                    r.timestamp,
                    r.action,
                    r.operation,
                    r.vault,
                    r.secret_name,
                    if r.reason.is_empty() {
                        String::new()
                    } else {
                        format!("\"{}\"", r.reason)
                    }
                );
            }
        }
        Command::Audit {
            action: Some(AuditAction::Verify { anchors: sources }),
            ..
        } => {
            let mut anchors = Vec::new();
            for source in &sources {
                anchors.extend(
                    anchors::read(source)
                        .await?
                        .into_iter()
                        .map(|a| pb::AuditAnchor {
                            seq: a.seq,
                            hash: a.hash,
                            time: a.time,
                        }),
                );
            }
            let v = admin
                .audit_verify(pb::AuditVerifyRequest { anchors })
                .await?
                .into_inner();
            if cli.json {
                out(
                    json!({"ok": v.ok, "rowsChecked": v.rows_checked, "anchorsChecked": v.anchors_checked, "problem": v.problem}),
                );
            } else if v.ok && sources.is_empty() {
                println!(
                    "audit log intact: {} rows checked (the chain alone cannot show a log rewritten as a whole; add --anchor)",
                    v.rows_checked
                );
            } else if v.ok {
                println!(
                    "audit log intact: {} rows checked, matching {} anchors",
                    v.rows_checked, v.anchors_checked
                );
            } else {
                println!("AUDIT LOG TAMPERED: {}", v.problem);
            }
            if !v.ok {
                // Said above; the exit status tells scripts.
                return Err(Tampered.into());
            }
        }
        Command::Approve {
            id: Some(id),
            deny,
            window,
        } => {
            let r = admin
                .decide(pb::DecideRequest {
                    request_id: id.clone(),
                    approve: !deny,
                    window_minutes: window,
                })
                .await?
                .into_inner();
            if cli.json {
                out(json!({"id": id, "outcome": r.outcome}));
            } else {
                println!("{id}: {}", r.outcome);
            }
        }
        Command::Approve {
            id: None,
            deny: _,
            window,
        } => {
            use std::io::BufRead;
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
                println!("  reason (the agent's words): {}", r.reason);
                println!(
                    "  requester: {} in {} (pid {}, user {}), in {}",
                    who.mcp_client, who.agent, who.pid, who.user, who.cwd
                );
                print!("Approve? [y]es, [n]o (deny), anything else skips: ");
                use std::io::Write;
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
        }
        Command::Devices { action: None } => {
            let d = admin
                .devices(pb::DevicesRequest {})
                .await?
                .into_inner()
                .devices;
            if cli.json {
                out(json!(d.iter().map(|d| json!({"id": d.id, "label": d.label, "pairedAtMs": d.paired_at_ms, "lastSeenMs": d.last_seen_ms})).collect::<Vec<_>>()));
                return Ok(());
            }
            if d.is_empty() {
                println!(
                    "No device is paired: open the link agent-vaultd shows on its terminal, or run `agent-vault pair`."
                );
            }
            for x in &d {
                println!(
                    "{}  {}  last seen {} ago",
                    x.id,
                    x.label,
                    left(2 * now_ms() - x.last_seen_ms)
                );
            }
        }
        Command::Devices {
            action: Some(DevicesAction::Revoke { id }),
        } => {
            admin
                .revoke_device(pb::RevokeDeviceRequest { id: id.clone() })
                .await?;
            if cli.json {
                out(json!({"revoked": id}));
            } else {
                println!("Device {id} unpaired.");
            }
        }
        Command::Pair { totp: true } => {
            let p = admin
                .pair(pb::PairRequest { totp: true })
                .await?
                .into_inner();
            if cli.json {
                out(json!({"url": p.url, "shownOnDaemonTerminal": p.shown_on_daemon_terminal}));
                return Ok(());
            }
            if p.shown_on_daemon_terminal {
                println!(
                    "The authenticator's code is shown on agent-vaultd's terminal, not here: \
                     this user is also an agent user, and an agent must not see it."
                );
                return Ok(());
            }
            println!("Scan this with your authenticator app (shown once):");
            if let Some(qr) = agent_vault_proto::qr_text(&p.url) {
                println!("{qr}");
            }
            println!("Approvals for vaults that require it will ask for its current code.");
        }
        Command::Pair { totp: false } => {
            let p = admin
                .pair(pb::PairRequest { totp: false })
                .await?
                .into_inner();
            if cli.json {
                out(
                    json!({"url": p.url, "shownOnDaemonTerminal": p.shown_on_daemon_terminal,
                           "needsApproval": p.needs_approval}),
                );
                return Ok(());
            }
            if p.shown_on_daemon_terminal {
                println!(
                    "No device is paired yet. The first pairing link is shown on agent-vaultd's terminal, \
                     not here: this user is also an agent user, and an agent must not see it."
                );
                return Ok(());
            }
            println!(
                "Open this link on the device that will approve (valid 5 minutes, once):\n{}",
                p.url
            );
            if let Some(qr) = agent_vault_proto::qr_text(&p.url) {
                println!("{qr}");
            }
            if p.needs_approval {
                println!("A device is already paired: approve this pairing on its dashboard.");
            }
        }
    }
    Ok(())
}

/// `audit verify` found a problem (already printed): exit 1.
#[derive(Debug)]
struct Tampered;

impl std::fmt::Display for Tampered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the audit log was tampered with")
    }
}

impl std::error::Error for Tampered {}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await.context("agent-vault") {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.root_cause().downcast_ref::<Tampered>().is_some() => {
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            let msg = match e.root_cause().downcast_ref::<tonic::Status>() {
                Some(s) => s.message().to_string(),
                None => format!("{:#}", e),
            };
            eprintln!("agent-vault: {}", msg.trim_start_matches("agent-vault: "));
            std::process::ExitCode::FAILURE
        }
    }
}
