//! Recording what happened: audit rows (one per secret) and, for the
//! prototype's three actions, webhook events with the prototype's payload
//! plus additional fields. Both go through the single store writer.

use crate::audit::{Action, AuditEvent};
use crate::broker::{Operation, PendingApproval};
use crate::clock;
use crate::command_line::CommandLine;
use crate::db::StoreCmd;
use crate::db::outbox::NewDelivery;
use crate::session::Requester;
use crate::state::AppState;
use crate::vault_id::VaultId;

/// One decision about one or more secrets.
pub struct Decision<'a> {
    pub vault: &'a VaultId,
    pub names: &'a [String],
    pub reason: &'a str,
    pub action: Action,
    pub scope: &'a str,
    pub ttl_expires_ms: Option<i64>,
    pub operation: Operation,
    pub request_id: &'a str,
    pub requester: &'a Requester,
    pub device_id: &'a str,
    pub detail: &'a str,
    /// The command a run is for (shown in the audit row's detail and the
    /// webhook event).
    pub command: Option<&'a CommandLine>,
    /// Hex digest a passkey signed for (empty without a passkey).
    pub approval_digest: &'a str,
    pub now_ms: i64,
}

impl<'a> Decision<'a> {
    /// The decision about a pending request, with its own fields filled in.
    pub fn for_request(req: &'a PendingApproval, action: Action, now_ms: i64) -> Self {
        Decision {
            vault: &req.vault,
            names: &req.names,
            reason: &req.reason,
            action,
            scope: req.scope.as_str(),
            ttl_expires_ms: None,
            operation: req.operation,
            request_id: &req.id,
            requester: &req.session.requester,
            device_id: "",
            detail: "",
            command: req.command.as_ref(),
            approval_digest: "",
            now_ms,
        }
    }

    /// The audit row's detail: what was given, then the command of a run.
    fn detail(&self) -> String {
        match self.command {
            None => self.detail.to_string(),
            Some(c) => {
                let run = format!("command: {} (in {})", c.shown(), c.cwd);
                if self.detail.is_empty() {
                    run
                } else {
                    format!("{}; {run}", self.detail)
                }
            }
        }
    }
}

pub fn record(state: &AppState, d: &Decision<'_>) {
    let detail = d.detail();
    for name in d.names {
        state.store.audit(AuditEvent {
            timestamp_ms: d.now_ms,
            secret_name: name.clone(),
            reason: d.reason.to_string(),
            action: d.action,
            scope: d.scope.to_string(),
            ttl_expires_ms: d.ttl_expires_ms,
            operation: d.operation.as_str().to_string(),
            vault: Some(d.vault.clone()),
            request_id: d.request_id.to_string(),
            requester: Some(d.requester.clone()),
            device_id: d.device_id.to_string(),
            detail: detail.clone(),
            approval_digest: d.approval_digest.to_string(),
        });
    }
    if !d.action.is_access_outcome() {
        return;
    }
    let Some(project) = state.project(&crate::vault_id::ProjectKey::of_vault(d.vault)) else {
        return;
    };
    for (i, hook) in project.config.webhooks.iter().enumerate() {
        if !hook.wants(d.action.as_str()) {
            continue;
        }
        let mut payload = serde_json::json!({
            "event": "secret_access",
            "timestamp": clock::iso(d.now_ms),
            "vault": &*d.vault.name,
            "secrets": d.names,
            "reason": d.reason,
            "action": d.action.as_str(),
            "scope": d.scope,
            "ttlExpiresAt": d.ttl_expires_ms.map(clock::iso),
            "operation": d.operation.as_str(),
            "requestId": d.request_id,
            "configPath": &*d.vault.config,
            "requester": {
                "uid": d.requester.uid,
                "user": d.requester.user,
                "pid": d.requester.pid,
                "exe": d.requester.exe,
                "cmdline": d.requester.cmdline,
                "cwd": d.requester.cwd,
                "agent": d.requester.agent,
                "mcpClient": d.requester.mcp_client,
            },
            "device": (!d.device_id.is_empty()).then_some(d.device_id),
            "approvalDigest": (!d.approval_digest.is_empty()).then_some(d.approval_digest),
        });
        if let (Some(c), Some(map)) = (d.command, payload.as_object_mut()) {
            map.insert("command".into(), c.argv.clone().into());
            map.insert("cwd".into(), c.cwd.clone().into());
        }
        state.store.send(StoreCmd::Webhook(Box::new(NewDelivery {
            event_id: event_id(),
            config_path: d.vault.config.to_string(),
            hook_index: i,
            url: hook.url.clone(),
            payload: payload.to_string(),
            now_ms: d.now_ms,
        })));
    }
}

/// A new webhook event id (receivers deduplicate deliveries by it).
pub fn event_id() -> String {
    format!("evt_{}", crate::devices::random_token(18))
}

/// Queues an event that is not the prototype's (`audit_anchor`,
/// `device_paired`) for the webhooks of agent-vaultd's own config that
/// list it. A project's webhooks never get them: an agent may have
/// written those.
pub fn notify_own_webhooks(state: &AppState, event: &str, mut payload: serde_json::Value) {
    let Some(own) = state.project(&state.default_project) else {
        return;
    };
    if let Some(map) = payload.as_object_mut() {
        map.insert("event".into(), event.into());
    }
    let now_ms = clock::now_ms();
    for (i, hook) in own.config.webhooks.iter().enumerate() {
        if hook.wants(event) {
            state.store.send(StoreCmd::Webhook(Box::new(NewDelivery {
                event_id: event_id(),
                config_path: own.config.path.to_string_lossy().into_owned(),
                hook_index: i,
                url: hook.url.clone(),
                payload: payload.to_string(),
                now_ms,
            })));
        }
    }
}

/// An event that concerns no secret (pairing, refusals, revocations).
pub fn record_plain(
    state: &AppState,
    action: Action,
    device_id: &str,
    detail: &str,
    requester: Option<Requester>,
) {
    state.store.audit(AuditEvent {
        device_id: device_id.to_string(),
        detail: detail.to_string(),
        requester,
        ..AuditEvent::new(action, clock::now_ms())
    });
}
