//! What the write queue carries, and the transaction that applies a batch
//! of it: each command goes to its table's file.

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::audit::{self, Head};
use super::devices::{self, DeviceRow};
use super::grants::{self, GrantRow};
use super::outbox::{self, NewDelivery};
use super::passkeys::{self, PasskeyRow};
use super::totp;
use crate::audit::chain::ChainedRow;

pub enum StoreCmd {
    /// An audit entry (its id is assigned when it is chained).
    Audit(Box<ChainedRow>),
    /// Queue a webhook delivery (same transaction as the audit rows before
    /// it, whose chain head it carries).
    Webhook(Box<NewDelivery>),
    WebhookDone(i64),
    WebhookRetry {
        id: i64,
        attempts: i64,
        next_attempt_ms: i64,
    },
    PutGrant(Box<GrantRow>),
    DeleteGrants(Vec<String>),
    PutDevice(Box<DeviceRow>),
    TouchDevice {
        id: String,
        now_ms: i64,
    },
    /// Revokes a device and deletes its passkeys.
    RevokeDevice(String),
    /// Stores a new passkey or its updated counter.
    PutPasskey(Box<PasskeyRow>),
    /// Enroll (Some) or remove (None) the TOTP authenticator.
    PutTotp(Option<Vec<u8>>),
    /// The last TOTP time step accepted (codes are single use).
    TotpStep(u64),
    /// Answered once everything sent before it is committed; dropped
    /// unanswered when that failed.
    Flush(oneshot::Sender<()>),
}

/// Writes a batch in one transaction; returns the new chain head and
/// whether webhook deliveries were queued. On error nothing is written.
pub fn write(
    conn: &mut Connection,
    head: &Head,
    batch: &[StoreCmd],
) -> rusqlite::Result<(Head, bool)> {
    let tx = conn.transaction()?;
    let mut next = head.clone();
    let mut wrote_audit = false;
    let mut queued_hooks = false;
    for cmd in batch {
        match cmd {
            StoreCmd::Audit(row) => {
                audit::insert(&tx, &mut next, row)?;
                wrote_audit = true;
            }
            StoreCmd::Webhook(d) => {
                outbox::queue(&tx, &next, d)?;
                queued_hooks = true;
            }
            StoreCmd::WebhookDone(id) => outbox::done(&tx, *id)?,
            StoreCmd::WebhookRetry {
                id,
                attempts,
                next_attempt_ms,
            } => outbox::retry(&tx, *id, *attempts, *next_attempt_ms)?,
            StoreCmd::PutGrant(g) => grants::put(&tx, g)?,
            StoreCmd::DeleteGrants(ids) => grants::delete(&tx, ids)?,
            StoreCmd::PutDevice(d) => devices::put(&tx, d)?,
            StoreCmd::TouchDevice { id, now_ms } => devices::touch(&tx, id, *now_ms)?,
            StoreCmd::RevokeDevice(id) => devices::revoke(&tx, id)?,
            StoreCmd::PutPasskey(k) => passkeys::put(&tx, k)?,
            StoreCmd::PutTotp(secret) => totp::put(&tx, secret.as_deref())?,
            StoreCmd::TotpStep(step) => totp::used_step(&tx, *step)?,
            StoreCmd::Flush(_) => {}
        }
    }
    if wrote_audit {
        next.save(&tx)?;
    }
    tx.commit()?;
    Ok((next, queued_hooks))
}
