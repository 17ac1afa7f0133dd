//! The agent's side of a request: open a session, list, ask, wait.
//!
//! Every check that can fail without a human runs before anyone is asked:
//! the vault exists, it is writable for writes, the names are valid, and
//! for reads every name exists.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent_vault_proto::pb;

use crate::audit::Action;
use crate::broker::{NewRequest, Operation, PendingApproval, State};
use crate::clock;
use crate::config::{TtlScope, parse_config, restrict_project};
use crate::devices::random_id;
use crate::events::{self, Decision};
use crate::grants::Binding;
use crate::providers::Provider;
use crate::providers::ProviderError;
use crate::secret::{SecretString, mask};
use crate::session::{MAX_SESSIONS_PER_UID, Requester, Session, WATCH_GRACE_MS};
use crate::state::{AppState, Project};
use crate::vault_id::VaultId;

pub const MAX_REASON_BYTES: usize = 4096;
pub const MAX_NAMES: usize = 100;
pub const MAX_NAME_BYTES: usize = 256;
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("this agent session is unknown to agent-vaultd (it may have restarted); reconnect")]
    UnknownSession,
    #[error("the session belongs to another process")]
    NotYourSession,
    #[error("unknown vault \"{vault}\"; the available vaults are: {available}")]
    UnknownVault { vault: String, available: String },
    #[error(
        "vault \"{0}\" is not writable; set \"writable\": true on it in the config to allow writes"
    )]
    NotWritable(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("no pending request {0} for this session")]
    UnknownRequest(String),
    #[error("the write was approved but failed: {0}")]
    WriteFailed(String),
    #[error("{0}")]
    TooMany(String),
    #[error(
        "the audit log could not be written, so no value was released; try again, and see agent-vaultd's log if it persists"
    )]
    AuditUnavailable,
    #[error(
        "vault \"{0}\" now reads another file than the one that was approved (it was replaced), so no value was released; call again to ask anew"
    )]
    SourceChanged(String),
}

/// Opens a session for a connected shim. A project config arrives as the
/// text the shim read, as its own user, from `config_path`: the daemon
/// never opens a path an agent names, so it can neither be made to read a
/// file of its own through one nor tell whether such a file exists.
pub fn open_session(
    state: &AppState,
    requester: Requester,
    config_path: &str,
    config_text: &str,
    env: HashMap<String, String>,
) -> Result<Arc<Session>, AccessError> {
    let project = if config_path.is_empty() {
        state.default_project.clone()
    } else {
        let path = PathBuf::from(config_path);
        if !path.is_absolute() {
            return Err(AccessError::Invalid(
                "the config path must be absolute".into(),
            ));
        }
        if path == state.default_project.path {
            // The daemon's own config, with the daemon's own rules.
            state.default_project.clone()
        } else {
            // A project's env: references resolve only from the shim's own
            // environment, so a config written by an agent can never make the
            // daemon send the daemon's environment anywhere.
            let lookup = |name: &str| env.get(name).cloned();
            let mut config = parse_config(&path, config_text, &lookup)
                .map_err(|e| AccessError::Config(e.to_string()))?;
            // Only the daemon's own config may relax approval.
            let floor = state
                .project(&state.default_project)
                .and_then(|p| p.config.approval.projects)
                .unwrap_or_default();
            restrict_project(&mut config, &floor)
                .map_err(|e| AccessError::Config(e.to_string()))?;
            state
                .set_project(Project::new(config, Some(requester.uid)))
                .key()
        }
    };
    let session = Arc::new(Session {
        id: random_id(16),
        requester,
        project,
        opened_ms: clock::now_ms(),
        watched: Default::default(),
    });
    if !state.add_session(session.clone(), MAX_SESSIONS_PER_UID) {
        return Err(AccessError::TooMany(format!(
            "uid {} already has {MAX_SESSIONS_PER_UID} agent sessions open; close some agents (each ends its session when it exits)",
            session.requester.uid
        )));
    }
    Ok(session)
}

