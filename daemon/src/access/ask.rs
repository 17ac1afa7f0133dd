//! Asking: a checked request is either covered by windows (the values at
//! once), refused for names the vault does not hold (before anyone is
//! asked), or opened as a pending approval (joining an identical one).

use std::sync::Arc;

use agent_vault_proto::pb;

use super::deliver::{Delivery, deliver};
use super::reply::reply_for;
use super::session::project_of;
use super::{AccessError, validate};
use crate::audit::Action;
use crate::broker::NewRequest;
use crate::clock;
use crate::command_line::CommandLine;
use crate::devices::random_id;
use crate::events::{self, Decision};
use crate::grants::Binding;
use crate::providers::ProviderError;
use crate::secret::mask;
use crate::session::Session;
use crate::state::AppState;

/// Asks for access. Returns GRANTED at once when windows cover every read,
/// otherwise PENDING with the approval link.
pub async fn access(
    state: &AppState,
    session: &Arc<Session>,
    req: pb::AccessRequest,
    now_ms: i64,
) -> Result<pb::AccessReply, AccessError> {
    let project = project_of(state, session)?;
    let Some((vault_cfg, provider, vault_id)) = project.vault(&req.vault) else {
        return Err(AccessError::UnknownVault {
            vault: req.vault.chars().take(80).collect(),
            available: project.vault_names().join(", "),
        });
    };
    let validate::Checked {
        operation,
        reason,
        names,
        writes,
        command,
    } = validate::check(vault_cfg, provider, req)?;
    let run = command.as_ref().map(CommandLine::digest);

    // What exactly is asked for: by whom, under which definition, from
    // which source. For a project's vault this is also where its file is
    // checked to be the requester's own.
    let binding = Binding {
        uid: session.requester.uid,
        definition: vault_cfg.fingerprint().into(),
        source: provider.identity().await?.into(),
    };
    let mut needs = names.clone();
    if operation.releases_values() {
        {
            let grants = state.grants();
            needs.retain(|n| {
                !grants.covers(&vault_id, &binding, n, &session.id, run.as_deref(), now_ms)
            });
        }
        let missing: Vec<String> = if needs.is_empty() {
            // The fast path: every name is covered; one read of the vault
            // both checks the names and fetches the values.
            let covered = Delivery {
                vault: &vault_id,
                binding: &binding,
                provider,
                session,
                names: &names,
                approved_now: &[],
                operation,
                command: command.as_ref(),
                reason: &reason,
                scope: vault_cfg.ttl_scope,
                request_id: "",
            };
            match deliver(state, &covered, now_ms).await {
                Err(AccessError::Provider(ProviderError::UnknownSecret {
                    names: missing, ..
                })) => missing,
                other => return other,
            }
        } else {
            // Unknown names fail now, before anyone is asked.
            provider.missing(&names).await?
        };
        if !missing.is_empty() {
            events::record(
                state,
                &Decision {
                    vault: &vault_id,
                    names: &missing,
                    reason: &reason,
                    action: Action::NotFound,
                    scope: vault_cfg.ttl_scope.as_str(),
                    ttl_expires_ms: None,
                    operation,
                    request_id: "",
                    requester: &session.requester,
                    device_id: "",
                    detail: "",
                    command: command.as_ref(),
                    approval_digest: "",
                    now_ms,
                },
            );
            return Err(ProviderError::UnknownSecret {
                vault: vault_cfg.name.clone(),
                names: missing,
            }
            .into());
        }
    }

    let previews = writes.iter().map(|(_, v)| mask(v)).collect();
    let location = provider.location();
    let approval = project.config.approval;
    let (pending, joined) = state
        .broker
        .open(
            NewRequest {
                vault: vault_id,
                binding,
                operation,
                command,
                names: needs,
                all_names: names,
                writes,
                previews,
                location,
                reason,
                session: session.clone(),
                ttl_minutes: vault_cfg.ttl_minutes,
                approvers_needed: vault_cfg.approvers,
                factor: vault_cfg.factor,
                allow_terminal: vault_cfg.allow_terminal,
                scope: vault_cfg.ttl_scope,
                expire_ms: clock::minutes_ms(approval.expire_minutes),
            },
            random_id(12),
            now_ms,
        )
        .map_err(|e| AccessError::TooMany(e.to_string()))?;
    if !joined {
        tracing::info!(request = %pending.id, vault = %pending.vault.name, names = ?pending.names, op = operation.as_str(), "approval requested");
    }
    reply_for(state, &pending, approval.wait_seconds, now_ms).await
}
