//! `agent-vault audit` (the newest rows) and `agent-vault audit verify`
//! (the hash chain, and with `--anchor` the chain's head as copied
//! elsewhere).

use agent_vault_proto::pb;
use serde_json::json;

use super::Admin;
use crate::anchors;
use crate::output::{Out, local_iso};

pub async fn list(admin: &mut Admin, out: Out, limit: u32) -> anyhow::Result<()> {
    let rows = admin
        .audit(pb::AuditRequest { limit })
        .await?
        .into_inner()
        .rows;
    let value = json!(rows.iter().map(|r| json!({"id": r.id, "timestamp": r.timestamp, "secretName": r.secret_name,
        "reason": r.reason, "action": r.action, "scope": r.scope, "ttlExpiresAt": r.ttl_expires_at,
        "vault": r.vault, "requestId": r.request_id, "requester": r.requester, "deviceId": r.device_id,
        "operation": r.operation})).collect::<Vec<_>>());
    out.emit(value, || {
        for r in &rows {
            println!(
                "{:>6} {} {:<13} {:<5} {}/{} {}",
                r.id,
                local_iso(&r.timestamp),
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
    });
    Ok(())
}

/// `audit verify` found a problem (already printed): exit 1.
#[derive(Debug)]
pub struct Tampered;

impl std::fmt::Display for Tampered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the audit log was tampered with")
    }
}

impl std::error::Error for Tampered {}

pub async fn verify(admin: &mut Admin, out: Out, sources: &[String]) -> anyhow::Result<()> {
    let mut anchors = Vec::new();
    for source in sources {
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
    let value = json!({"ok": v.ok, "rowsChecked": v.rows_checked, "anchorsChecked": v.anchors_checked, "problem": v.problem});
    out.emit(value, || {
        if v.ok && sources.is_empty() {
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
    });
    if !v.ok {
        // Said above; the exit status tells scripts.
        return Err(Tampered.into());
    }
    Ok(())
}