/// Forgets sessions whose watch never came within the grace period (a
/// client that opened sessions and walked away), as if they had closed.
pub fn forget_unwatched(state: &AppState, now_ms: i64) {
    for s in state.sessions_unwatched_since(now_ms - WATCH_GRACE_MS) {
        close_session(state, &s, now_ms);
    }
}

/// The shim of a session went away: cancel its pending requests (audited)
/// and forget the session.
pub fn close_session(state: &AppState, session: &Session, now_ms: i64) {
    let cancelled = state
        .broker
        .cancel_session(&session.id, "the agent's MCP client went away");
    for req in &cancelled {
        events::record(
            state,
            &Decision::for_request(req, Action::Cancelled, now_ms),
        );
    }
    state.remove_session(&session.id);
    tracing::info!(session = %session.id, pid = session.requester.pid, cancelled = cancelled.len(), "session closed");
}

fn project_of(state: &AppState, session: &Session) -> Result<Arc<Project>, AccessError> {
    state
        .project(&session.project)
        .ok_or(AccessError::UnknownSession)
}

pub async fn list(
    state: &AppState,
    session: &Session,
) -> Result<pb::ListSecretsReply, AccessError> {
    let project = project_of(state, session)?;
    let mut vaults = Vec::new();
    for (name, provider) in &project.providers {
        let cfg = &project.config.vaults[name];
        let (secrets, error) = match provider.list().await {
            Ok(list) => (
                list.into_iter()
                    .map(|l| pb::SecretEntry {
                        name: l.name,
                        group: l.group,
                    })
                    .collect(),
                String::new(),
            ),
            Err(e) => (Vec::new(), e.to_string()),
        };
        vaults.push(pb::VaultListing {
            vault: name.clone(),
            kind: cfg.kind.as_str().into(),
            writable: cfg.writable,
            secrets,
            error,
        });
    }
    Ok(pb::ListSecretsReply { vaults })
}

fn check_text(what: &str, s: &str, max: usize) -> Result<(), AccessError> {
    if s.len() > max {
        return Err(AccessError::Invalid(format!(
            "{what} is {} bytes; the limit is {max}",
            s.len()
        )));
    }
    if let Some(c) = crate::text::first_unshowable(s) {
        return Err(AccessError::Invalid(format!(
            "{what} contains {c}, a control or invisible character that could make it read differently on the approval page; write it in plain text"
        )));
    }
    Ok(())
}

fn check_names(provider: &crate::providers::Provider, names: &[&str]) -> Result<(), AccessError> {
    if names.is_empty() {
        return Err(AccessError::Invalid("no secret names were given".into()));
    }
    if names.len() > MAX_NAMES {
        return Err(AccessError::Invalid(format!(
            "{} names in one call; the limit is {MAX_NAMES}",
            names.len()
        )));
    }
    for (i, n) in names.iter().enumerate() {
        check_text("a secret name", n, MAX_NAME_BYTES)?;
        provider.check_name(n)?;
        if names[..i].contains(n) {
            return Err(AccessError::Invalid(format!("the name {n} is given twice")));
        }
    }
    Ok(())
}

