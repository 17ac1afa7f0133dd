//! What the running daemon answers, for `doctor`: whether it answers at
//! all, every vault's backend listed now, and how approvals reach a person
//! (the page's address, devices, passkeys, webhooks).

use std::path::Path;
use std::time::Duration;

use agent_vault_proto::client::{self, Connection};
use agent_vault_proto::pb;

use super::findings::{Findings, Level};
use crate::output::ago;

/// How long the daemon has to answer at all.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Every backend is listed at once, each within its own time-out; this
/// bounds the whole.
const BACKENDS_TIMEOUT: Duration = Duration::from_secs(40);

pub(super) async fn daemon(f: &mut Findings, socket: &Path) -> Option<Connection> {
    match tokio::time::timeout(CONNECT_TIMEOUT, client::connect(socket, "cli")).await {
        Ok(Ok(c)) => Some(c),
        Ok(Err(client::ConnectError::NotRunning { path })) => {
            f.problem(
                "daemon",
                Level::Fail,
                format!("agent-vaultd is not running (nothing answers on {})", path.display()),
                "start it with `agent-vaultd` (or as a service: README), or start your agent: agent-vault-mcp starts it",
            );
            None
        }
        Ok(Err(e)) => {
            f.problem(
                "daemon",
                Level::Fail,
                e.to_string(),
                "see the message; `agent-vault logs` shows the daemon's own account",
            );
            None
        }
        Err(_) => {
            f.problem(
                "daemon",
                Level::Fail,
                format!(
                    "agent-vaultd did not answer on {} within {} s",
                    socket.display(),
                    CONNECT_TIMEOUT.as_secs()
                ),
                "it may be stuck: `agent-vault logs` shows why; `agent-vault stop` ends it",
            );
            None
        }
    }
}

/// Every vault the daemon has loaded, listed now.
pub(super) async fn backends(f: &mut Findings, c: &mut Connection) {
    let reply = tokio::time::timeout(
        BACKENDS_TIMEOUT,
        c.admin.check_vaults(pb::CheckVaultsRequest {}),
    )
    .await;
    let vaults = match reply {
        Ok(Ok(r)) => r.into_inner().vaults,
        Ok(Err(e)) => {
            f.add(
                "backends",
                Level::Warn,
                format!("not checked: {}", e.message()),
            );
            return;
        }
        Err(_) => {
            f.add(
                "backends",
                Level::Fail,
                format!(
                    "not checked: the backends did not answer within {} s",
                    BACKENDS_TIMEOUT.as_secs()
                ),
            );
            return;
        }
    };
    for v in vaults {
        let place = if v.location.is_empty() {
            v.kind.clone()
        } else {
            format!("{}, {}", v.kind, v.location)
        };
        if v.ok {
            f.add(
                "backends",
                Level::Ok,
                format!(
                    "{} ({place}): {} name{} in {} ms",
                    v.name,
                    v.names,
                    if v.names == 1 { "" } else { "s" },
                    v.elapsed_ms
                ),
            );
        } else {
            f.problem(
                "backends",
                Level::Fail,
                format!("{} ({place}) from {}: {}", v.name, v.config_path, v.error),
                backend_fix(&v.kind),
            );
        }
        if !v.notice.is_empty() {
            f.problem(
                "backends",
                Level::Warn,
                format!("{}: {}", v.name, v.notice),
                "see the message",
            );
        }
    }
}

/// Whether the config's `publicUrl` leads to this daemon: its pages
/// answer this run's id at `/.well-known/agent-vaultd`. Asked from this
/// machine, which may not reach an address a phone does (no answer is a
/// warning; an answer from something else fails).
async fn public_url(f: &mut Findings, s: &pb::StatusReply) {
    let (base, local) = (&s.approval_base_url, &s.local_url);
    let url = format!("{base}/.well-known/agent-vaultd");
    let answer = async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let response = client.get(&url).send().await.map_err(|e| {
            if e.is_timeout() {
                "no answer within 5 s".to_string()
            } else {
                innermost(&e)
            }
        })?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        Ok::<_, String>((status, body))
    }
    .await;
    match answer {
        Ok((status, body)) if status.is_success() && body.trim() == s.instance => f.add(
            "phone",
            Level::Ok,
            format!("approval pages at {base} (publicUrl), which leads to this agent-vaultd"),
        ),
        Ok((status, _)) => f.problem(
            "phone",
            Level::Fail,
            format!(
                "approval pages are announced at {base} (publicUrl), but it does not lead to this agent-vaultd (it answered {status})"
            ),
            format!(
                "make it forward to {local} at the root of its host (`tailscale serve --bg {local}`, or your proxy's settings), or correct publicUrl and restart agent-vaultd"
            ),
        ),
        Err(why) => f.problem(
            "phone",
            Level::Warn,
            format!("approval pages are announced at {base} (publicUrl), which did not answer here: {why}"),
            "check that tailscale serve or your proxy runs and forwards to agent-vaultd's port; a phone on your tailnet may still reach it where this machine cannot",
        ),
    }
}

