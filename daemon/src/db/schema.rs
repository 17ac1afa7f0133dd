//! The tables, their migrations, and how a connection to the database is
//! opened (WAL, page size, busy timeout). Every connection, the writer's
//! and the reader's, is opened here.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

// The audit id is assigned by the writer (it is hashed into the chain), so
// the table needs no AUTOINCREMENT: that would update sqlite_sequence, one
// more page, on every commit. Tables created with it keep working.
pub const SCHEMA: &str = "
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
        ("command", "TEXT"),
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
