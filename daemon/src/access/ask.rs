//! Asking: a checked request is refused for names the vault does not hold
//! or hides, and for reads of use-only names (before anyone is asked);
//! covered by windows or released by an `autoApprove` policy (the values
//! at once); or opened as a pending approval (joining an identical one)
//! under the strictest rule among the names still to approve.

use std::sync::Arc;

use agent_vault_proto::pb;

use super::deliver::{Delivery, deliver};
use super::reply::reply_for;
use super::session::project_of;
use super::{AccessError, validate};
use crate::audit::Action;
use crate::broker::{NewRequest, Operation};
use crate::clock;
use crate::command_line::CommandLine;
use crate::config::Rule;
use crate::devices::random_id;
use crate::events::{self, Decision};
use crate::grants::{Binding, Want};
use crate::providers::ProviderError;
use crate::secret::mask;
use crate::session::Session;
use crate::state::AppState;

/// Asks for access. Returns GRANTED at once when windows or policies cover
/// every read, otherwise PENDING with the approval link.
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
    let rules: Vec<Rule> = names.iter().map(|n| vault_cfg.rule(n)).collect();
    let rule_of = |n: &str| names.iter().position(|m| m == n).map(|i| rules[i]);
    // Hidden names are answered as names the vault does not hold.
    let hidden: Vec<String> = names
        .iter()
        .zip(&rules)
        .filter(|(_, r)| r.hidden)
        .map(|(n, _)| n.clone())
        .collect();
    if operation == Operation::Read {
        let use_only: Vec<String> = names
            .iter()
            .zip(&rules)
            .filter(|(_, r)| !r.reveal && !r.hidden)
            .map(|(n, _)| n.clone())
            .collect();
        if !use_only.is_empty() {
            return Err(AccessError::UseOnly {
                vault: vault_cfg.name.clone(),
                names: use_only,
            });
        }
    }
    let not_found = |missing: Vec<String>| {
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
        AccessError::from(ProviderError::UnknownSecret {
            vault: vault_cfg.name.clone(),
            names: missing,
        })
    };
    if operation == Operation::Write && !hidden.is_empty() {
        return Err(not_found(hidden));
    }

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
        let by_policy: Vec<String> = names
            .iter()
            .zip(&rules)
            .filter(|(_, r)| r.auto_approve && !r.hidden)
            .map(|(n, _)| n.clone())
            .collect();
        {
            let grants = state.grants();
            needs.retain(|n| {
                let rule = rule_of(n);
                let want = Want {
                    name: n,
                    session: &session.id,
                    run: run.as_deref(),
                    whole_vault: !rule.is_some_and(|r| r.by_policy),
                };
                !by_policy.contains(n) && !grants.covers(&vault_id, &binding, &want, now_ms)
            });
        }
        let mut missing: Vec<String> = if needs.is_empty() && hidden.is_empty() {
            // The fast path: every name is covered; one read of the vault
            // both checks the names and fetches the values.
            let covered = Delivery {
                vault: &vault_id,
                binding: &binding,
                provider,
                session,
                names: &names,
                approved_now: &[],
                by_policy: &by_policy,
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
        missing.extend(hidden.iter().cloned());
        if !missing.is_empty() {
            let in_order: Vec<String> = names
                .iter()
                .filter(|n| missing.contains(n))
                .cloned()
                .collect();
            return Err(not_found(in_order));
        }
    }

    // The strictest rule among the names a person is asked about.
    let asked: Vec<Rule> = needs.iter().filter_map(|n| rule_of(n)).collect();
    let approvers = asked
        .iter()
        .map(|r| r.approvers)
        .max()
        .unwrap_or(vault_cfg.approvers);
    let factor = asked
        .iter()
        .fold(None, |f: Option<crate::config::ApprovalFactor>, r| {
            Some(f.map_or(r.factor, |f| f.stronger(r.factor)))
        })
        .unwrap_or(vault_cfg.factor);
    let ttl_minutes = asked
        .iter()
        .map(|r| r.ttl_minutes)
        .fold(vault_cfg.ttl_minutes, f64::min);
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
                ttl_minutes,
                approvers_needed: approvers,
                factor,
                allow_terminal: vault_cfg.allow_terminal,
                whole_vault_window: asked.iter().all(|r| !r.by_policy),
                scope: vault_cfg.ttl_scope,
                expire_ms: clock::minutes_ms(approval.expire_minutes),
            },
            random_id(12),
            now_ms,
        )
        .map_err(|e| AccessError::TooMany(e.to_string()))?;
    if !joined {
        // The link for whoever watches the daemon's terminal (the agent
        // gets it too: it approves nothing without a paired device).
        let url = format!("{}/approve/{}", state.approval_base(), pending.id);
        tracing::info!(request = %pending.id, vault = %pending.vault.name, names = ?pending.names, op = operation.as_str(), %url, "approval requested");
    }
    reply_for(state, &pending, approval.wait_seconds, now_ms).await
}
