//! `agent-vault doctor`: is everything in place for an agent's first
//! request to reach a phone and come back? The daemon and its version, the
//! state and socket directories, the config and its references, every
//! vault's backend (listed now, within its time-out), how a phone reaches
//! the approval page, paired devices and passkeys, channels, the service,
//! and the MCP clients that run agent-vault-mcp. Each problem with its fix;
//! exit status 1 when any check fails.

mod daemon;
mod files;
mod findings;

use agent_vault_proto::pb;
use serde_json::json;

use crate::output::{Out, left, now_ms};
use daemon::{approvals, backends};
use files::{clients, configs, directories, service};
use findings::{Findings, Level};

pub async fn run(out: Out) -> anyhow::Result<bool> {
    let mut f = Findings::default();
    let socket = agent_vault_proto::paths::socket_path()?;
    let mut connection = daemon::daemon(&mut f, &socket).await;
    let status = match &mut connection {
        Some(c) => match c.admin.status(pb::StatusRequest {}).await {
            Ok(s) => Some(s.into_inner()),
            Err(e) => {
                f.problem(
                    "daemon",
                    Level::Fail,
                    format!(
                        "agent-vaultd does not answer this user's questions: {}",
                        e.message()
                    ),
                    "run agent-vault as a user in the daemon's access.admins (SECURITY.md)",
                );
                None
            }
        },
        None => None,
    };
    if let Some(s) = &status {
        f.add(
            "daemon",
            Level::Ok,
            format!(
                "agent-vaultd {} answers on {} (pid {}, up {})",
                s.version,
                s.socket_path,
                s.pid,
                left(now_ms() + s.uptime_ms as i64)
            ),
        );
        if s.version != agent_vault_proto::VERSION {
            f.problem(
                "daemon",
                Level::Warn,
                format!(
                    "agent-vaultd is version {}, this agent-vault is {}",
                    s.version,
                    agent_vault_proto::VERSION
                ),
                "restart the daemon after an upgrade: `agent-vault stop`; the next agent (or `agent-vaultd`) starts the new one",
            );
        }
    }
    directories(&mut f, status.as_ref(), &socket);
    configs(&mut f, status.as_ref());
    if let (Some(c), Some(_)) = (&mut connection, &status) {
        backends(&mut f, c).await;
    } else {
        f.add(
            "backends",
            Level::Note,
            "not checked: only the running daemon can list its vaults",
        );
    }
    if let Some(s) = &status {
        approvals(&mut f, s).await;
    }
    service(&mut f);
    clients(&mut f);

    let failed = f.0.iter().filter(|x| x.level == Level::Fail).count();
    let value = json!({
        "ok": failed == 0,
        "checks": f.0.iter().map(|x| json!({
            "area": x.area, "level": x.level.word().to_lowercase(), "what": x.what, "fix": x.fix,
        })).collect::<Vec<_>>(),
    });
    out.emit(value, || {
        for x in &f.0 {
            println!("{:<5} {:<9} {}", x.level.word(), x.area, x.what);
            if let Some(fix) = &x.fix {
                println!("{:16}fix: {fix}", "");
            }
        }
        let warned = f.0.iter().filter(|x| x.level == Level::Warn).count();
        match (failed, warned) {
            (0, 0) => println!("\nNo problems found."),
            (0, 1) => println!("\nNothing stops requests from working; 1 warning above."),
            (0, n) => println!("\nNothing stops requests from working; {n} warnings above."),
            (1, _) => println!("\n1 problem stops requests from working: see FAIL above."),
            (n, _) => println!("\n{n} problems stop requests from working: see FAIL above."),
        }
    });
    Ok(failed == 0)
}
