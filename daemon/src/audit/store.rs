//! The SQLite database: schema, and the read side (a connection separate
//! from the writer's, so reads never wait on a batch commit).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use super::chain::{self, ChainedRow, Verdict};
use crate::config::TtlScope;
use crate::grants::{Binding, Grant, VaultId};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("audit database {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("audit database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

// The audit id is assigned by the writer (it is hashed into the chain), so
// the table needs no AUTOINCREMENT: that would update sqlite_sequence, one
// more page, on every commit. Tables created with it keep working.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY,
  timestamp TEXT NOT NULL,
  secret_name TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  action TEXT NOT NULL,
  scope TEXT NOT NULL DEFAULT '',
  ttl_expires_at TEXT,
  operation TEXT NOT NULL DEFAULT '',
  vault TEXT NOT NULL DEFAULT '',
  config_path TEXT NOT NULL DEFAULT '',
  request_id TEXT NOT NULL DEFAULT '',
  requester_uid INTEGER,
  requester_pid INTEGER,
  requester_exe TEXT NOT NULL DEFAULT '',
  requester_user TEXT NOT NULL DEFAULT '',
  requester_agent TEXT NOT NULL DEFAULT '',
  requester_cwd TEXT NOT NULL DEFAULT '',
  requester_cmdline TEXT NOT NULL DEFAULT '',
  client_name TEXT NOT NULL DEFAULT '',
  device_id TEXT NOT NULL DEFAULT '',
  detail TEXT NOT NULL DEFAULT '',
  approval_digest TEXT NOT NULL DEFAULT '',
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
-- Every query reads the log in id order; the index on timestamp that
-- earlier builds created added a page to every commit and was never read.
DROP INDEX IF EXISTS audit_timestamp;
CREATE TABLE IF NOT EXISTS audit_head (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  last_hash TEXT NOT NULL,
  count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS grants (
  id TEXT PRIMARY KEY,
  config_path TEXT NOT NULL,
  vault TEXT NOT NULL,
  scope TEXT NOT NULL,
  name TEXT,
  session_id TEXT,
  expires_at_ms INTEGER NOT NULL
);
-- A window's binding (grants::Binding) and its vault's owner; a window
-- stored before these columns existed has none and is never loaded.

CREATE TABLE IF NOT EXISTS devices (
  id TEXT PRIMARY KEY,
  label TEXT NOT NULL,
  secret_hash BLOB NOT NULL,
  paired_at_ms INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS totp (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  secret BLOB NOT NULL,
  last_step INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS passkeys (
  id TEXT PRIMARY KEY,
  device_id TEXT NOT NULL,
  rp_id TEXT NOT NULL,
  passkey TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  config_path TEXT NOT NULL,
  hook_index INTEGER NOT NULL,
  url TEXT NOT NULL,
  payload TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER NOT NULL,
  created_ms INTEGER NOT NULL
);
";

/// Makes the database file, and the side files SQLite keeps beside it,
/// readable by the daemon's user alone. SQLite creates its `-wal` and
/// `-shm` files with the database file's mode, so the file is created at
/// 0600 before SQLite first opens it, and files left by an earlier build
/// are set to 0600.
pub fn prepare_files(db: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let err = |source: std::io::Error| StoreError::File {
        path: db.to_path_buf(),
        source,
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(db)
        .map_err(err)?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
            _ => {}
        }
    }
    Ok(())
}

/// Adds `column` to `table` unless a database made by this build has it.
fn add_column(conn: &Connection, table: &str, column: &str, decl: &str) -> rusqlite::Result<()> {
    let exists = conn
        .prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?
        .exists([table, column])?;
    if !exists {
        conn.execute(
            &format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"),
            [],
        )?;
    }
    Ok(())
}

pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let err = |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(err)?;
    // A new database gets 2 KiB pages: an audit row is ~0.5 KiB and every
    // commit writes its pages whole to the WAL (and, at the next
    // checkpoint, to disk), so half-size pages halve that traffic. An
    // existing database keeps the size it has (SQLite ignores this then).
    conn.pragma_update(None, "page_size", 2048).map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(err)?;
    conn.execute_batch(SCHEMA).map_err(err)?;
    // Columns added after the first release of each table.
    for column in [
        "requester_user",
        "requester_agent",
        "requester_cwd",
        "requester_cmdline",
        "approval_digest",
    ] {
        add_column(&conn, "audit", column, "TEXT NOT NULL DEFAULT ''").map_err(err)?;
    }
    add_column(&conn, "devices", "proof_hash", "BLOB").map_err(err)?;
    for (column, decl) in [
        ("owner_uid", "INTEGER"),
        ("requester_uid", "INTEGER"),
        ("definition", "TEXT"),
        ("source", "TEXT"),
    ] {
        add_column(&conn, "grants", column, decl).map_err(err)?;
    }
    // The event's id and the chain's head when it was queued.
    for (column, decl) in [
        ("event_id", "TEXT NOT NULL DEFAULT ''"),
        ("chain_seq", "INTEGER NOT NULL DEFAULT 0"),
        ("chain_hash", "TEXT NOT NULL DEFAULT ''"),
    ] {
        add_column(&conn, "webhook_outbox", column, decl).map_err(err)?;
    }
    Ok(conn)
}

#[derive(Debug, Clone)]
pub struct DeviceRecord {
    pub id: String,
    pub label: String,
    pub secret_hash: Vec<u8>,
    pub paired_at_ms: i64,
    pub last_seen_ms: i64,
    /// SHA-256 of the browser's device proof (see `devices`), for a device
    /// paired on an origin other local programs can serve.
    pub proof_hash: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct OutboxItem {
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

/// The read side.
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
}

const ROW_COLUMNS: &str = "id, timestamp, secret_name, reason, action, scope, \
    COALESCE(ttl_expires_at, ''), operation, vault, config_path, request_id, requester_uid, \
    requester_pid, requester_exe, client_name, device_id, detail, prev_hash, hash, \
    requester_user, requester_agent, requester_cwd, requester_cmdline, approval_digest";

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
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            path: path.to_path_buf(),
            conn: Mutex::new(open(path)?),
        })
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&conn).map_err(|e| self.err(e))
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

    pub fn grants(&self, now_ms: i64) -> Result<Vec<Grant>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, config_path, vault, scope, name, session_id, expires_at_ms, \
                 owner_uid, requester_uid, definition, source FROM grants \
                 WHERE expires_at_ms > ?1 AND requester_uid IS NOT NULL",
            )?;
            let rows = stmt.query_map([now_ms], |r| {
                let scope: String = r.get(3)?;
                Ok(Grant {
                    id: r.get(0)?,
                    vault: VaultId::owned(
                        &r.get::<_, String>(1)?,
                        &r.get::<_, String>(2)?,
                        r.get(7)?,
                    ),
                    binding: Binding {
                        uid: r.get(8)?,
                        definition: r.get::<_, String>(9)?.into(),
                        source: r.get::<_, String>(10)?.into(),
                    },
                    scope: TtlScope::parse(&scope).unwrap_or(TtlScope::Secret),
                    name: r.get(4)?,
                    session: r.get(5)?,
                    expires_at_ms: r.get(6)?,
                })
            })?;
            rows.collect()
        })
    }

    pub fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, label, secret_hash, paired_at_ms, last_seen_ms, proof_hash FROM devices WHERE revoked = 0 ORDER BY paired_at_ms",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(DeviceRecord {
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

    /// Registered passkeys of devices that are not revoked. A row that no
    /// longer parses is skipped with a warning (that passkey then has to be
    /// registered again), rather than stopping the daemon.
    pub fn passkeys(&self) -> Result<Vec<crate::passkeys::StoredPasskey>, StoreError> {
        let rows: Vec<(String, String, String, String, i64)> = self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT p.id, p.device_id, p.rp_id, p.passkey, p.created_ms FROM passkeys p \
                 JOIN devices d ON d.id = p.device_id WHERE d.revoked = 0 ORDER BY p.created_ms",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?;
            rows.collect()
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, device_id, rp_id, json, created_ms)| {
                match serde_json::from_str(&json) {
                    Ok(passkey) => Some(crate::passkeys::StoredPasskey {
                        id,
                        device_id,
                        rp_id,
                        created_ms,
                        passkey,
                    }),
                    Err(e) => {
                        tracing::warn!(passkey = %id, error = %e, "a stored passkey no longer parses; skipped");
                        None
                    }
                }
            })
            .collect())
    }

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

    /// Webhook deliveries due now, oldest first.
    pub fn due_webhooks(&self, now_ms: i64, limit: u32) -> Result<Vec<OutboxItem>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, config_path, hook_index, url, payload, attempts, event_id, chain_seq, chain_hash \
                 FROM webhook_outbox WHERE next_attempt_ms <= ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![now_ms, limit], |r| {
                Ok(OutboxItem {
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
