//! The `grants` table: approval windows, so that a restart keeps them
//! (`crate::grants` turns rows into windows).

use rusqlite::{Transaction, params};

use super::{Store, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub struct GrantRow {
    pub id: String,
    pub config_path: String,
    pub vault: String,
    /// Who registered the vault's config (None: the daemon's own).
    pub owner_uid: Option<u32>,
    pub requester_uid: u32,
    pub definition: String,
    pub source: String,
    /// `vault`, `secret` or `session`.
    pub scope: String,
    pub name: Option<String>,
    pub session: Option<String>,
    /// A run window's command digest; None for a read window.
    pub command: Option<String>,
    pub expires_at_ms: i64,
}

pub fn put(tx: &Transaction<'_>, g: &GrantRow) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO grants (id, config_path, vault, scope, name, session_id, expires_at_ms, \
         owner_uid, requester_uid, definition, source, command) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        g.id,
        g.config_path,
        g.vault,
        g.scope,
        g.name,
        g.session,
        g.expires_at_ms,
        g.owner_uid,
        g.requester_uid,
        g.definition,
        g.source,
        g.command
    ])?;
    Ok(())
}

pub fn delete(tx: &Transaction<'_>, ids: &[String]) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached("DELETE FROM grants WHERE id = ?1")?;
    for id in ids {
        stmt.execute([id])?;
    }
    Ok(())
}

impl Store {
    /// Windows that have not expired by `now_ms`. A window stored before
    /// windows were bound to their requester has none and is not loaded.
    pub fn grants(&self, now_ms: i64) -> Result<Vec<GrantRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, config_path, vault, scope, name, session_id, expires_at_ms, \
                 owner_uid, requester_uid, definition, source, command FROM grants \
                 WHERE expires_at_ms > ?1 AND requester_uid IS NOT NULL",
            )?;
            let rows = stmt.query_map([now_ms], |r| {
                Ok(GrantRow {
                    id: r.get(0)?,
                    config_path: r.get(1)?,
                    vault: r.get(2)?,
                    scope: r.get(3)?,
                    name: r.get(4)?,
                    session: r.get(5)?,
                    expires_at_ms: r.get(6)?,
                    owner_uid: r.get(7)?,
                    requester_uid: r.get(8)?,
                    definition: r.get(9)?,
                    source: r.get(10)?,
                    command: r.get(11)?,
                })
            })?;
            rows.collect()
        })
    }
}
