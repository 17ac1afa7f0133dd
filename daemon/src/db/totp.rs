//! The `totp` table: the one enrolled authenticator's secret and the last
//! time step accepted (codes are single use).

use rusqlite::{OptionalExtension, Transaction};

use super::{Store, StoreError};

/// Enrolls `secret` (Some) or removes the authenticator (None).
pub fn put(tx: &Transaction<'_>, secret: Option<&[u8]>) -> rusqlite::Result<()> {
    match secret {
        Some(secret) => tx
            .prepare_cached(
                "INSERT OR REPLACE INTO totp (one, secret, last_step) VALUES (1, ?1, 0)",
            )?
            .execute([secret])?,
        None => tx.prepare_cached("DELETE FROM totp")?.execute([])?,
    };
    Ok(())
}

pub fn used_step(tx: &Transaction<'_>, step: u64) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE totp SET last_step = ?1 WHERE one = 1")?
        .execute([step as i64])?;
    Ok(())
}

impl Store {
    /// The enrolled TOTP secret and the last accepted time step.
    pub fn totp(&self) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT secret, last_step FROM totp WHERE one = 1",
                [],
                |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)? as u64)),
            )
            .optional()
        })
    }
}
