//! The `audit` table and its head (`audit_head`): rows are inserted with
//! the hash that chains them to the row before ([`crate::audit::chain`]),
//! and read back in id order.

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{Store, StoreError};
use crate::audit::chain::{self, ChainedRow, Verdict};

/// The chain's head as the writer keeps it: the last hash, the row count,
/// and the highest id (the next row gets the one after).
#[derive(Debug, Clone, Default)]
pub struct Head {
    pub last_hash: String,
    pub count: i64,
    pub last_id: i64,
}

impl Head {
    pub fn load(conn: &Connection) -> rusqlite::Result<Head> {
        let (last_hash, count) = conn
            .query_row(
                "SELECT last_hash, count FROM audit_head WHERE one = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or_default();
        let last_id: i64 =
            conn.query_row("SELECT COALESCE(MAX(id), 0) FROM audit", [], |r| r.get(0))?;
        Ok(Head {
            last_hash,
            count,
            last_id,
        })
    }

    /// Stores the head once a batch has added rows.
    pub fn save(&self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        tx.prepare_cached(
            "INSERT INTO audit_head (one, last_hash, count) VALUES (1, ?1, ?2) \
             ON CONFLICT(one) DO UPDATE SET last_hash = excluded.last_hash, count = excluded.count",
        )?
        .execute(params![self.last_hash, self.count])?;
        Ok(())
    }
}

/// Inserts `row` as the next entry: its id is assigned here (not by
/// SQLite) so that it is hashed, chained to `head`, which moves on.
pub fn insert(tx: &Transaction<'_>, head: &mut Head, row: &ChainedRow) -> rusqlite::Result<()> {
    let row = ChainedRow {
        id: head.last_id + 1,
        ..row.clone()
    };
    let hash = chain::hash(&head.last_hash, &row);
    let ttl: Option<&str> = (!row.ttl_expires_at.is_empty()).then_some(row.ttl_expires_at.as_str());
    tx.prepare_cached(
        "INSERT INTO audit (id, timestamp, secret_name, reason, action, scope, ttl_expires_at, operation, vault, \
         config_path, request_id, requester_uid, requester_pid, requester_exe, client_name, device_id, detail, prev_hash, hash, \
         requester_user, requester_agent, requester_cwd, requester_cmdline, approval_digest) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
    )?
    .execute(params![
        row.id,
        row.timestamp,
        row.secret_name,
        row.reason,
        row.action,
        row.scope,
        ttl,
        row.operation,
        row.vault,
        row.config_path,
        row.request_id,
        row.requester_uid,
        row.requester_pid,
        row.requester_exe,
        row.client_name,
        row.device_id,
        row.detail,
        head.last_hash,
        hash,
        row.requester_user,
        row.requester_agent,
        row.requester_cwd,
        row.requester_cmdline,
        row.approval_digest,
    ])?;
    head.last_hash = hash;
    head.count += 1;
    head.last_id = row.id;
    Ok(())
}

const ROW_COLUMNS: &str = "id, timestamp, secret_name, reason, action, scope, \
    COALESCE(ttl_expires_at, ''), operation, vault, config_path, request_id, requester_uid, \
    requester_pid, requester_exe, client_name, device_id, detail, prev_hash, hash, \
    requester_user, requester_agent, requester_cwd, requester_cmdline, approval_digest";

/// A row, its `prev_hash` and its `hash`.
fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(ChainedRow, String, String)> {
    Ok((
        ChainedRow {
            id: r.get(0)?,
            timestamp: r.get(1)?,
            secret_name: r.get(2)?,
            reason: r.get(3)?,
            action: r.get(4)?,
            scope: r.get(5)?,
            ttl_expires_at: r.get(6)?,
            operation: r.get(7)?,
            vault: r.get(8)?,
            config_path: r.get(9)?,
            request_id: r.get(10)?,
            requester_uid: r.get(11)?,
            requester_pid: r.get(12)?,
            requester_exe: r.get(13)?,
            requester_user: r.get(19)?,
            requester_agent: r.get(20)?,
            requester_cwd: r.get(21)?,
            requester_cmdline: r.get(22)?,
            client_name: r.get(14)?,
            device_id: r.get(15)?,
            detail: r.get(16)?,
            approval_digest: r.get(23)?,
        },
        r.get(17)?,
        r.get(18)?,
    ))
}

impl Store {
    /// The `detail` of every row whose detail starts with `prefix`.
    pub fn details_starting(
        &self,
        prefix: &str,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        self.with(|c| {
            let mut stmt =
                c.prepare("SELECT detail FROM audit WHERE substr(detail, 1, length(?1)) = ?1")?;
            let rows = stmt.query_map([prefix], |r| r.get::<_, String>(0))?;
            rows.collect()
        })
    }