/// The cause at the bottom of an error's chain ("Connection refused (os
/// error 111)"), which says more than the top ("error sending request").
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// What a failing backend of this type usually needs.
fn backend_fix(kind: &str) -> String {
    match kind {
        "1password" => "install the 1Password CLI (`op`) and sign in (`op signin`), or give agent-vaultd OP_SERVICE_ACCOUNT_TOKEN; then `agent-vault doctor` again".into(),
        "bitwarden" => "install the Bitwarden Secrets Manager CLI (`bws`) and give agent-vaultd BWS_ACCESS_TOKEN".into(),
        "env" => "check that the file exists and that agent-vaultd's user can read it".into(),
        _ => format!("check the vault's address and credentials (the README's section on \"{kind}\" vaults lists them)"),
    }
}

/// How approvals reach a person: the page's address, devices, factors,
/// channels.
pub(super) async fn approvals(f: &mut Findings, s: &pb::StatusReply) {
    let local = agent_vault_proto::opens_only_here(&s.approval_base_url);
    if s.tunnel == "publicUrl" {
        public_url(f, s).await;
    } else if let Some(why) = s.tunnel.strip_prefix("none: ngrok failed: ") {
        f.problem(
            "phone",
            Level::Fail,
            format!("the ngrok tunnel did not open: {why}"),
            "check the token (NGROK_AUTHTOKEN or ngrokAuthToken) and ngrokDomain, then restart agent-vaultd (`agent-vault stop`)",
        );
    } else if local {
        f.problem(
            "phone",
            Level::Warn,
            format!("approval pages are at {}: only this machine can open them", s.approval_base_url),
            "for a phone: set NGROK_AUTHTOKEN (or ngrokAuthToken), or publicUrl behind tailscale serve or a reverse proxy, and restart agent-vaultd; or forward the port with `ssh -L` (README: Pair a phone)",
        );
    } else {
        f.add(
            "phone",
            Level::Ok,
            format!("approval pages at {} ({})", s.approval_base_url, s.tunnel),
        );
    }
    if s.devices.is_empty() {
        f.problem(
            "devices",
            Level::Warn,
            "no device is paired: requests wait until one approves them",
            "`agent-vault pair` prints a link and QR code to open on your phone",
        );
    }
    for d in &s.devices {
        let seen = if d.last_seen_ms > 0 {
            format!("last seen {} ago", ago(d.last_seen_ms))
        } else {
            "not seen since pairing".into()
        };
        f.add("devices", Level::Ok, format!("{} paired, {seen}", d.label));
    }
    let passkey_vaults: Vec<&str> = s
        .vaults
        .iter()
        .filter(|v| v.require == "passkey")
        .map(|v| v.name.as_str())
        .collect();
    if let (Some(why), false) = (
        s.passkeys.strip_prefix("unavailable: "),
        passkey_vaults.is_empty(),
    ) {
        f.problem(
            "devices",
            Level::Fail,
            format!("{} need a passkey, and passkeys cannot work here: {why}", passkey_vaults.join(", ")),
            "use a stable address (localhost, or ngrokDomain for a reserved domain), or approval.require \"totp\"",
        );
    }
    f.add(
        "channels",
        Level::Note,
        match s.webhooks {
            0 => {
                "no webhooks: requests are announced on the approval page and the daemon's terminal"
                    .to_string()
            }
            n => format!(
                "{n} webhook{} in agent-vaultd's config",
                if n == 1 { "" } else { "s" }
            ),
        },
    );
}
