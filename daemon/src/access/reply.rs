//! The answer to a request: still pending (with its link), the values of
//! an approved read (once), a write's outcome, or why not. An agent waits
//! for it with [`await_decision`].

use std::sync::Arc;
use std::time::Duration;

use agent_vault_proto::pb;

use super::AccessError;
use super::deliver::{Delivery, deliver};
use super::session::project_of;
use crate::broker::{PendingApproval, State};
use crate::clock;
use crate::command_line::CommandLine;
use crate::config::VaultConfig;
use crate::grants::Want;
use crate::providers::Provider;
use crate::session::Session;
use crate::state::{AppState, Project};

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

/// The vault of an approved request, if it is still defined as it was
/// when the approval was asked for.
fn approved_vault<'a>(
    project: &'a Project,
    req: &PendingApproval,
) -> Option<(&'a VaultConfig, &'a Provider)> {
    let (cfg, provider, _) = project.vault(&req.vault.name)?;
    (*cfg.fingerprint() == *req.binding.definition).then_some((cfg, provider))
}

fn redefined(what: &str) -> String {
    format!(
        "The vault of {what} was defined anew after the approval, so the approval no longer applies. Call again to ask anew."
    )
}

/// The names of `req` that an `autoApprove` policy releases.
fn by_policy(req: &PendingApproval, cfg: &VaultConfig) -> Vec<String> {
    req.all_names
        .iter()
        .filter(|n| {
            let r = cfg.rule(n);
            r.auto_approve && !r.hidden
        })
        .cloned()
        .collect()
}

/// An approved read's delivery; `approved_now`: the names this approval
/// covers (none when only windows and policies cover it now).
fn delivery<'a>(
    req: &'a PendingApproval,
    provider: &'a Provider,
    approved_now: &'a [String],
    by_policy: &'a [String],
) -> Delivery<'a> {
    Delivery {
        vault: &req.vault,
        binding: &req.binding,
        provider,
        session: &req.session,
        names: &req.all_names,
        approved_now,
        by_policy,
        operation: req.operation,
        command: req.command.as_ref(),
        reason: &req.reason,
        scope: req.scope,
        request_id: &req.id,
    }
}

/// Whether windows (or policies) cover every name of `req` now.
fn covered_now(state: &AppState, req: &PendingApproval, cfg: &VaultConfig, now_ms: i64) -> bool {
    let run = req.command.as_ref().map(CommandLine::digest);
    let grants = state.grants();
    req.all_names.iter().all(|n| {
        let rule = cfg.rule(n);
        let want = Want {
            name: n,
            session: &req.session.id,
            run: run.as_deref(),
            whole_vault: !rule.by_policy,
        };
        (rule.auto_approve && !rule.hidden)
            || grants.covers(&req.vault, &req.binding, &want, now_ms)
    })
}

/// The reply for a request in its current state.
pub(super) async fn reply_for(
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
        State::Approved { .. } if req.operation.releases_values() => {
            let project = project_of(state, &req.session)?;
            let Some((cfg, provider)) = approved_vault(&project, req) else {
                return settled(pb::Outcome::Expired, redefined(&what));
            };
            let covered = covered_now(state, req, cfg, now_ms);
            if !req.mark_delivered() && !covered {
                return settled(
                    pb::Outcome::Expired,
                    format!(
                        "The approval for {what} was already used once. Call again to ask anew."
                    ),
                );
            }
            state.broker.reported(req);
            let auto = by_policy(req, cfg);
            deliver(state, &delivery(req, provider, &req.names, &auto), now_ms).await
        }
        State::Approved { .. } => Ok(pending_reply(state, req, wait_seconds)),
        State::Delivered => {
            let project = project_of(state, &req.session)?;
            if let Some((cfg, provider)) = approved_vault(&project, req)
                && covered_now(state, req, cfg, now_ms)
            {
                state.broker.reported(req);
                let auto = by_policy(req, cfg);
                return deliver(state, &delivery(req, provider, &[], &auto), now_ms).await;
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
