//! The `passkeys` table: registered passkeys as webauthn-rs serializes
//! them (`crate::passkeys` makes and parses that text).

use rusqlite::{Transaction, params};

use super::{Store, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub struct PasskeyRow {
    /// The credential id, base64url.
    pub id: String,
    pub device_id: String,
    pub rp_id: String,
    /// The passkey (public key, counter) as JSON.
    pub passkey: String,
    pub created_ms: i64,
}

/// Stores a new passkey or its updated counter.
pub fn put(tx: &Transaction<'_>, k: &PasskeyRow) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO passkeys (id, device_id, rp_id, passkey, created_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![k.id, k.device_id, k.rp_id, k.passkey, k.created_ms])?;
    Ok(())
}

impl Store {
    /// Passkeys of devices that are not revoked, oldest first.
    pub fn passkeys(&self) -> Result<Vec<PasskeyRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT p.id, p.device_id, p.rp_id, p.passkey, p.created_ms FROM passkeys p \
                 JOIN devices d ON d.id = p.device_id WHERE d.revoked = 0 ORDER BY p.created_ms",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(PasskeyRow {
                    id: r.get(0)?,
                    device_id: r.get(1)?,
                    rp_id: r.get(2)?,
                    passkey: r.get(3)?,
                    created_ms: r.get(4)?,
                })
            })?;
            rows.collect()
        })
    }
}
