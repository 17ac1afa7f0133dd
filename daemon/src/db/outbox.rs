//! The `webhook_outbox` table: deliveries queued with the audit rows of
//! their event (same transaction), retried until delivered or given up
//! (`crate::webhooks` delivers them).

use rusqlite::{Transaction, params};

use super::audit::Head;
use super::{Store, StoreError};

/// A delivery to queue.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub event_id: String,
    pub config_path: String,
    pub hook_index: usize,
    pub url: String,
    pub payload: String,
    pub now_ms: i64,
}

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub config_path: String,
    pub hook_index: i64,
    pub url: String,
    pub payload: String,
    pub attempts: i64,
    /// Unique per event (receivers deduplicate by it); '' for events
    /// queued by an earlier release.
    pub event_id: String,
    /// The audit chain's head (entries, last hash) once the event's own
    /// entries were stored.
    pub chain_seq: i64,
    pub chain_hash: String,
}

/// Queues `d`, due at once, with the chain's head as it stands in this
/// transaction (after the audit rows queued before it).
pub fn queue(tx: &Transaction<'_>, head: &Head, d: &NewDelivery) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO webhook_outbox (config_path, hook_index, url, payload, attempts, next_attempt_ms, created_ms, \
         event_id, chain_seq, chain_hash) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        d.config_path,
        d.hook_index as i64,
        d.url,
        d.payload,
        d.now_ms,
        d.event_id,
        head.count,
        head.last_hash
    ])?;
    Ok(())
}

pub fn done(tx: &Transaction<'_>, id: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM webhook_outbox WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

pub fn retry(
    tx: &Transaction<'_>,
    id: i64,
    attempts: i64,
    next_attempt_ms: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE webhook_outbox SET attempts = ?2, next_attempt_ms = ?3 WHERE id = ?1",
    )?
    .execute(params![id, attempts, next_attempt_ms])?;
    Ok(())
}

impl Store {
    /// Deliveries due now, oldest first.
    pub fn due_webhooks(&self, now_ms: i64, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, config_path, hook_index, url, payload, attempts, event_id, chain_seq, chain_hash \
                 FROM webhook_outbox WHERE next_attempt_ms <= ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![now_ms, limit], |r| {
                Ok(OutboxRow {
                    id: r.get(0)?,
                    config_path: r.get(1)?,
                    hook_index: r.get(2)?,
                    url: r.get(3)?,
                    payload: r.get(4)?,
                    attempts: r.get(5)?,
                    event_id: r.get(6)?,
                    chain_seq: r.get(7)?,
                    chain_hash: r.get(8)?,
                })
            })?;
            rows.collect()
        })
    }

    /// When the next queued delivery is due, if any.
    pub fn next_webhook_due(&self) -> Result<Option<i64>, StoreError> {
        self.with(|c| {
            c.query_row("SELECT MIN(next_attempt_ms) FROM webhook_outbox", [], |r| {
                r.get(0)
            })
        })
    }
}
