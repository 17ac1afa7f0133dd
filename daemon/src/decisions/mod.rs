//! The approver's side: whether an approver's proof is enough
//! ([`policy`]), then approve or deny a pending request (once), open the
//! approval window, apply an approved write, record it all.

pub mod policy;

pub use policy::{Admitted, Proof, Refusal};

use crate::audit::Action;
use crate::broker::{DecideError, Decided, Operation, PendingApproval};
use crate::clock;
use crate::command_line::CommandLine;
use crate::config::TtlScope;
use crate::db::StoreCmd;
use crate::devices::random_id;
use crate::events::{self, Decision};
use crate::grants::{Grant, RevokeTarget};
use crate::state::AppState;

/// The windows an approver may choose, in minutes: the configured one and
/// shorter ones, down to 0 ("just this once").
pub fn window_choices(configured: f64) -> Vec<f64> {
    let mut v: Vec<f64> = [240.0, 120.0, 60.0, 30.0, 15.0, 5.0, 1.0]
        .into_iter()
        .filter(|m| *m < configured)
        .collect();
    if configured > 0.0 {
        v.insert(0, configured);
    }
    v.push(0.0);
    v
}

/// The window an approver's choice amounts to: no longer than configured,
/// and none for a choice that is not a number.
pub fn effective_window(configured: f64, requested: f64) -> f64 {
    if requested.is_finite() {
        requested.clamp(0.0, configured)
    } else {
        0.0
    }
}

/// Approves (with a window no longer than configured) or denies, if
/// `proof` is enough for it ([`policy::admit`]). With a quorum, an approval
/// before the last one needed returns `Partial`. A passkey approval gets
/// the window it signed for, whatever `requested_window` says.
pub async fn decide(
    state: &AppState,
    id: &str,
    approve: bool,
    proof: Proof<'_>,
    requested_window: f64,
    now_ms: i64,
) -> Result<(Decided, Admitted), Refusal> {
    let pending = policy::pending(state, id)?;
    let admitted = policy::admit(state, &pending, approve, proof, now_ms)?;
    let window = effective_window(
        pending.ttl_minutes,
        admitted.signed_window.unwrap_or(requested_window),
    );
    let decided = apply(state, id, approve, &admitted, window, now_ms).await?;
    Ok((decided, admitted))
}

