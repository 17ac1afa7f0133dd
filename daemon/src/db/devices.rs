//! The `devices` table: paired devices (`crate::devices` checks them).

use rusqlite::{Transaction, params};

use super::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct DeviceRow {
    pub id: String,
    pub label: String,
    pub secret_hash: Vec<u8>,
    pub paired_at_ms: i64,
    pub last_seen_ms: i64,
    /// SHA-256 of the browser's device proof (see `devices`), for a device
    /// paired on an origin other local programs can serve.
    pub proof_hash: Option<Vec<u8>>,
}

pub fn put(tx: &Transaction<'_>, d: &DeviceRow) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO devices (id, label, secret_hash, paired_at_ms, last_seen_ms, revoked, proof_hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
    )?
    .execute(params![
        d.id,
        d.label,
        d.secret_hash,
        d.paired_at_ms,
        d.last_seen_ms,
        d.proof_hash
    ])?;
    Ok(())
}

pub fn touch(tx: &Transaction<'_>, id: &str, now_ms: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE devices SET last_seen_ms = ?2 WHERE id = ?1")?
        .execute(params![id, now_ms])?;
    Ok(())
}

/// Revokes a device and deletes its passkeys.
pub fn revoke(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE devices SET revoked = 1 WHERE id = ?1")?
        .execute([id])?;
    tx.prepare_cached("DELETE FROM passkeys WHERE device_id = ?1")?
        .execute([id])?;
    Ok(())
}

impl Store {
    /// Devices that are not revoked, oldest first.
    pub fn devices(&self) -> Result<Vec<DeviceRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, label, secret_hash, paired_at_ms, last_seen_ms, proof_hash FROM devices \
                 WHERE revoked = 0 ORDER BY paired_at_ms",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(DeviceRow {
                    id: r.get(0)?,
                    label: r.get(1)?,
                    secret_hash: r.get(2)?,
                    paired_at_ms: r.get(3)?,
                    last_seen_ms: r.get(4)?,
                    proof_hash: r.get(5)?,
                })
            })?;
            rows.collect()
        })
    }
}
