//! Handing values to the agent: read from the vault's source, only if it
//! is the source the approval (or the window) was bound to, and only once
//! the audit rows are committed.

use agent_vault_proto::pb;

use super::AccessError;
use crate::audit::Action;
use crate::broker::Operation;
use crate::command_line::CommandLine;
use crate::config::TtlScope;
use crate::events::{self, Decision};
use crate::grants::Binding;
use crate::providers::Provider;
use crate::session::Session;
use crate::state::AppState;
use crate::vault_id::VaultId;

/// What is delivered, from where, and what its approval was for.
pub struct Delivery<'a> {
    pub vault: &'a VaultId,
    pub binding: &'a Binding,
    pub provider: &'a Provider,
    pub session: &'a Session,
    /// Every name to deliver.
    pub names: &'a [String],
    /// The names a person approved just now; the others were covered by a
    /// window or a policy and are recorded as `auto_approved` here.
    pub approved_now: &'a [String],
    /// The names an `autoApprove` policy releases.
    pub by_policy: &'a [String],
    /// Read (values to the agent) or Run (values to the command).
    pub operation: Operation,
    pub command: Option<&'a CommandLine>,
    pub reason: &'a str,
    pub scope: TtlScope,
    /// The request's id; empty when windows covered everything at once.
    pub request_id: &'a str,
}

/// Fetches the values and records the names that a window covered.
pub async fn deliver(
    state: &AppState,
    d: &Delivery<'_>,
    now_ms: i64,
) -> Result<pb::AccessReply, AccessError> {
    let (mut values, source) = d.provider.get(d.names).await?;
    if *source != *d.binding.source {
        tracing::warn!(request = d.request_id, vault = %d.vault.name, "the vault's source changed since it was approved; nothing released");
        return Err(AccessError::SourceChanged(d.vault.name.to_string()));
    }
    let (by_policy, by_window): (Vec<String>, Vec<String>) = d
        .names
        .iter()
        .filter(|n| !d.approved_now.contains(n))
        .cloned()
        .partition(|n| d.by_policy.contains(n));
    for (names, detail) in [
        (by_window, ""),
        (by_policy, "released by an autoApprove policy"),
    ] {
        if names.is_empty() {
            continue;
        }
        events::record(
            state,
            &Decision {
                vault: d.vault,
                names: &names,
                reason: d.reason,
                action: Action::AutoApproved,
                scope: d.scope.as_str(),
                ttl_expires_ms: None,
                operation: d.operation,
                request_id: d.request_id,
                requester: &d.session.requester,
                device_id: "",
                detail,
                command: d.command,
                approval_digest: "",
                now_ms,
            },
        );
    }
    // A value leaves only after its audit rows are committed (the writer
    // group-commits, so concurrent calls share one transaction): a crash
    // can never release a secret that the log does not show.
    if !state.store.flush().await {
        tracing::error!(
            request = d.request_id,
            "the audit log could not be written; values withheld"
        );
        return Err(AccessError::AuditUnavailable);
    }
    let values = d
        .names
        .iter()
        .filter_map(|n| {
            values.remove(n).map(|v| pb::SecretValue {
                name: n.clone(),
                value: v.expose().to_string(),
            })
        })
        .collect();
    let max_output_bytes = match d.operation {
        Operation::Run => state
            .project(&d.session.project)
            .map(|p| p.config.run.max_output_bytes)
            .unwrap_or_default(),
        _ => 0,
    };
    Ok(pb::AccessReply {
        outcome: pb::Outcome::Granted as i32,
        values,
        request_id: d.request_id.to_string(),
        max_output_bytes,
        ..Default::default()
    })
}