/// Takes an admitted approver's decision: records it, and for an approval
/// (once recorded) opens the window or applies the write.
async fn apply(
    state: &AppState,
    id: &str,
    approve: bool,
    admitted: &Admitted,
    window: f64,
    now_ms: i64,
) -> Result<Decided, DecideError> {
    let device_id = admitted.approver.as_str();
    let approval_digest = admitted.approval_digest.as_str();
    let req = match state
        .broker
        .decide(id, approve, device_id, window, now_ms)?
    {
        Decided::Final(req) => req,
        Decided::Partial { have, req } => {
            tracing::info!(request = %req.id, device = device_id, have, need = req.approvers_needed, "approved by one device of a quorum");
            let detail = format!("{have} of {} approvals", req.approvers_needed);
            events::record(
                state,
                &Decision {
                    device_id,
                    detail: &detail,
                    approval_digest,
                    ..Decision::for_request(&req, Action::PartialApproval, now_ms)
                },
            );
            return Ok(Decided::Partial { have, req });
        }
    };
    // With a quorum, the rows name every approving device.
    let approvers = match req.state() {
        crate::broker::State::Recording { device, .. } => device,
        _ => device_id.to_string(),
    };
    let device_id = approvers.as_str();
    if !approve {
        tracing::info!(request = %req.id, device = device_id, "denied");
        events::record(
            state,
            &Decision {
                device_id,
                ..Decision::for_request(&req, Action::Denied, now_ms)
            },
        );
        return Ok(Decided::Final(req));
    }
    // The approval takes effect only once its rows are committed: a value
    // is never released, nor a write applied, that the log does not show.
    let ttl_expires_ms = (req.operation.releases_values() && window > 0.0)
        .then(|| now_ms + clock::minutes_ms(window));
    events::record(
        state,
        &Decision {
            device_id,
            ttl_expires_ms,
            approval_digest,
            ..Decision::for_request(&req, Action::Approved, now_ms)
        },
    );
    if !state.store.flush().await {
        let why =
            "the audit log could not be written, so the approval did not take effect; ask again";
        tracing::error!(request = %req.id, "approval not recorded; cancelled");
        req.recorded(Err(why.into()));
        return Ok(Decided::Final(req));
    }
    tracing::info!(request = %req.id, device = device_id, window, "approved");
    if let Some(expires_at_ms) = ttl_expires_ms {
        open_windows(state, &req, expires_at_ms);
    }
    req.recorded(Ok(()));
    if req.operation == Operation::Write {
        let project = state.project(&req.session.project);
        let result = match project.as_ref().and_then(|p| p.vault(&req.vault.name)) {
            Some((cfg, provider, _)) if *cfg.fingerprint() == *req.binding.definition => {
                provider.set(&req.writes).await.map_err(|e| e.to_string())
            }
            Some(_) => Err("the vault was defined anew after the request; ask again".to_string()),
            None => Err("the vault is no longer configured".to_string()),
        };
        let (action, detail) = match &result {
            Ok(()) => (Action::Written, String::new()),
            Err(e) => (Action::WriteFailed, e.clone()),
        };
        events::record(
            state,
            &Decision {
                device_id,
                detail: &detail,
                ..Decision::for_request(&req, action, now_ms)
            },
        );
        req.finish_write(result);
    }
    Ok(Decided::Final(req))
}

fn open_windows(state: &AppState, req: &PendingApproval, expires_at_ms: i64) {
    let grant = |name: Option<&String>, session: Option<&str>| Grant {
        id: random_id(8),
        vault: req.vault.clone(),
        binding: req.binding.clone(),
        scope: req.scope,
        name: name.cloned(),
        session: session.map(str::to_string),
        command: req.command.as_ref().map(CommandLine::digest),
        expires_at_ms,
    };
    let new: Vec<Grant> = match req.scope {
        // A name under a policy of its own was approved under its own
        // rule, which may be weaker than the vault's: its window covers it
        // alone.
        TtlScope::Vault if req.whole_vault_window => vec![grant(None, None)],
        TtlScope::Vault => req.names.iter().map(|n| grant(Some(n), None)).collect(),
        TtlScope::Secret => req.names.iter().map(|n| grant(Some(n), None)).collect(),
        TtlScope::Session => req
            .names
            .iter()
            .map(|n| grant(Some(n), Some(&req.session.id)))
            .collect(),
    };
    let mut grants = state.grants();
    for g in new {
        state.store.send(StoreCmd::PutGrant(Box::new(g.to_row())));
        grants.insert(g);
    }
}

/// Ends windows at once; returns how many.
pub fn revoke(state: &AppState, target: &RevokeTarget, device_id: &str) -> usize {
    let gone = state.grants().revoke(target);
    if !gone.is_empty() {
        state.store.send(StoreCmd::DeleteGrants(
            gone.iter().map(|g| g.id.clone()).collect(),
        ));
        for g in &gone {
            state.store.audit(crate::audit::AuditEvent {
                secret_name: g.name.clone().unwrap_or_default(),
                scope: g.scope.as_str().into(),
                vault: Some(g.vault.clone()),
                device_id: device_id.into(),
                ..crate::audit::AuditEvent::new(Action::Revoked, clock::now_ms())
            });
        }
    }
    gone.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_never_exceed_the_configured_window() {
        assert_eq!(window_choices(0.0), vec![0.0]);
        assert_eq!(window_choices(15.0), vec![15.0, 5.0, 1.0, 0.0]);
        assert_eq!(window_choices(20.0), vec![20.0, 15.0, 5.0, 1.0, 0.0]);
    }
}
