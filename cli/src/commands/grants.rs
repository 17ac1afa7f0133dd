//! `agent-vault grants` (open approval windows) and `agent-vault revoke`.

use agent_vault_proto::pb;
use serde_json::json;

use super::Admin;
use crate::output::{Out, left};

pub fn grant_json(g: &pb::GrantInfo) -> serde_json::Value {
    json!({"id": g.id, "vault": g.vault, "config": g.config_path, "scope": g.scope,
           "name": g.name, "session": g.session_id, "expiresAtMs": g.expires_at_ms})
}

pub fn grant_line(g: &pb::GrantInfo) -> String {
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

pub async fn list(admin: &mut Admin, out: Out) -> anyhow::Result<()> {
    let g = admin
        .grants(pb::GrantsRequest {})
        .await?
        .into_inner()
        .grants;
    out.emit(json!(g.iter().map(grant_json).collect::<Vec<_>>()), || {
        if g.is_empty() {
            println!("No approval windows are open.");
        }
        for x in &g {
            println!("{}", grant_line(x));
        }
    });
    Ok(())
}

/// Ends windows now: all, a vault's, or one secret's (`VAULT/NAME`).
pub async fn revoke(
    admin: &mut Admin,
    out: Out,
    all: bool,
    target: Option<String>,
) -> anyhow::Result<()> {
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
    out.emit(json!({"revoked": r.revoked}), || {
        println!("Revoked {} approval window(s).", r.revoked);
    });
    Ok(())
}
