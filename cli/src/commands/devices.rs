//! `agent-vault devices` (paired approvers) and `devices revoke ID`.

use agent_vault_proto::pb;
use serde_json::json;

use super::Admin;
use crate::output::{Out, ago, local_time};

pub async fn list(admin: &mut Admin, out: Out) -> anyhow::Result<()> {
    let d = admin
        .devices(pb::DevicesRequest {})
        .await?
        .into_inner()
        .devices;
    let value = json!(d.iter().map(|d| json!({"id": d.id, "label": d.label, "pairedAtMs": d.paired_at_ms, "lastSeenMs": d.last_seen_ms})).collect::<Vec<_>>());
    out.emit(value, || {
        if d.is_empty() {
            println!(
                "No device is paired: open the link agent-vaultd shows on its terminal, or run `agent-vault pair`."
            );
        }
        for x in &d {
            println!(
                "{}  {}  paired {}, last seen {} ago",
                x.id,
                x.label,
                local_time(x.paired_at_ms),
                ago(x.last_seen_ms)
            );
        }
    });
    Ok(())
}

pub async fn revoke(admin: &mut Admin, out: Out, id: String) -> anyhow::Result<()> {
    admin
        .revoke_device(pb::RevokeDeviceRequest { id: id.clone() })
        .await?;
    out.emit(json!({"revoked": id}), || {
        println!("Device {id} unpaired.");
    });
    Ok(())
}
