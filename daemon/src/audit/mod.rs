//! The audit trail: what happened, chained. Its rows are stored in the
//! `audit` table of the database (`crate::db::audit`), through the one
//! write queue.
//!
//! Every row carries the hash of the row before it ([`chain`]), so a deleted
//! or edited row is found by `agent-vault audit verify`; copies of the
//! chain's head kept elsewhere ([`anchor`]) show a log rewritten as a whole,
//! cut short or put back. Values never enter.

pub mod action;
pub mod anchor;
pub mod chain;
pub mod import;

use crate::clock;
use crate::session::Requester;
use crate::vault_id::VaultId;
pub use action::Action;
use chain::ChainedRow;

/// One audit row, before it is chained.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub timestamp_ms: i64,
    pub secret_name: String,
    pub reason: String,
    pub action: Action,
    pub scope: String,
    pub ttl_expires_ms: Option<i64>,
    pub operation: String,
    pub vault: Option<VaultId>,
    pub request_id: String,
    pub requester: Option<Requester>,
    pub device_id: String,
    pub detail: String,
    /// Hex SHA-256 of exactly what a passkey approval signed for
    /// (see `passkeys::request_digest`); empty otherwise.
    pub approval_digest: String,
}

impl AuditEvent {
    /// An event with only its action and time; the rest is filled in with
    /// struct update syntax.
    pub fn new(action: Action, timestamp_ms: i64) -> Self {
        Self {
            timestamp_ms,
            action,
            secret_name: String::new(),
            reason: String::new(),
            scope: String::new(),
            ttl_expires_ms: None,
            operation: String::new(),
            vault: None,
            request_id: String::new(),
            requester: None,
            device_id: String::new(),
            detail: String::new(),
            approval_digest: String::new(),
        }
    }

    /// The row as it is chained and stored; its id is assigned when it is
    /// inserted.
    pub fn to_row(&self) -> ChainedRow {
        let requester = self.requester.clone().unwrap_or_default();
        let has_requester = self.requester.is_some();
        let vault = |f: fn(&VaultId) -> String| self.vault.as_ref().map(f).unwrap_or_default();
        ChainedRow {
            id: 0,
            timestamp: clock::iso(self.timestamp_ms),
            secret_name: self.secret_name.clone(),
            reason: self.reason.clone(),
            action: self.action.as_str().to_string(),
            scope: self.scope.clone(),
            ttl_expires_at: self.ttl_expires_ms.map(clock::iso).unwrap_or_default(),
            operation: self.operation.clone(),
            vault: vault(|v| v.name.to_string()),
            config_path: vault(|v| v.config.to_string()),
            request_id: self.request_id.clone(),
            requester_uid: has_requester.then_some(requester.uid as i64),
            requester_pid: has_requester.then_some(requester.pid as i64),
            requester_exe: requester.exe,
            requester_user: requester.user,
            requester_agent: requester.agent,
            requester_cwd: requester.cwd,
            requester_cmdline: requester.cmdline,
            client_name: requester.mcp_client,
            device_id: self.device_id.clone(),
            detail: self.detail.clone(),
            approval_digest: self.approval_digest.clone(),
        }
    }
}
