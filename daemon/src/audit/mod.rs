//! The audit trail: one SQLite database in WAL mode, written by exactly one
//! task ([`writer`]), read through a separate connection ([`store`]).
//!
//! Every row carries the hash of the row before it ([`chain`]), so a deleted
//! or edited row is found by `agent-vault audit verify`; copies of the
//! chain's head kept elsewhere ([`anchor`]) show a log rewritten as a whole,
//! cut short or put back. Values never enter.

pub mod anchor;
pub mod chain;
pub mod store;
pub mod writer;

use crate::grants::VaultId;
use crate::session::Requester;

/// One audit row, before it is chained.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    pub timestamp_ms: i64,
    pub secret_name: String,
    pub reason: String,
    /// One of the actions the README lists under "Audit log" (approved,
    /// denied, auto_approved, …, anchor_mismatch).
    pub action: String,
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
