//! `agent-vault pair`: a one-time link that pairs a browser as an
//! approver, or with `--totp` the authenticator app's enrollment. Either
//! is shown on agent-vaultd's terminal instead when this user is also an
//! agent user.

use agent_vault_proto::pb;
use serde_json::json;

use super::Admin;
use crate::output::Out;

pub async fn device(admin: &mut Admin, out: Out) -> anyhow::Result<()> {
    let p = admin
        .pair(pb::PairRequest { totp: false })
        .await?
        .into_inner();
    let value = json!({"url": p.url, "shownOnDaemonTerminal": p.shown_on_daemon_terminal,
                       "needsApproval": p.needs_approval});
    out.emit(value, || {
        if p.shown_on_daemon_terminal {
            println!(
                "No device is paired yet. The first pairing link is shown on agent-vaultd's terminal, \
                 not here: this user is also an agent user, and an agent must not see it."
            );
            return;
        }
        println!("{}", agent_vault_proto::pairing_link_text(&p.url));
        if p.needs_approval {
            println!("A device is already paired: approve this pairing on its dashboard.");
        }
    });
    Ok(())
}

pub async fn totp(admin: &mut Admin, out: Out) -> anyhow::Result<()> {
    let p = admin
        .pair(pb::PairRequest { totp: true })
        .await?
        .into_inner();
    let value = json!({"url": p.url, "shownOnDaemonTerminal": p.shown_on_daemon_terminal});
    out.emit(value, || {
        if p.shown_on_daemon_terminal {
            println!(
                "The authenticator's code is shown on agent-vaultd's terminal, not here: \
                 this user is also an agent user, and an agent must not see it."
            );
            return;
        }
        println!("Scan this with your authenticator app (shown once):");
        if let Some(qr) = agent_vault_proto::qr_text(&p.url) {
            println!("{qr}");
        }
        println!("Approvals for vaults that require it will ask for its current code.");
    });
    Ok(())
}