/// Asks for access. Returns GRANTED at once when windows cover every read,
/// otherwise PENDING with the approval link (joining an identical request).
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
    let operation = match pb::Operation::try_from(req.operation) {
        Ok(pb::Operation::Write) => Operation::Write,
        Ok(pb::Operation::Read) => Operation::Read,
        Err(_) => return Err(AccessError::Invalid("unknown operation".into())),
    };
    if req.reason.trim().is_empty() {
        return Err(AccessError::Invalid(
            "a reason is required: say why you need this, for the human who approves".into(),
        ));
    }
    check_text("the reason", &req.reason, MAX_REASON_BYTES)?;

    let (names, writes) = match operation {
        Operation::Read => {
            let names: Vec<&str> = req.names.iter().map(String::as_str).collect();
            check_names(provider, &names)?;
            (req.names.clone(), Vec::new())
        }
        Operation::Write => {
            if !vault_cfg.writable {
                return Err(AccessError::NotWritable(vault_cfg.name.clone()));
            }
            let names: Vec<String> = req.writes.iter().map(|w| w.name.clone()).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            check_names(provider, &refs)?;
            let mut writes = Vec::new();
            for w in req.writes {
                if w.value.len() > MAX_VALUE_BYTES {
                    return Err(AccessError::Invalid(format!(
                        "the value for {} is {} bytes; the limit is {MAX_VALUE_BYTES}",
                        w.name,
                        w.value.len()
                    )));
                }
                if w.value.contains('\0') {
                    return Err(AccessError::Invalid(format!(
                        "the value for {} contains a NUL byte",
                        w.name
                    )));
                }
                writes.push((w.name, SecretString::new(w.value)));
            }
            (names, writes)
        }
    };

    // What exactly is asked for: by whom, under which definition, from
    // which source. For a project's vault this is also where its file is
    // checked to be the requester's own.
    let binding = Binding {
        uid: session.requester.uid,
        definition: vault_cfg.fingerprint().into(),
        source: provider.identity().await?.into(),
    };
    let target = Target {
        vault: &vault_id,
        binding: &binding,
        provider,
    };
    let mut needs = names.clone();
    if operation == Operation::Read {
        {
            let grants = state.grants();
            needs.retain(|n| !grants.covers(&vault_id, &binding, n, &session.id, now_ms));
        }
        let missing: Vec<String> = if needs.is_empty() {
            // The fast path: every name is covered; one read of the vault
            // both checks the names and fetches the values.
            match deliver(
                state,
                session,
                &target,
                &names,
                &[],
                &req.reason,
                vault_cfg.ttl_scope,
                "",
                now_ms,
            )
            .await
            {
                Err(AccessError::Provider(ProviderError::UnknownSecret {
                    names: missing, ..
                })) => missing,
                other => return other,
            }
        } else {
            // Unknown names fail now, before anyone is asked.
            let listed: Vec<String> = provider.list().await?.into_iter().map(|l| l.name).collect();
            names
                .iter()
                .filter(|n| !listed.contains(n))
                .cloned()
                .collect()
        };
        if !missing.is_empty() {
            events::record(
                state,
                &Decision {
                    vault: &vault_id,
                    names: &missing,
                    reason: &req.reason,
                    action: Action::NotFound,
                    scope: vault_cfg.ttl_scope.as_str(),
                    ttl_expires_ms: None,
                    operation: Operation::Read,
                    request_id: "",
                    requester: &session.requester,
                    device_id: "",
                    detail: "",
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
    let (pending, _joined) = state
        .broker
        .open(
            NewRequest {
                vault: vault_id,
                binding,
                operation,
                names: needs,
                all_names: names,
                writes,
                previews,
                location,
                reason: req.reason,
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
    if !_joined {
        tracing::info!(request = %pending.id, vault = %pending.vault.name, names = ?pending.names, op = operation.as_str(), "approval requested");
    }
    reply_for(state, &pending, approval.wait_seconds, now_ms).await
}

/// The vault a value is delivered from, and what its approval was for.
struct Target<'a> {
    vault: &'a VaultId,
    binding: &'a Binding,
    provider: &'a Provider,
}

/// Fetches values and records the names that a window covered. The values
/// are released only if they were read from the source the approval (or
/// the window) was bound to.
#[allow(clippy::too_many_arguments)]
async fn deliver(
    state: &AppState,
    session: &Session,
    target: &Target<'_>,
    names: &[String],
    approved_now: &[String],
    reason: &str,
    scope: TtlScope,
    request_id: &str,
    now_ms: i64,
) -> Result<pb::AccessReply, AccessError> {
    let vault = target.vault;
    let (mut values, source) = target.provider.get(names).await?;
    if *source != *target.binding.source {
        tracing::warn!(request = request_id, vault = %vault.name, "the vault's source changed since it was approved; nothing released");
        return Err(AccessError::SourceChanged(vault.name.to_string()));
    }
    let covered: Vec<String> = names
        .iter()
        .filter(|n| !approved_now.contains(n))
        .cloned()
        .collect();
    if !covered.is_empty() {
        events::record(
            state,
            &Decision {
                vault,
                names: &covered,
                reason,
                action: Action::AutoApproved,
                scope: scope.as_str(),
                ttl_expires_ms: None,
                operation: Operation::Read,
                request_id,
                requester: &session.requester,
                device_id: "",
                detail: "",
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
            request = request_id,
            "the audit log could not be written; values withheld"
        );
        return Err(AccessError::AuditUnavailable);
    }
    let values = names
        .iter()
        .filter_map(|n| {
            values.remove(n).map(|v| pb::SecretValue {
                name: n.clone(),
                value: v.expose().to_string(),
            })
        })
        .collect();
    Ok(pb::AccessReply {
        outcome: pb::Outcome::Granted as i32,
        values,
        request_id: request_id.to_string(),
        ..Default::default()
    })
}

fn pending_reply(state: &AppState, req: &PendingApproval, wait_seconds: u32) -> pb::AccessReply {
    let url = state.approval_url(&req.id);
    pb::AccessReply {
        outcome: pb::Outcome::Pending as i32,
        request_id: req.id.clone(),
        approval_url: url.clone(),
        expires_at_ms: req.expires_ms,
        message: format!(
            "Waiting for the user to approve {} {} in vault \"{}\" at {url}",
            req.operation.as_str(),
            req.names.join(", "),
            req.vault.name
        ),
        wait_seconds,
        ..Default::default()
    }
}

/// The provider of an approved request's vault, if the vault is still
/// defined as it was when the approval was asked for.
fn approved_provider<'a>(project: &'a Project, req: &PendingApproval) -> Option<&'a Provider> {
    let (cfg, provider, _) = project.vault(&req.vault.name)?;
    (*cfg.fingerprint() == *req.binding.definition).then_some(provider)
}

fn redefined(what: &str) -> String {
    format!(
        "The vault of {what} was defined anew after the approval, so the approval no longer applies. Call again to ask anew."
    )
}

/// The reply for a request in its current state.
async fn reply_for(
    state: &AppState,
    req: &Arc<PendingApproval>,
    wait_seconds: u32,
    now_ms: i64,
) -> Result<pb::AccessReply, AccessError> {
    let settled = |outcome: pb::Outcome, message: String| {
        state.broker.reported(req);
        Ok(pb::AccessReply {
            outcome: outcome as i32,
            request_id: req.id.clone(),
            message,
            ..Default::default()
        })
    };
    let what = format!("{} in vault \"{}\"", req.names.join(", "), req.vault.name);
    match req.state() {
        State::Pending | State::Recording { .. } => Ok(pending_reply(state, req, wait_seconds)),
        State::Approved { .. } if req.operation == Operation::Read => {
            let project = project_of(state, &req.session)?;
            let Some(provider) = approved_provider(&project, req) else {
                return settled(pb::Outcome::Expired, redefined(&what));
            };
            let covered = {
                let grants = state.grants();
                req.all_names
                    .iter()
                    .all(|n| grants.covers(&req.vault, &req.binding, n, &req.session.id, now_ms))
            };
            if !req.mark_delivered() && !covered {
                return settled(
                    pb::Outcome::Expired,
                    format!(
                        "The approval for {what} was already used once. Call again to ask anew."
                    ),
                );
            }
            state.broker.reported(req);
            let target = Target {
                vault: &req.vault,
                binding: &req.binding,
                provider,
            };
            deliver(
                state,
                &req.session,
                &target,
                &req.all_names,
                &req.names,
                &req.reason,
                req.scope,
                &req.id,
                now_ms,
            )
            .await
        }
        State::Approved { .. } => Ok(pending_reply(state, req, wait_seconds)),
        State::Delivered => {
            let grants_cover = {
                let grants = state.grants();
                req.all_names
                    .iter()
                    .all(|n| grants.covers(&req.vault, &req.binding, n, &req.session.id, now_ms))
            };
            if grants_cover {
                let project = project_of(state, &req.session)?;
                if let Some(provider) = approved_provider(&project, req) {
                    state.broker.reported(req);
                    let target = Target {
                        vault: &req.vault,
                        binding: &req.binding,
                        provider,
                    };
                    return deliver(
                        state,
                        &req.session,
                        &target,
                        &req.all_names,
                        &[],
                        &req.reason,
                        req.scope,
                        &req.id,
                        now_ms,
                    )
                    .await;
                }
            }
            settled(
                pb::Outcome::Expired,
                format!("The approval for {what} was already used once. Call again to ask anew."),
            )
        }
        State::Written { .. } => {
            state.broker.reported(req);
            Ok(pb::AccessReply {
                outcome: pb::Outcome::Granted as i32,
                written: req.names.clone(),
                request_id: req.id.clone(),
                ..Default::default()
            })
        }
        State::WriteFailed { message, .. } => {
            state.broker.reported(req);
            Err(AccessError::WriteFailed(message))
        }
        State::Denied { .. } => settled(
            pb::Outcome::Denied,
            format!(
                "The user denied {} access to {what}. Do not ask again for the same thing; ask the user how they want to proceed.",
                req.operation.as_str()
            ),
        ),
        State::Expired => settled(
            pb::Outcome::Expired,
            format!(
                "No one approved {} access to {what} before the request expired. Call again if you still need it.",
                req.operation.as_str()
            ),
        ),
        State::Cancelled { why } => settled(
            pb::Outcome::Cancelled,
            format!("The request for {what} was cancelled ({why}). Call again to ask anew."),
        ),
    }
}

/// Waits up to `timeout_ms` for a decision on the session's request.
pub async fn await_decision(
    state: &AppState,
    session: &Arc<Session>,
    request_id: &str,
    timeout_ms: u32,
) -> Result<pb::AccessReply, AccessError> {
    let req = state
        .broker
        .get(request_id)
        .filter(|r| r.session.id == session.id)
        .ok_or_else(|| AccessError::UnknownRequest(request_id.chars().take(40).collect()))?;
    let mut rx = req.subscribe();
    let op = req.operation;
    let timeout = Duration::from_millis(u64::from(timeout_ms.min(600_000)));
    let _ = tokio::time::timeout(timeout, rx.wait_for(|s| s.settled(op))).await;
    let wait_seconds = state
        .project(&session.project)
        .map_or(50, |p| p.config.approval.wait_seconds);
    reply_for(state, &req, wait_seconds, clock::now_ms()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_capped_per_uid_and_unwatched_ones_are_forgotten()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let (state, _writer) =
            crate::ephemeral_state(dir.path(), crate::config::default_config_text())?;
        let who = |uid| Requester {
            uid,
            ..Default::default()
        };
        let mut first = Vec::new();
        for _ in 0..MAX_SESSIONS_PER_UID {
            first.push(open_session(&state, who(1000), "", "", HashMap::new())?);
        }
        let refused = open_session(&state, who(1000), "", "", HashMap::new());
        assert!(
            matches!(&refused, Err(AccessError::TooMany(m)) if m.contains("uid 1000 already has 256")),
            "{refused:?}"
        );
        // Another uid is not affected.
        assert!(open_session(&state, who(1001), "", "", HashMap::new()).is_ok());
        // One of them opened its watch; the rest never did.
        first[0]
            .watched
            .store(true, std::sync::atomic::Ordering::Release);
        // After the grace of the last one opened (opening 256 can take a
        // few milliseconds on a busy machine).
        let newest = first.iter().map(|s| s.opened_ms).max().unwrap_or_default();
        let later = newest + WATCH_GRACE_MS + 1;
        forget_unwatched(&state, later);
        assert!(state.session(&first[0].id).is_some());
        assert!(state.session(&first[1].id).is_none());
        assert!(open_session(&state, who(1000), "", "", HashMap::new()).is_ok());
        Ok(())
    }
}