    /// The newest rows, newest first.
    pub fn recent(&self, limit: u32) -> Result<Vec<ChainedRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM audit ORDER BY id DESC LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit], read_row)?;
            rows.map(|r| r.map(|(row, _, _)| row)).collect()
        })
    }

    /// The number of entries and the hash of the entry at position `seq`
    /// (1 is the first), if there is one.
    pub fn hash_at(&self, seq: i64) -> Result<(i64, Option<String>), StoreError> {
        self.with(|c| {
            let entries: i64 = c.query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0))?;
            let hash = c
                .query_row(
                    "SELECT hash FROM audit ORDER BY id LIMIT 1 OFFSET ?1",
                    [seq - 1],
                    |r| r.get(0),
                )
                .optional()?;
            Ok((entries, hash))
        })
    }

    /// Walks the whole chain, noting the hashes at `positions`.
    pub fn verify(&self, positions: &BTreeSet<u64>) -> Result<Verdict, StoreError> {
        self.with(|c| {
            let head: Option<(String, i64)> = c
                .query_row(
                    "SELECT last_hash, count FROM audit_head WHERE one = 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let mut stmt = c.prepare(&format!("SELECT {ROW_COLUMNS} FROM audit ORDER BY id"))?;
            let rows: Vec<_> = stmt.query_map([], read_row)?.collect::<Result<_, _>>()?;
            Ok(chain::verify(
                rows.into_iter(),
                head.map(|(h, n)| (h, n as u64)),
                positions,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rusqlite::Connection;
    use tokio::sync::Notify;

    use super::*;
    use crate::audit::{Action, AuditEvent};
    use crate::db::batch::{self, StoreCmd};
    use crate::db::{schema, start};
    #[tokio::test]
    async fn audit_ids_with_and_without_autoincrement() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let fresh = dir.path().join("new.db");
        let old = dir.path().join("old.db");
        let earlier = schema::SCHEMA.replacen(
            "id INTEGER PRIMARY KEY,",
            "id INTEGER PRIMARY KEY AUTOINCREMENT,",
            1,
        );
        assert_ne!(earlier, schema::SCHEMA);
        Connection::open(&old)?.execute_batch(&earlier)?;
        for db in [&fresh, &old] {
            let (tx, handle) = start(db, Arc::new(Notify::new()))?;
            for i in 0..3 {
                tx.audit(AuditEvent {
                    ..AuditEvent::new(Action::Approved, 1_000 + i)
                });
                assert!(tx.flush().await);
            }
            drop(tx);
            let _ = handle.join();
            let v = Store::open(db)?.verify(&Default::default())?;
            assert_eq!((v.rows_checked, v.problem), (3, None));
            let ids: Vec<i64> = Connection::open(db)?
                .prepare("SELECT id FROM audit ORDER BY id")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            assert_eq!(ids, [1, 2, 3]);
        }
        let sql: String = Connection::open(&fresh)?.query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'audit'",
            [],
            |r| r.get(0),
        )?;
        assert!(!sql.contains("AUTOINCREMENT"), "{sql}");
        Ok(())
    }

    #[test]
    fn one_audit_row_writes_two_pages() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("audit.db");
        Connection::open(&db)?.execute_batch(&format!(
            "{}CREATE INDEX audit_timestamp ON audit(timestamp);",
            schema::SCHEMA
        ))?;
        let mut conn = schema::open(&db)?;
        let indexes: i64 = conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit'",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(indexes, 0);
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // An existing database keeps its page size; a new one gets 2 KiB.
        let page_size =
            |c: &Connection| c.query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0));
        let page = page_size(&conn)?;
        assert_eq!(page, 4096);
        assert_eq!(page_size(&schema::open(&dir.path().join("new.db"))?)?, 2048);
        let page = page as u64;
        let wal = dir.path().join("audit.db-wal");
        let mut head = Head::load(&conn)?;
        let row = || {
            StoreCmd::Audit(Box::new(
                AuditEvent {
                    secret_name: "API_KEY".into(),
                    reason: "deploy".into(),
                    ..AuditEvent::new(Action::AutoApproved, 1_700_000_000_000)
                }
                .to_row(),
            ))
        };
        // The first commit also creates the head's row and a leaf.
        for _ in 0..3 {
            head = batch::write(&mut conn, &head, &[row()])?.0;
        }
        for _ in 0..5 {
            let before = std::fs::metadata(&wal)?.len();
            head = batch::write(&mut conn, &head, &[row()])?.0;
            let frames = (std::fs::metadata(&wal)?.len() - before) / (page + 24);
            assert_eq!(frames, 2);
        }
        Ok(())
    }

    #[tokio::test]
    async fn chain_detects_deletion_and_edits() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("a.db");
        let (tx, handle) = start(&db, Arc::new(Notify::new()))?;
        for i in 0..5 {
            tx.audit(AuditEvent {
                secret_name: format!("S{i}"),
                ..AuditEvent::new(Action::Approved, 1_000 + i)
            });
        }
        assert!(tx.flush().await);
        drop(tx);
        let _ = handle.join();
        let store = Store::open(&db)?;
        assert_eq!(store.verify(&Default::default())?.problem, None);
        assert_eq!(store.verify(&Default::default())?.rows_checked, 5);

        let conn = Connection::open(&db)?;
        conn.execute("UPDATE audit SET reason = 'edited' WHERE id = 2", [])?;
        assert!(
            store
                .verify(&Default::default())?
                .problem
                .unwrap_or_default()
                .contains("row 2")
        );
        conn.execute("UPDATE audit SET reason = '' WHERE id = 2", [])?;
        assert_eq!(store.verify(&Default::default())?.problem, None);
        conn.execute("DELETE FROM audit WHERE id = 3", [])?;
        assert!(
            store
                .verify(&Default::default())?
                .problem
                .unwrap_or_default()
                .contains("row 4")
        );
        Ok(())
    }

    #[tokio::test]
    async fn chain_detects_a_deleted_last_row() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("a.db");
        let (tx, handle) = start(&db, Arc::new(Notify::new()))?;
        for _ in 0..3 {
            tx.audit(AuditEvent {
                ..AuditEvent::new(Action::Denied, 0)
            });
        }
        assert!(tx.flush().await);
        drop(tx);
        let _ = handle.join();
        Connection::open(&db)?.execute("DELETE FROM audit WHERE id = 3", [])?;
        let v = Store::open(&db)?.verify(&Default::default())?;
        assert!(v.problem.unwrap_or_default().contains("deleted"));
        Ok(())
    }
}
